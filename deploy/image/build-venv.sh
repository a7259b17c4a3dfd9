#!/bin/sh
# Build the medmec virtualenv of the image, in two steps the Dockerfile runs as two layers
# (so that a change to medmec's own code does not reinstall its dependencies):
#   build-venv.sh VENV        the virtualenv with the pinned dependencies only
#   build-venv.sh VENV SRC    medmec itself into it (creating it first if needed)
# tests/image runs the same two steps in a temporary folder, so what the image ships is
# what the test checked.
#   VENV  where the virtualenv goes (/opt/medmec in the image)
#   SRC   the build context: pyproject.toml, README.md, the package folders, deploy/image
set -eu
# the working directory may be SRC, whose operator/ would shadow the standard library's
export PYTHONSAFEPATH=1
venv=$1
src=${2:-}
constraints=$(dirname "$0")/constraints.txt
pip() { "$venv/bin/python" -m pip --disable-pip-version-check --quiet "$@"; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ -z "$src" ]; then
    # every runtime dependency at the version pinned (and tested) in the constraints file
    pip install --requirement "$constraints"
    exit 0
fi
pip install --constraint "$constraints" "$src"
# gRPC code of the workloads, generated into the installed packages
"$venv/bin/python" -m medmec.protogen
# the build tools are not needed at run time
pip uninstall --yes pip
