# syntax=docker/dockerfile:1
# One image for every entry point: `datamanager operator | consume | audit | analytics`.
#
# BASE_IMAGE is the runtime's base and BUILD_IMAGE the base of the build stage; both need the same Python
# at the same path (the virtual environment's interpreter is a link to it). The defaults are the public
# Python images; where no registry is reachable, `make image` builds both from Debian packages instead
# (tests/rig/build.sh image_base). Dependencies come from requirements.lock (every file pinned by hash,
# regenerated with `make lock`), as wheels only: nothing is compiled, and the final image has no pip.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim
ARG BUILD_IMAGE=docker.io/library/python:3.11-slim

FROM ${BUILD_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# build tools (hatchling) in their own environment, so the application's has no pip or build backend
COPY build-requirements.lock ./
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-deps --require-hashes --only-binary=:all: -r build-requirements.lock
# dependencies before the source: a code change rebuilds only the layers below
COPY requirements.lock ./
# (the dependencies' own test suites go: 18 MB, never run here)
RUN python3 -m venv --without-pip /opt/datamanager \
 && /opt/build/bin/pip --python /opt/datamanager/bin/python install \
      --no-deps --require-hashes --only-binary=:all: -r requirements.lock \
 && find /opt/datamanager/lib -depth -type d -name tests -exec rm -rf {} +
COPY pyproject.toml README.md ./
COPY datamanager ./datamanager
COPY operator ./operator
COPY workers ./workers
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && /opt/build/bin/pip --python /opt/datamanager/bin/python install --no-deps --no-index /dist/*.whl

FROM ${BASE_IMAGE}
COPY --from=build /opt/datamanager /opt/datamanager
# The runtime user has a name (uid and gid 65532, "nonroot" as in distroless images): Kopf asks for the user
# name at start (getpass.getuser()), which fails for a uid that /etc/passwd lacks.
# No pip in the runtime: a public Python base ships one (and ensurepip's copy); the Debian-built base has none.
# Then the image proves it works on this base: every module of the three packages imports (a missing shared
# library or a wheel for another Python fails the build here, not in a cluster).
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'nonroot:x:65532:' >> /etc/group \
 && rm -rf /usr/local/bin/pip* /usr/local/lib/python3*/site-packages/pip* \
           /usr/local/lib/python3*/site-packages/setuptools* /usr/local/lib/python3*/site-packages/wheel* \
           /usr/local/lib/python3*/ensurepip /usr/lib/python3*/ensurepip \
 && /opt/datamanager/bin/python -c "import importlib, pkgutil; \
[importlib.import_module(m.name) for top in ('datamanager', 'datamanager_operator', 'datamanager_workers') \
 for m in pkgutil.walk_packages(importlib.import_module(top).__path__, top + '.') \
 if not m.name.endswith('__main__')]" \
 && /opt/datamanager/bin/datamanager --help >/dev/null
ENV PATH=/opt/datamanager/bin:$PATH \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# the uid the chart and the operator's Jobs run as (runAsNonRoot, read-only root filesystem)
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["datamanager"]
CMD ["--help"]
# last: the revision changes with every commit and would invalidate every layer after it
ARG VERSION=0.1.0
ARG REVISION=""
LABEL org.opencontainers.image.title="datamanager" \
      org.opencontainers.image.description="Operator, batch workers and stream consumer for Binance futures market data" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/petrosa/datamanager" \
      org.opencontainers.image.licenses="Apache-2.0"
