"""Joint inference: low-confidence cases go to a larger model on a second KServe v2 server,
and are kept in the `hard-examples` bucket for retraining.

Kept records hold the model input and outputs only: no request id, no patient identifier.
"""
from __future__ import annotations

import datetime
import logging
import queue
import threading
import uuid
from urllib.parse import urlsplit

import numpy as np

from medmec.workloads.modelstore.store import ModelStore

log = logging.getLogger(__name__)


class EscalationClient:
    """Sends a batch of cases to `model` on the KServe v2 HTTP server at `url`."""

    def __init__(self, url: str, model: str, timeout_s: float):
        import tritonclient.http as httpclient
        parts = urlsplit(url)
        self.model = model
        self._http = httpclient
        self._client = httpclient.InferenceServerClient(
            f"{parts.hostname}:{parts.port}", ssl=parts.scheme == "https",
            connection_timeout=timeout_s, network_timeout=timeout_s)
        self._lock = threading.Lock()  # the client holds one connection

    def classify(self, input_name: str, batch: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Class probabilities from the second model, and who decided each case there."""
        infer_input = self._http.InferInput(input_name, list(batch.shape), "FP32")
        infer_input.set_data_from_numpy(batch.astype(np.float32), binary_data=True)
        with self._lock:
            result = self._client.infer(self.model, [infer_input])
        probabilities = result.as_numpy("probabilities")
        # a medmec server says which model (and version) decided; a plain one does not
        decided = result.as_numpy("decided_by")
        if decided is None:
            version = result.get_response().get("model_version", "")
            tags = [f"{self.model}:{version}" if version else self.model] * len(batch)
        else:
            tags = [bytes(t).decode() for t in decided.reshape(-1)]
        return probabilities, tags

    def close(self) -> None:
        self._client.close()


class HardExampleRecorder:
    """Writes escalated cases to the store from a background thread, off the request path."""

    def __init__(self, store: ModelStore, capacity: int = 10_000):
        self._store = store
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self.stored = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="hard-examples", daemon=True)
        self._thread.start()

    def record(self, model: str, version: str, record: dict) -> bool:
        """Queue one case; False if the queue is full (the case is then not kept)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        key = f"{model}/{version}/{now:%Y-%m-%d}/{now:%H%M%S}-{uuid.uuid4().hex[:12]}.json"
        try:
            self._queue.put_nowait((key, {**record, "recorded_at": now.isoformat()}))
            return True
        except queue.Full:
            self.failed += 1
            return False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                key, record = item
                try:
                    self._store.put_hard_example(key, record)
                    self.stored += 1
                except Exception as err:  # the store being down must not stop serving
                    self.failed += 1
                    log.warning("could not keep a hard example: %s", err)
            finally:
                self._queue.task_done()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
