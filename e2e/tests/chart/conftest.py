"""A control plane of the chart tests' own.

The chart installs cluster-scoped things (CRDs, PriorityClasses, BaseStations, ClusterRoles)
and its uninstall deliberately leaves CRDs, namespaces and hospital resources behind; on the
session's shared cluster that would change what other end-to-end tests see. So with a local
session cluster these tests start a private one (seconds); against an external KUBECONFIG
they use that cluster as it is.
"""
from __future__ import annotations

import pytest

from medmec.localcluster import cluster as localcluster, topology
from medmec.workloads.modelstore.testing import minio_server, model_store  # noqa: F401


@pytest.fixture(scope="module")
def chart_cluster(cluster, tmp_path_factory):
    if not cluster.local:
        yield cluster
        return
    folder = tmp_path_factory.mktemp("chart-cluster") / "cluster"
    state = localcluster.up(folder, str(topology.KWOK_ONLY))
    try:
        # the session fixture's handle type (kubectl, api, env) on the private cluster
        yield type(cluster)(kubeconfig=str(state.kubeconfig), local=True, state=state)
    finally:
        localcluster.down(folder)
