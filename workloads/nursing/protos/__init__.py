"""gRPC interface of the nursing service (wearable vitals stream, ward alert stream)."""
from pathlib import Path

from medmec.protogen import ensure

ensure(Path(__file__).parent)
