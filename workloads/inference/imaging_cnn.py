"""An imaging-sized CNN (3x224x224 in, two classes out) with seeded random weights.

No labelled medical images can be had here, so this model is UNTRAINED: it exists to
measure serving throughput and latency at imaging input sizes, never to diagnose. It is
built with onnx.helper and numpy (no deep-learning framework) and generated on demand into
the cache, since its weights (about 2 MB) are not worth committing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from medmec.localcluster.binaries import cache_root
from medmec.workloads.modelstore import modelcard
from medmec.workloads.modelstore.store import StoreError, verify_bundle

NAME = "imaging-cnn-untrained"
VERSION = "1"
OPSET = {"": 17}
IR_VERSION = 8  # what ONNX Runtime 1.x loads (onnx 1.23 would write a newer one)
SIZE = 224
# (out channels, kernel, stride) of each convolution after the stem
STAGES = [(64, 3, 1), (64, 3, 2), (128, 3, 1), (128, 3, 2), (256, 3, 2)]


def build(seed: int = 0) -> bytes:
    """The serialized ONNX model: conv stem, five conv layers, global pooling, softmax."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []

    def conv(x: str, c_in: int, c_out: int, k: int, s: int, i: int) -> str:
        # He-initialised so activations neither vanish nor explode through the layers
        w = rng.normal(0, np.sqrt(2 / (c_in * k * k)), (c_out, c_in, k, k)).astype(np.float32)
        weights.extend([numpy_helper.from_array(w, f"conv{i}.w"),
                        numpy_helper.from_array(np.zeros(c_out, np.float32), f"conv{i}.b")])
        nodes.append(helper.make_node("Conv", [x, f"conv{i}.w", f"conv{i}.b"], [f"conv{i}"],
                                      kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        return f"relu{i}"

    x = conv("image", 3, 32, 7, 2, 0)
    nodes.append(helper.make_node("MaxPool", [x], ["pool0"], kernel_shape=[3, 3],
                                  strides=[2, 2], pads=[1, 1, 1, 1]))
    x, c = "pool0", 32
    for i, (c_out, k, s) in enumerate(STAGES, start=1):
        x, c = conv(x, c, c_out, k, s, i), c_out
    fc = rng.normal(0, np.sqrt(1 / c), (c, 2)).astype(np.float32)
    weights += [numpy_helper.from_array(fc, "fc.w"),
                numpy_helper.from_array(np.zeros(2, np.float32), "fc.b")]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
              helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0)]
    graph = helper.make_graph(
        nodes, "imaging_cnn_untrained",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        initializer=weights)
    model = helper.make_model(graph, producer_name="medmec-models", producer_version="1",
                              opset_imports=[helper.make_opsetid(d, v) for d, v in OPSET.items()])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


METADATA = {
    "name": NAME,
    "version": VERSION,
    "format": "onnx",
    "opset": OPSET,
    "untrained": True,
    "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 3, SIZE, SIZE],
                "description": "RGB image, channels first, any scale (random weights)"}],
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [-1],
         "description": "index of the larger output; meaningless (untrained)"},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2],
         "description": "softmax of random projections; NOT class probabilities of anything"}],
    "classes": ["class-0", "class-1"],
}


def card() -> str:
    return modelcard.render_card(
        METADATA,
        "UNTRAINED convolutional network of imaging size (seven convolutions, about 0.6 M "
        "parameters, about 0.5 GFLOP per image) with seeded random weights. FOR PERFORMANCE "
        "MEASUREMENT ONLY. NOT A DIAGNOSTIC MODEL.",
        "None. No labelled medical images are available on this platform's build machines; "
        "the weights are random numbers (numpy seed 0).",
        "Throughput and latency measurement of the serving path (Triton, dynamic batching, "
        "ONNX Runtime) at imaging input sizes.",
        "Its outputs mean nothing. It must never be shown to a clinician, attached to a "
        "patient, or deployed for diagnosis.")


def default_root() -> Path:
    return cache_root() / "models"


def ensure(root: Path | None = None) -> Path:
    """The version folder of the imaging model, (re)generated into `root` unless it already
    holds exactly what this code builds."""
    folder = (root or default_root()) / NAME / VERSION
    onnx_bytes = build()
    try:
        verify_bundle(folder, modelcard.read_metadata(folder))
        current = modelcard.sha256_file(folder / modelcard.MODEL_FILE)
    except (OSError, ValueError, StoreError):
        current = None
    if current != modelcard.sha256_bytes(onnx_bytes):
        modelcard.write_version(folder, onnx_bytes, METADATA, card())
    return folder
