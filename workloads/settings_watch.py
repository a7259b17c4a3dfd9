"""Settings a workload reads from a file the operator writes (a mounted ConfigMap), picked up
again when the file changes, without a restart.

The kubelet replaces a ConfigMap volume's files atomically (a symlink swap) some seconds
after the ConfigMap changes, so polling the text is enough and sees every change. A file
that does not parse changes nothing: the last good settings stay, and the error is logged."""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def parse_json(model: type[M], text: str) -> M:
    """A settings file as the operator renders it (JSON); ValueError naming the first bad
    field."""
    try:
        return model.model_validate(json.loads(text))
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise ValueError(f"{where}: {first['msg']}") from None


class SettingsWatch(Generic[T]):
    def __init__(self, path: Path, parse: Callable[[str], T], apply: Callable[[T], None],
                 interval_s: float = 2.0):
        self.path, self.parse, self.apply, self.interval_s = Path(path), parse, apply, interval_s
        self.text: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> T:
        """Read, parse and apply the file now; ValueError naming it when it is not valid."""
        text = self.path.read_text()
        try:
            settings = self.parse(text)
        except ValueError as err:
            raise ValueError(f"{self.path}: {err}") from None
        self.apply(settings)
        self.text = text
        return settings

    def poll(self) -> bool:
        """Apply the file if its text changed since the last good read; whether it did."""
        try:
            text = self.path.read_text()
        except OSError as err:
            log.warning("cannot read settings %s (keeping the last ones): %s", self.path, err)
            return False
        if text == self.text:
            return False
        try:
            settings = self.parse(text)
        except ValueError as err:
            log.error("settings %s are invalid; keeping the last good ones: %s", self.path, err)
            self.text = text  # reported once, not on every poll
            return False
        self.apply(settings)
        self.text = text
        log.info("settings %s changed and were applied", self.path)
        return True

    def start(self) -> "SettingsWatch[T]":
        def run() -> None:
            while not self._stop.wait(self.interval_s):
                self.poll()
        self._thread = threading.Thread(target=run, name=f"settings {self.path.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
