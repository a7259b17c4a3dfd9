"""A model version loaded into ONNX Runtime, after its files were verified."""
from __future__ import annotations

import dataclasses
import logging
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

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(["probabilities"], {self.input["name"]: batch})[0]


def session(model_file: Path, threads: int = 0):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0: one per core
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


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
