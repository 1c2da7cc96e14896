# syntax=docker/dockerfile:1
# One image for every entry point: `datamanager operator | consume | audit | analytics`.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.*
COPY pyproject.toml README.md ./
COPY datamanager ./datamanager
COPY operator ./operator
COPY workers ./workers
RUN python -m build --wheel --outdir /dist \
 && python -m venv /opt/datamanager \
 && /opt/datamanager/bin/pip install --no-cache-dir /dist/*.whl

FROM python:${PYTHON_VERSION}-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="datamanager" \
      org.opencontainers.image.description="Operator, batch workers and stream consumer for Binance futures market data" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/petrosa/datamanager" \
      org.opencontainers.image.licenses="Apache-2.0"
# runtime dependencies only: the virtual environment built above, no compilers, no build tools
COPY --from=build /opt/datamanager /opt/datamanager
ENV PATH=/opt/datamanager/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# the uid the chart and the operator's Jobs run as (runAsNonRoot, read-only root filesystem)
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["datamanager"]
CMD ["--help"]
