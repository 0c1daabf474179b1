# syntax=docker/dockerfile:1
# The operator image: build wheels in one stage, install only the operator's wheel (and its
# pinned runtime dependencies) in the next. No test extras, no kubectl, no helm.
# Build: docker build -t aks-runcommand-operator:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the operator's distribution is built from: its package metadata and its package.
# The emulator (emulator/) and the kubectl plugin (kubectl-plugin/) are distributions of their
# own, outside controller/, so they are not in the context (.dockerignore) nor in the wheel.
COPY pyproject.toml README.md ./
COPY controller ./controller
# Wheels for the operator and every runtime dependency (hatchling comes from the build isolation).
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp \
    TMPDIR=/tmp
# Install from the builder's wheels only (no index): the wheels never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels aks-runcommand-operator \
    && groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin nonroot
# The root filesystem can be read-only: nothing is written outside /tmp (HOME and TMPDIR), which
# the Helm chart mounts as an emptyDir.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["aks-runcommand-operator"]
