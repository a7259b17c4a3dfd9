#!/usr/bin/env bash
# Debian packages that the tests use as real parts and that pip cannot bring:
# Chromium (the console's browser tests), PostgreSQL (the nursing store's server), and
# iptables and ipset (kube-router's NetworkPolicy firewall, e2e/localcluster/netpolicy.py).
# Installs only what is missing; needs root (or sudo) and apt-get.
set -euo pipefail
missing=()
[ -x "${MEDMEC_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
if ! command -v initdb >/dev/null && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
command -v iptables >/dev/null || missing+=(iptables)
command -v ipset >/dev/null || missing+=(ipset)
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
