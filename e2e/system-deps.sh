#!/usr/bin/env bash
# Debian packages that the tests use as real parts and that pip cannot bring:
# Chromium (the console's browser tests), PostgreSQL (the nursing store's server), a JDK
# with Maven (the HAPI FHIR validator the nursing tests fetch from Maven Central), podman with
# mmdebstrap and a static C toolchain (`medmec image build`), and what the local cluster's
# real nodes run on: runc, the CNI plugins, nftables, iproute2 and nsenter (util-linux), and
# iptables and ipset for kube-router's NetworkPolicy firewall (netpolicy.py).
# Installs only what is missing; needs root (or sudo) and apt-get.
set -euo pipefail
missing=()
[ -x "${MEDMEC_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
if ! command -v initdb >/dev/null && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
[ -x /usr/sbin/runc ] || missing+=(runc)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v nft >/dev/null || missing+=(nftables)
command -v ip >/dev/null || missing+=(iproute2)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v iptables >/dev/null || missing+=(iptables)
command -v ipset >/dev/null || missing+=(ipset)
command -v javac >/dev/null || missing+=(default-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v podman >/dev/null || missing+=(podman)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v gcc >/dev/null || missing+=(gcc)
compgen -G '/usr/lib/*/libc.a' >/dev/null || missing+=(libc6-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages the tests need: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "error: run as root, or install: apt-get install ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
command -v apt-get >/dev/null || { echo "error: no apt-get here; install ${missing[*]} by hand" >&2; exit 1; }
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
