"""The pinned Go binaries: one spec file, builds keyed by version, clear errors."""
from __future__ import annotations

import pytest

from medmec.localcluster import binaries


def test_every_binary_the_platform_runs_is_pinned_in_one_file():
    specs = binaries.load_specs()
    names = {b for spec in specs.values() for b in spec.binaries}
    assert {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd",
            "kwok", "helm", "minio", "toxiproxy-server"} <= names
    for spec in specs.values():
        assert spec.version and spec.folder().name == f"{spec.name}-{spec.version}"


def test_kubernetes_is_built_with_staging_replacements_at_one_version():
    spec = binaries.load_specs()["kubernetes"]
    mod = binaries.go_mod(spec)
    assert f"require k8s.io/kubernetes {spec.version}" in mod
    assert f"k8s.io/client-go => k8s.io/client-go {spec.staging}" in mod
    assert f"k8s.io/api => k8s.io/api {spec.staging}" in mod
    assert "sample-" not in mod


def test_binary_names_come_from_packages_or_explicit_name():
    specs = binaries.load_specs()
    assert specs["toxiproxy"].binaries == ("toxiproxy-server",)
    assert specs["minio"].binaries == ("minio",)
    assert binaries.binary("kubectl").parent == specs["kubernetes"].folder()
    with pytest.raises(KeyError):
        binaries.binary("no-such-tool")


def test_missing_go_toolchain_is_named_and_nothing_is_half_built(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty cache: etcd must be built
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(binaries.BuildError, match="Go toolchain is not on PATH"):
        binaries.ensure(["etcd"])
    assert not (tmp_path / "medmec" / "bin").exists() or \
        not any((tmp_path / "medmec" / "bin").iterdir())


def test_unknown_entry_is_refused():
    with pytest.raises(binaries.BuildError, match="unknown binaries"):
        binaries.ensure(["kubelet-9000"])


def test_cached_binaries_are_not_rebuilt():
    binaries.ensure(["kubernetes"])  # the suite's own set-up has built it already
    assert binaries.ensure(["kubernetes"]) == {}
