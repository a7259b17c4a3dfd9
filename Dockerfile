# syntax=docker/dockerfile:1
# One image for the medmec operator and every workload it deploys; the `medmec` command is
# the entrypoint (`medmec operator run`, `medmec serve inference|dispatch|nursing`,
# `medmec models pull ...`). Build: docker build -t ghcr.io/medmec/medmec:0.1.0 .
# Without a registry, `medmec image build` builds it with podman on a Debian bookworm base
# made from Debian's packages (PYTHON_IMAGE; BUILD_IMAGE adds a C compiler and Python's
# headers), installing from a local folder of wheels.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# the build stage compiles the dispatch router (setup.py, Cython): it needs gcc and Python.h
ARG BUILD_IMAGE=python:3.11.14-bookworm

# ---- build: the virtualenv, with every dependency pinned --------------------------------
FROM ${BUILD_IMAGE} AS build
# Optional: pip's --find-links and --no-index, to install from a mounted folder of wheels
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# the pinned dependencies first, in a layer of their own: a change to medmec's code keeps it
COPY deploy/image/ deploy/image/
RUN sh deploy/image/build-venv.sh /opt/medmec
COPY pyproject.toml setup.py README.md ./
COPY medmec/ medmec/
COPY operator/ operator/
COPY workloads/ workloads/
COPY e2e/localcluster/ e2e/localcluster/
# the same script tests/image runs to check this build
RUN sh deploy/image/build-venv.sh /opt/medmec /src

# ---- runtime: the virtualenv on a slim base, as a non-root user ---------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="medmec" \
      org.opencontainers.image.description="Operator and edge workloads for 5G smart-hospital MEC clusters" \
      org.opencontainers.image.source="https://github.com/medmec/medmec" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 medmec \
 && useradd --system --uid 10001 --gid medmec --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin medmec \
 && mkdir -p /models /var/lib/medmec \
 && chown medmec:medmec /models /var/lib/medmec
COPY --from=build /opt/medmec /opt/medmec
# No writes outside the mounted volumes (/tmp, /models, /var/lib/medmec): the root filesystem
# can be mounted read-only. Triton's Python backend stub links libpython3.11 and must load
# the interpreter's own copy (another build of it fails to load models with
# "'_thread.RLock' object has no attribute '_recursion_count'"). The official python image
# keeps it in /usr/local/lib, hence LD_LIBRARY_PATH; Debian's python3 keeps it in the
# linker's default folder (/usr/lib/<arch>), which needs nothing.
ENV PATH=/opt/medmec/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    LD_LIBRARY_PATH=/usr/local/lib \
    MEDMEC_HEALTH_URL=http://127.0.0.1:8080/healthz
USER 10001:10001
WORKDIR /var/lib/medmec
# 8000/8001/8002 inference HTTP/gRPC/metrics; 8080 health and REST; 50051 gRPC services
EXPOSE 8000 8001 8002 8080 50051
# The operator, dispatch and nursing answer on :8080/healthz; set MEDMEC_HEALTH_URL for
# inference (http://127.0.0.1:8000/v2/health/ready). Kubernetes uses the chart's probes instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['MEDMEC_HEALTH_URL'], timeout=4)"]
ENTRYPOINT ["medmec"]
CMD ["--help"]
