#!/bin/sh
# Build the medmec virtualenv of the image: `build-venv.sh VENV SRC`.
# The Dockerfile runs exactly this, and tests/image runs it in a temporary folder, so what
# the image ships is what the test checked.
#   VENV  where the virtualenv goes (/opt/medmec in the image)
#   SRC   the build context: pyproject.toml, README.md, the package folders, deploy/image
set -eu
# the working directory may be SRC, whose operator/ would shadow the standard library's
export PYTHONSAFEPATH=1
venv=$1
src=$2
python3 -m venv "$venv"
# every dependency at the version pinned in the constraints file (the tested versions)
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
    --constraint "$src/deploy/image/constraints.txt" "$src"
# gRPC code of the workloads, generated into the installed packages
"$venv/bin/python" -m medmec.protogen
# the build tools are not needed at run time
"$venv/bin/python" -m pip uninstall --disable-pip-version-check --quiet --yes pip
