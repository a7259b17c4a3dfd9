"""Generate the Python gRPC code of the workloads from their .proto files.

Each workload keeps its .proto files in a `protos/` package; the generated `*_pb2.py`,
`*_pb2.pyi` and `*_pb2_grpc.py` files are build outputs (not committed). `ensure(folder)`
regenerates them when they are missing or older than their .proto, so a fresh checkout, the
Makefile and the container build (`python -m medmec.protogen`) all produce the same code.
"""
from __future__ import annotations

import fcntl
import re
import sys
from pathlib import Path

import medmec.workloads

# found through the import system: a folder of the checkout, or of site-packages
WORKLOADS = Path(medmec.workloads.__file__).resolve().parent


def _stale(proto: Path) -> bool:
    outputs = [proto.with_name(proto.stem + suffix) for suffix in ("_pb2.py", "_pb2_grpc.py")]
    return any(not o.exists() or o.stat().st_mtime < proto.stat().st_mtime for o in outputs)


def ensure(folder: Path) -> list[Path]:
    """Compile the stale .proto files in `folder`; returns those compiled."""
    protos = sorted(p for p in Path(folder).glob("*.proto") if _stale(p))
    if not protos:
        return []
    from grpc_tools import protoc  # only needed when something is stale

    with open(Path(folder) / ".protogen.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        protos = [p for p in protos if _stale(p)]
        for proto in protos:
            include = Path(protoc.__file__).parent / "_proto"
            rc = protoc.main(["protoc", f"-I{folder}", f"-I{include}",
                              f"--python_out={folder}", f"--pyi_out={folder}",
                              f"--grpc_python_out={folder}", str(proto)])
            if rc != 0:
                raise RuntimeError(f"protoc failed on {proto}")
            _make_imports_relative(folder, proto.stem)
    return protos


def _make_imports_relative(folder: Path, stem: str) -> None:
    # protoc writes `import x_pb2 as x__pb2`, which only works from the top level;
    # inside a package the sibling module must be imported relatively.
    siblings = {p.stem.removesuffix("_pb2") for p in Path(folder).glob("*_pb2.py")} | {stem}
    for path in (Path(folder) / f"{stem}_pb2_grpc.py", Path(folder) / f"{stem}_pb2.py"):
        text = path.read_text()
        for name in siblings:
            text = re.sub(rf"^import {name}_pb2 as ", f"from . import {name}_pb2 as ", text,
                          flags=re.M)
        path.write_text(text)


def main() -> int:
    compiled = [p for folder in sorted(WORKLOADS.glob("*/protos")) for p in ensure(folder)]
    for proto in compiled:
        print(f"generated code for {proto}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
