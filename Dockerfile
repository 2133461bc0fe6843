# flatlab images. Two targets from one file:
#   api    — API, migrations, CLI; no torch (the API never imports it)
#   worker — the api image plus torch; runs `flatlab worker`, one process per GPU
# Build: docker build --target worker --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t flatlab-worker .
FROM python:3.11-slim AS api

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLATLAB_HOME=/var/lib/flatlab

WORKDIR /app
COPY pyproject.toml README.md ./
COPY flatlab ./flatlab
COPY sam_core ./sam_core
COPY store ./store
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations
RUN pip install . \
    && useradd --create-home --uid 10001 flatlab \
    && mkdir -p /var/lib/flatlab \
    && chown flatlab:flatlab /var/lib/flatlab

ARG GIT_COMMIT=""
ENV FLATLAB_GIT_COMMIT=${GIT_COMMIT}
USER flatlab
EXPOSE 8000
CMD ["flatlab", "api", "--host", "0.0.0.0", "--port", "8000"]

FROM api AS worker
USER root
# CUDA wheels by default; --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for CPU.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch>=2.3"
USER flatlab
# The device comes from the compose file's GPU reservation; --gpu 0 is the first one it sees.
CMD ["flatlab", "worker", "--gpu", "0"]
