"""Per-request KServe-v2 errors (HTTP 400 / gRPC INVALID_ARGUMENT) from a pytriton model.

Triton itself rejects a wrong shape, a wrong datatype, a batch over the limit and an
unknown model or version, each with a 4xx naming the problem. What it cannot see is a bad
value (NaN, infinity): that is found inside the inference callable, and pytriton 0.7 can
only fail the whole dynamic batch, as INTERNAL (HTTP 500) with a Python traceback as the
message, so one bad request would also fail the good ones batched with it.

Triton's Python backend can answer each request of a batch on its own, with an
`InferenceResponse(error=TritonError(msg, INVALID_ARG))`. `install()` teaches the proxy
model that pytriton sends to Triton to do so: an inference callable answers a bad request
with `error_response(message)` instead of output tensors.
"""
from __future__ import annotations

import numpy as np

ERROR_KEY = "__medmec_request_error__"

# The function in pytriton/proxy/model.py that turns one callable result into a Triton
# response; the patch answers an error result with a per-request INVALID_ARG error.
_ANCHOR = "def _wrap_response(response: Response, requested_outputs_names, model_outputs_dict):\n"
_PATCH = _ANCHOR + (
    f"    if response.data is not None and {ERROR_KEY!r} in response.data:\n"
    f"        message = response.data[{ERROR_KEY!r}].reshape(-1)[0]\n"
    "        return pb_utils.InferenceResponse(error=pb_utils.TritonError(\n"
    "            bytes(message).decode(), pb_utils.TritonError.INVALID_ARG))\n")

_installed = False


def error_response(message: str) -> dict:
    """The result an inference callable returns for a request that it refuses."""
    return {ERROR_KEY: np.array([message.encode()], dtype=np.bytes_)}


def patch_proxy_source(source: str) -> str:
    if _ANCHOR not in source:
        raise RuntimeError("pytriton's proxy model changed: per-request errors need a new patch "
                           "(medmec.workloads.inference.request_errors)")
    return source.replace(_ANCHOR, _PATCH, 1)


def install() -> None:
    """Patch the proxy model pytriton gives Triton, whether uploaded or written into a local
    model repository (once per process)."""
    global _installed
    if _installed:
        return
    from pytriton.models.model import Model

    uploaded, written = Model.get_proxy_model_files, Model.generate_model

    def get_proxy_model_files(self):
        files = uploaded(self)
        key = f"file:{self.model_version}/model.py"
        files[key] = patch_proxy_source(files[key].decode()).encode()
        return files

    def generate_model(self, model_repository):
        written(self, model_repository)
        path = model_repository / self.model_name / str(self.model_version) / "model.py"
        path.write_text(patch_proxy_source(path.read_text()))

    Model.get_proxy_model_files = get_proxy_model_files
    Model.generate_model = generate_model
    _installed = True
