# syntax=docker/dockerfile:1
# The API image: a venv built in one stage, copied into a slim runtime that runs as a non-root user.
#   CPU (default):  docker build -t mnist-digit-gan .
#   CUDA:           docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 -t mnist-digit-gan:cuda .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the chosen flavour's index, so the project's torch>=2.3 is already satisfied.
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"
WORKDIR /build
COPY pyproject.toml README.md ./
COPY gan ./gan
COPY app ./app
COPY training ./training
RUN pip install .

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin gan
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY --chown=gan:gan model_store ./model_store
RUN mkdir -p /srv/var && chown gan:gan /srv/var
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GAN_HOST=0.0.0.0 \
    GAN_PORT=8000 \
    GAN_MODEL_STORE=/srv/model_store \
    GAN_STATE_DIR=/srv/var \
    GAN_LOG_JSON=true
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "app"]
