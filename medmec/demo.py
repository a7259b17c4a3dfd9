"""`make demo`: medmec on the local control plane, end to end, in one command.

Brings the local cluster up (or reuses the running one) and shows the hospital's edge:
the nodes grouped by 5G base station with their GPUs. Everything it starts is recorded in
the cluster's state, so `medmec cluster down` tears it all down.
"""
from __future__ import annotations

import sys

from medmec.localcluster import cluster


def log(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def main() -> int:
    folder = cluster.state_dir()
    try:
        state = cluster.up(folder, log=log)
    except cluster.ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(cluster.describe(state))
    print(f"""
Explore:
  export KUBECONFIG={state.kubeconfig}
  {cluster.binaries.binary('kubectl')} get nodes -L medmec.io/base-station,nvidia.com/gpu.product
  .venv/bin/medmec cluster status
Tear down:
  .venv/bin/medmec cluster down""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
