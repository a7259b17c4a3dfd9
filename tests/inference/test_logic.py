"""The pure parts: input value checks, canary draw, escalation decision, settings."""
from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from medmec.workloads.inference import routing
from medmec.workloads.inference.settings import ServerSettings, add_arguments


def test_check_values_names_the_first_bad_element():
    batch = np.ones((3, 4), np.float32)
    assert routing.check_values("features", batch) is None
    batch[1, 2] = np.inf
    batch[2, 0] = np.nan
    assert routing.check_values("features", batch) == (
        "input 'features' must hold finite numbers: 2 value(s) are NaN or infinite "
        "(first at row 1, element 2)")


def test_canary_draw_boundaries():
    assert routing.use_canary(30, 0.2999)
    assert not routing.use_canary(30, 0.30)
    assert not routing.use_canary(0, 0.0)
    assert routing.use_canary(100, 0.9999)


def test_escalation_only_under_the_threshold():
    conf = routing.confidence(np.array([[0.5, 0.5], [0.1, 0.9], [0.95, 0.05]]))
    assert conf.tolist() == [0.5, 0.9, 0.95]
    assert routing.to_escalate(conf, 0.9).tolist() == [True, False, False]
    assert routing.to_escalate(conf, None).tolist() == [False, False, False]


def parse(*flags: str) -> ServerSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return ServerSettings.from_args(parser.parse_args(
        ["--model-dir", "/models", "--model", "breast-cancer", "--version", "1", *flags]))


def test_contract_flags_parse_with_their_defaults():
    s = parse("--canary-version", "2", "--canary-percent", "10", "--max-batch-size", "16",
              "--max-queue-delay-us", "500", "--escalation-threshold", "0.8",
              "--escalation-url", "http://cloud:8000", "--escalation-model", "big")
    assert (s.http_port, s.grpc_port, s.metrics_port, s.address) == (8000, 8001, 8002, "0.0.0.0")
    assert (s.canary_version, s.canary_percent, s.max_batch_size) == ("2", 10.0, 16)
    assert s.escalation and s.dynamic_batching
    assert parse("--no-dynamic-batching").dynamic_batching is False


@pytest.mark.parametrize("flags,message", [
    (["--canary-percent", "10"], "needs --canary-version"),
    (["--canary-version", "1"], "must differ"),
    (["--canary-version", "2", "--canary-percent", "120"], "less than or equal to 100"),
    (["--escalation-threshold", "0.8"], "needs all of"),
    (["--escalation-threshold", "0.8", "--escalation-url", "cloud:8000",
      "--escalation-model", "big"], "http(s)://host:port"),
    (["--max-batch-size", "0"], "greater than or equal to 1"),
    (["--http-port", "8001"], "ports must differ"),
])
def test_inconsistent_settings_are_refused(flags, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(*flags)


def test_model_version_must_be_a_positive_integer():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--model-dir", "/m", "--model", "x", "--version", "v1"])
    with pytest.raises(ValidationError, match="positive integer"):
        ServerSettings.from_args(args)


def test_the_command_refuses_inconsistent_flags_before_starting(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "medmec", "serve", "inference", "--model-dir", str(tmp_path),
         "--model", "breast-cancer", "--version", "1", "--canary-percent", "10"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--canary-percent needs --canary-version" in result.stderr
