# lungct: `make report` runs everything on the real data; `make test` checks it.
# Both create or refresh .venv (Python 3.11) from pyproject.toml first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED := ../shared

# Keras looks for the ImageNet weights in $KERAS_HOME/models; keep them in the repo's cache.
export KERAS_HOME ?= $(CURDIR)/.cache/keras
export IPYTHONDIR ?= $(CURDIR)/.ipython
export PYTHONHASHSEED ?= 0
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Where `make data` and `make weights` copy from when nothing else is said.
LUNGCT_DATA_SOURCE ?= $(wildcard $(SHARED)/data/iq-othnccd)
LUNGCT_WEIGHTS_SOURCE ?= $(wildcard $(SHARED)/weights/keras-models)
export LUNGCT_DATA_SOURCE
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
WEIGHTS := mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5 \
           mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5

.PHONY: help venv data verify weights prepare report test lint format lab benchmark clean

help: ## list the targets
	@grep -hE '^[a-z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[notebooks,dev]"
	$(BIN)/python -c "import lungct_utils, tensorflow, papermill, nbval"
	@touch $(STAMP)

venv: $(STAMP) ## create or refresh .venv from pyproject.toml

data: $(STAMP) ## put the IQ-OTH/NCCD release into data/raw (from $LUNGCT_DATA_SOURCE), verified
	$(BIN)/python -m lungct_utils -q fetch

verify: $(STAMP) ## check the release (or $LUNGCT_DATA_DIR) against data/manifest.csv
	$(BIN)/python -m lungct_utils -q verify

weights: ## seed $KERAS_HOME/models with the MobileNetV2 ImageNet weights
	@mkdir -p "$(KERAS_HOME)/models"
	@for f in $(WEIGHTS); do \
	  if [ ! -s "$(KERAS_HOME)/models/$$f" ] && [ -n "$(LUNGCT_WEIGHTS_SOURCE)" ]; then \
	    cp "$(LUNGCT_WEIGHTS_SOURCE)/$$f" "$(KERAS_HOME)/models/$$f.tmp" && \
	    mv "$(KERAS_HOME)/models/$$f.tmp" "$(KERAS_HOME)/models/$$f"; fi; \
	  test -s "$(KERAS_HOME)/models/$$f" || echo "missing $(KERAS_HOME)/models/$$f: set LUNGCT_WEIGHTS_SOURCE to a folder holding it (Keras downloads it when online)"; \
	done

prepare: $(STAMP) ## build the augmented set and split manifests under data/processed
	$(BIN)/python -m lungct_utils -q prepare

report: $(STAMP) weights ## the main job: notebooks 01-05 -> reports/*.html, metrics.json, summary.md, deployment.md, MODEL_CARD.md
	@if [ -z "$$LUNGCT_DATA_DIR" ]; then $(MAKE) --no-print-directory data; fi
	$(MAKE) --no-print-directory verify
	@# the commit (and +dirty) before the run: the run rewrites tracked notebooks and reports
	export LUNGCT_GIT_COMMIT="$$($(BIN)/python -c 'from lungct_utils.provenance import git_commit; print(git_commit())')" && \
	$(BIN)/python -m lungct_utils report && \
	$(BIN)/python -m lungct_utils deployment

test: $(STAMP) weights ## ruff, then the test suite (unit and real-data tests)
	@if [ -z "$$LUNGCT_DATA_DIR" ]; then $(MAKE) --no-print-directory data || \
	  echo "no dataset: data tests skip (and fail under LUNGCT_REQUIRE_DATA=1)"; fi
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -ra tests $(NOTEBOOKS) --nbval-lax --nbval-current-env

lint: $(STAMP) ## ruff check only
	$(BIN)/ruff check .

format: $(STAMP) ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

benchmark: $(STAMP) weights ## time the fast route against plain Keras -> reports/benchmarks.md
	@if [ -z "$$LUNGCT_DATA_DIR" ]; then $(MAKE) --no-print-directory data; fi
	$(BIN)/python -m lungct_utils benchmark

# extra options for `make lab`, e.g. LAB_ARGS="--no-browser --port 8899"; as root (containers)
# Jupyter refuses to start without --allow-root, so it is added there
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP) weights ## open JupyterLab on the notebooks (options: LAB_ARGS="...")
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG) $(LAB_ARGS)

clean: ## remove generated data, models, caches (keeps data/raw and .venv)
	rm -rf data/interim data/processed models reports/executed .pytest_cache .ruff_cache
