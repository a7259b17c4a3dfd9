"""The sample hospital's nursing tokens (crds/samples) load in the nursing service: the pod
reads this Secret at start, and a malformed file stops it in CrashLoopBackOff."""
from __future__ import annotations

from pathlib import Path

import yaml

from medmec.workloads.nursing.tokens import Credentials

SAMPLES = Path(__file__).resolve().parents[2] / "crds" / "samples"


def _secret(path: Path, name: str) -> dict:
    return next(doc for doc in yaml.safe_load_all(path.read_text())
                if doc and doc["kind"] == "Secret" and doc["metadata"]["name"] == name)


def test_sample_tokens_secret_loads_and_the_ambulance_tokens_are_in_it(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(_secret(SAMPLES / "50-nursing.yaml", "nursing-tokens")["stringData"]["tokens.json"])
    credentials = Credentials.load(tokens)
    keys = _secret(SAMPLES / "60-ambulance.yaml", "ambulance-keys")["stringData"]
    device = credentials.authenticate(f"Bearer {keys['nursing-device-token']}")
    admit = credentials.authenticate(f"Bearer {keys['nursing-admit-token']}")
    assert (device.role, device.ward) == ("device", "4a")
    assert admit.role == "doctor" and admit.may_access("4a")
