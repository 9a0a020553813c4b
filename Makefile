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
# Kernels picked by the CPU change float rounding (README, "Repeatable numbers"): where the
# CPU has AVX2 and FMA, OpenBLAS runs its Haswell kernels (an AVX-512 machine then gives an
# AVX2 machine's figures); it reads this when numpy loads. lungct_utils caps oneDNN and XLA.
ifeq ($(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -w avx2 | grep -cw fma),1)
export OPENBLAS_CORETYPE ?= Haswell
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Where `make data` and `make weights` copy from when nothing else is said.
LUNGCT_DATA_SOURCE ?= $(wildcard $(SHARED)/data/iq-othnccd)
LUNGCT_WEIGHTS_SOURCE ?= $(wildcard $(SHARED)/weights/keras-models)
export LUNGCT_DATA_SOURCE
# The external set of notebook 09 (scored only): read in place, never copied.
LUNGCT_EXTERNAL_DIR ?= $(abspath $(wildcard $(SHARED)/data/chest-ctscan))
export LUNGCT_EXTERNAL_DIR
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
WEIGHTS := mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5 \
           mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5

.PHONY: help venv data verify weights prepare report deployment-study study-finetune test test-fast \
        test-browser lint format \
        lab benchmark clean

help: ## list the targets
	@grep -hE '^[a-z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

# pip's own messages go to .venv/install.log; the console gets one line
$(STAMP): pyproject.toml
	@echo "set-up: installing .venv from pyproject.toml (log: $(VENV)/install.log)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install --upgrade pip && \
	   $(BIN)/python -m pip install -e ".[notebooks,dev]" && \
	   $(BIN)/python -c "import lungct_utils, papermill, nbval"; } > $(VENV)/install.log 2>&1 || \
	  { tail -20 $(VENV)/install.log; echo "set-up FAILED: see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

venv: $(STAMP) ## create or refresh .venv from pyproject.toml

data: $(STAMP) ## put the IQ-OTH/NCCD release into data/raw (from $LUNGCT_DATA_SOURCE), verified
	@$(BIN)/python -m lungct_utils -q fetch

verify: $(STAMP) ## check the release (or $LUNGCT_DATA_DIR) against data/manifest.csv
	@$(BIN)/python -m lungct_utils -q verify

weights: ## seed $KERAS_HOME/models with the MobileNetV2 ImageNet weights (default: .cache/keras)
	@mkdir -p "$(KERAS_HOME)/models"
	@for f in $(WEIGHTS); do \
	  if [ ! -s "$(KERAS_HOME)/models/$$f" ] && [ -n "$(LUNGCT_WEIGHTS_SOURCE)" ]; then \
	    cp "$(LUNGCT_WEIGHTS_SOURCE)/$$f" "$(KERAS_HOME)/models/$$f.tmp" && \
	    mv "$(KERAS_HOME)/models/$$f.tmp" "$(KERAS_HOME)/models/$$f"; fi; \
	  test -s "$(KERAS_HOME)/models/$$f" || echo "missing $(KERAS_HOME)/models/$$f: set LUNGCT_WEIGHTS_SOURCE to a folder holding it (Keras downloads it when online)"; \
	done

prepare: $(STAMP) weights ## groups of the originals, augmented set and split manifests -> data/processed
	$(BIN)/python -m lungct_utils -q prepare

# a YAML file of notebook parameters for `make report` (papermill -f), e.g. PARAMS=my.yaml
PARAMS ?= notebooks/params.yaml
# `make report RECOMPUTE=1`: ignore the results cache of the fold loops (data/interim/results)
ifdef RECOMPUTE
export LUNGCT_RECOMPUTE := $(RECOMPUTE)
endif

report: $(STAMP) weights ## the main job: every notebook -> reports/ (html, metrics.json, summary.md, README results, deployment.md, MODEL_CARD.md); PARAMS=file.yaml, RECOMPUTE=1
	@if [ -z "$$LUNGCT_DATA_DIR" ]; then $(MAKE) --no-print-directory data; fi
	@$(BIN)/python -m lungct_utils -q verify --brief
	@# the commit (and +dirty) before the run: the run rewrites tracked notebooks and reports
	@export LUNGCT_GIT_COMMIT="$$($(BIN)/python -c 'from lungct_utils.io_utils import git_commit; print(git_commit())')" && \
	$(BIN)/python -m lungct_utils report --params "$(PARAMS)"

deployment-study: $(STAMP) weights ## the long int8 calibration and latency study -> reports/deployment_study.md
	$(BIN)/python -m lungct_utils deployment --study

study-finetune: $(STAMP) weights ## fine-tune MobileNetV2's last block on the cases folds (about 6 min) -> reports/metrics/study_finetune.json
	$(BIN)/python -m lungct_utils finetune

# tests and nbval write reports to a temporary folder: only `make report` rewrites reports/
TEST_REPORTS = $(CURDIR)/.cache/test-reports

test: $(STAMP) weights ## ruff, every test (unit, real data, the notebooks under nbval); leaves git status clean
	@if [ -z "$$LUNGCT_DATA_DIR" ]; then $(MAKE) --no-print-directory data || \
	  echo "no dataset: data tests skip (and fail under LUNGCT_REQUIRE_DATA=1)"; fi
	@$(BIN)/ruff check -q . && $(BIN)/ruff format -q --check . && echo "ruff: lint and format OK"
	@rm -rf "$(TEST_REPORTS)" && mkdir -p "$(TEST_REPORTS)"
	@LUNGCT_REPORTS_DIR="$(TEST_REPORTS)" $(BIN)/python -m pytest -ra --durations=15 tests --ignore=tests/browser $(NOTEBOOKS) \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

test-fast: $(STAMP) ## unit tests only (no real data, no notebooks; under 2 minutes)
	@$(BIN)/ruff check -q . && echo "ruff: lint OK"
	@LUNGCT_REPORTS_DIR="$(TEST_REPORTS)" $(BIN)/python -m pytest -q -m "not slow" tests --ignore=tests/browser

test-browser: $(STAMP) ## the rendered reports and JupyterLab in headless Chromium (Debian's chromium package)
	@$(BIN)/python -c "import playwright" 2>/dev/null || \
	  $(BIN)/python -m pip install -e ".[browser]" >> $(VENV)/install.log 2>&1
	@test -x "$${LUNGCT_CHROMIUM:-/usr/bin/chromium}" || echo "test-browser needs Chromium: apt-get install chromium"
	@$(BIN)/python -m pytest -ra tests/browser

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
	rm -rf data/interim data/processed models reports/executed .cache/test-reports .pytest_cache .ruff_cache
