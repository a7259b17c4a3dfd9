"""gRPC interface of the dispatch service (robots, tasks, route streams)."""
from pathlib import Path

from medmec.protogen import ensure

ensure(Path(__file__).parent)
