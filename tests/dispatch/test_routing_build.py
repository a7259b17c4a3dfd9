"""The router runs compiled (setup.py builds it with Cython from routing.py): the speed the
benchmark reports is that of the compiled module, and an edit to the source must not go
unseen behind an older build."""
from pathlib import Path

from medmec.workloads.dispatch import routing

SOURCE = Path(__file__).resolve().parents[2] / "workloads/dispatch/routing.py"


def test_the_router_in_use_is_the_compiled_one():
    assert routing.__file__.endswith(".so"), (
        f"{routing.__file__} is the Python source: build the extension (make venv)")


def test_the_compiled_router_is_not_older_than_its_source():
    built = Path(routing.__file__)
    assert built.stat().st_mtime >= SOURCE.stat().st_mtime, (
        f"{SOURCE} changed after {built.name} was built: make venv compiles it again")
