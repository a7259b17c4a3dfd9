"""ONNX Runtime's execution provider: CUDA when the container has a GPU and the runtime the
CUDA build, the CPU provider otherwise."""
import onnxruntime
import pytest

from medmec.workloads.inference.runtime import CPU, CUDA, choose_providers, gpu_present, session


@pytest.mark.parametrize("available, gpu, expected", [
    ([CUDA, CPU], True, [CUDA, CPU]),
    ([CUDA, CPU], False, [CPU]),  # the CUDA build on a CPU node
    ([CPU], True, [CPU]),  # a GPU, but the CPU-only build
    (["TensorrtExecutionProvider", CUDA, CPU], True, [CUDA, CPU]),
])
def test_choice(available, gpu, expected):
    assert choose_providers(available, gpu) == expected


def test_gpu_present_reads_the_device_files_the_device_plugin_mounts(tmp_path):
    assert not gpu_present(tmp_path, {})
    (tmp_path / "nvidiactl").touch()  # the control device alone is no GPU
    (tmp_path / "nvidia-uvm").touch()
    assert not gpu_present(tmp_path, {})
    (tmp_path / "nvidia0").touch()
    assert gpu_present(tmp_path, {})
    assert not gpu_present(tmp_path, {"CUDA_VISIBLE_DEVICES": ""})


def test_session_here_serves_on_what_this_machine_has(tmp_path):
    """This machine has onnxruntime's CPU build and no GPU: the session serves on CPU."""
    from medmec.workloads.inference.imaging_cnn import build  # a real ONNX model
    model = tmp_path / "model.onnx"
    model.write_bytes(build())
    created = session(model)
    expected = choose_providers(onnxruntime.get_available_providers(), gpu_present())[0]
    assert created.get_providers()[0] == expected
