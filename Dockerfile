# syntax=docker/dockerfile:1
# The operator image: build wheels in one stage, install only the operator's wheel (and its
# pinned runtime dependencies) in the next. No test extras, no kubectl, no helm.
# Build: docker build -t aks-runcommand-operator:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheel is built from: the package metadata and the package itself, without the
# emulator (controller/emulator, a token issuer and a `bash -c` executor for tests and the demo):
# .dockerignore keeps it out of the context; its console script is dropped here.
COPY pyproject.toml README.md ./
COPY controller ./controller
RUN test ! -e controller/emulator \
    && sed -i '/^aks-arm-emulator = /d' pyproject.toml \
    && ! grep -q emulator.__main__ pyproject.toml
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
    && python -c "import importlib.util as u, sys; sys.exit(u.find_spec('controller.emulator') is not None)" \
    && ! command -v aks-arm-emulator \
    && groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin nonroot
# The root filesystem can be read-only: nothing is written outside /tmp (HOME and TMPDIR), which
# the Helm chart mounts as an emptyDir.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["aks-runcommand-operator"]
