"""The inference p99 of the end-to-end budget, read from a real Triton server (the one in the
nvidia-pytriton wheel) running with latency summaries on, as the QoS prober reads it."""
import asyncio
import sysconfig
import time

import httpx
import numpy as np
import pytest

from medmec import netutil
from medmec.workloads.qos.triton_metrics import fetch_p99_ms

pytestmark = pytest.mark.slow


def test_p99_of_a_served_model_comes_from_triton_summaries(monkeypatch):
    from pytriton.client import ModelClient
    from pytriton.decorators import batch
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    # the Python backend stub must load this interpreter's libpython (see shared notes)
    monkeypatch.setenv("LD_LIBRARY_PATH", sysconfig.get_config_var("LIBDIR"))

    @batch
    def slow_echo(x):
        time.sleep(0.02)
        return {"y": x}

    metrics_port = netutil.free_port()
    config = TritonConfig(http_address="127.0.0.1", http_port=netutil.free_port(),
                          grpc_address="127.0.0.1", grpc_port=netutil.free_port(),
                          metrics_address="127.0.0.1", metrics_port=metrics_port,
                          metrics_config=["summary_latencies=true"], exit_timeout_secs=5)
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with Triton(config=config) as triton:
        triton.bind(model_name="slow-echo", infer_func=slow_echo,
                    inputs=[Tensor(name="x", dtype=np.float32, shape=(1,))],
                    outputs=[Tensor(name="y", dtype=np.float32, shape=(1,))],
                    config=ModelConfig(max_batch_size=4))
        triton.run()

        async def p99(model):
            async with httpx.AsyncClient() as client:
                return await fetch_p99_ms(client, url, model)

        assert asyncio.run(p99("slow-echo")) is None  # no request served yet: no quantile
        with ModelClient(f"127.0.0.1:{config.http_port}", "slow-echo") as client:
            for _ in range(20):
                client.infer_sample(x=np.array([1.0], dtype=np.float32))
        value = asyncio.run(p99("slow-echo"))
        assert 20 <= value < 1000
        assert asyncio.run(p99("another-model")) is None
    assert asyncio.run(p99("slow-echo")) is None  # the server is gone: unmeasured, no error
