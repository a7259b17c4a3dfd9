"""A model version loaded into ONNX Runtime, after its files were verified."""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from medmec.workloads.modelstore import modelcard
from medmec.workloads.modelstore.store import ModelStore, StoreError, verify_bundle

log = logging.getLogger(__name__)


@dataclasses.dataclass
class LoadedModel:
    name: str
    version: str
    metadata: dict
    session: object  # onnxruntime.InferenceSession

    @property
    def input(self) -> dict:
        return self.metadata["inputs"][0]

    @property
    def row_shape(self) -> tuple[int, ...]:
        """The shape of one case (the input's shape without the batch dimension)."""
        return tuple(self.input["shape"][1:])

    @property
    def classes(self) -> list[str]:
        return self.metadata["classes"]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider that serves (first of the session's)."""
        return self.session.get_providers()[0]

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(["probabilities"], {self.input["name"]: batch})[0]


CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def choose_providers(available: list[str], gpu_present: bool) -> list[str]:
    """CUDA (CPU as fallback for the operators it lacks) when the node gave this container a
    GPU and the image's ONNX Runtime is the CUDA build; the CPU provider otherwise."""
    return [CUDA, CPU] if gpu_present and CUDA in available else [CPU]


def gpu_present(dev: Path = Path("/dev"), environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this container was given an NVIDIA GPU: the device plugin mounts its
    /dev/nvidiaN files; CUDA_VISIBLE_DEVICES set empty hides them."""
    if environ.get("CUDA_VISIBLE_DEVICES") == "":
        return False
    return any(path.name[len("nvidia"):].isdigit() for path in dev.glob("nvidia*"))


def session(model_file: Path, threads: int = 0):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0: one per core
    providers = choose_providers(ort.get_available_providers(), gpu_present())
    created = ort.InferenceSession(str(model_file), options, providers=providers)
    if created.get_providers()[0] != providers[0]:
        log.warning("ONNX Runtime could not start %s for %s; serving on %s", providers[0],
                    model_file, created.get_providers()[0])
    return created


def load(model_dir: Path, name: str, version: str, store: ModelStore | None = None,
         threads: int = 0) -> LoadedModel:
    """Load `model_dir/name/version`, pulling it from `store` first if it is not there.

    A folder whose files do not match their metadata's sha256 is refused (StoreError).
    """
    folder = Path(model_dir) / name / version
    if not (folder / modelcard.METADATA_FILE).is_file():
        if store is None:
            raise StoreError(f"{folder} holds no model version, and no model store is "
                             "configured (MEDMEC_STORE_*) to pull it from")
        log.info("pulling %s:%s from the model store", name, version)
        store.pull(name, version, folder)
    metadata = modelcard.read_metadata(folder)
    if (metadata.get("name"), str(metadata.get("version"))) != (name, version):
        raise StoreError(f"{folder} holds {metadata.get('name')}:{metadata.get('version')}, "
                         f"not {name}:{version}")
    verify_bundle(folder, metadata)
    return LoadedModel(name, version, metadata, session(folder / modelcard.MODEL_FILE, threads))
