# syntax=docker/dockerfile:1
# The API image: a venv built in its own stages, copied into a slim runtime that runs as a non-root user.
#   CPU (default):  docker build -t mnist-digit-gan .
#   CUDA:           docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 -t mnist-digit-gan:cuda .
# Built and run in CI by `make container-test` (deploy/container/container-test.sh; README.md, Deployment).
ARG PYTHON_IMAGE=python:3.11-slim

# torch and the project's dependencies: this stage (1 GB) stays cached while only the code changes.
FROM ${PYTHON_IMAGE} AS deps
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the chosen flavour's index, so the project's torch>=2.3 is already satisfied.
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"
WORKDIR /build
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install -r requirements.txt

# The project itself, as a wheel (no dependencies: they are in the venv above).
FROM deps AS wheel
COPY README.md ./
COPY gan ./gan
COPY app ./app
COPY training ./training
RUN pip wheel --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin gan
COPY --from=deps /opt/venv /opt/venv
COPY --from=wheel /dist /tmp/dist
RUN /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
WORKDIR /srv
# The shipped store, owned by the service user: a fresh named volume mounted on /srv/model_store
# is filled from here with this ownership, so the service can write ACTIVE and new versions.
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
# Liveness, not readiness: "unhealthy" means restart me (a worker thread died). /readyz is 503
# while warming up and while draining after SIGTERM, which must not get a container killed;
# readiness probes use /readyz (deploy/kubernetes), nginx retries instead (deploy/nginx.conf).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "app"]
