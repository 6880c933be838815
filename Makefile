# labkit — the two commands a new user needs:  make lab   and   make test
# Every target creates the virtual environment (.venv) first if it is missing.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.stamp-setup
# The kit's own Jupyter settings (news pop-up and update check off) live in etc/jupyter:
# page_config.json and jupyter_server_config.json are found through JUPYTER_CONFIG_PATH, and
# overrides.json is copied into the venv's JupyterLab settings at setup.
export JUPYTER_CONFIG_PATH := $(CURDIR)/etc/jupyter
JOBS     ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup lab test test-fast test-portable course release grade bench lint format clean

help:  ## list the targets
	@echo "labkit — make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The stamp depends on pyproject.toml: editing dependencies reinstalls, otherwise setup takes a second.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (labkit)"
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp etc/jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the kit with its dev tools (once; seconds afterwards)

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup  ## set up, then open JupyterLab on notebooks/
	$(BIN)/jupyter lab $(ALLOW_ROOT) --notebook-dir=notebooks notebooks/00_welcome_and_baseline.ipynb

test: setup  ## run every test: the import contracts (pyproject.toml), pytest over tests/ and nbval over every notebook
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder tests/ \
		--nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg notebooks/ -p no:cacheprovider \
		--durations=25

# Every lab's compared outputs again under another OpenBLAS kernel (Nehalem on x86-64), one BLAS thread,
# numba for a generic CPU and numpy without AVX-512 (tests/blas_kernel.py prints what it got and stops
# if a setting did not take; tests/test_blas_kernel.py checks the same inside the run).
test-portable: setup  ## nbval over every lab again under another BLAS kernel, thread count and CPU target
	$(BIN)/python tests/blas_kernel.py --portable -- \
		$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder tests/test_blas_kernel.py \
		--nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg notebooks/ -p no:cacheprovider \
		--durations=15

test-fast: setup  ## unit tests only (no notebooks)
	$(BIN)/python -m pytest -n $(JOBS) tests/ -m "not slow and not browser" -p no:cacheprovider

# The course's template (etc/nbconvert/templates/labkit: figure alt text, contrast fixes) and a
# WCAG AA highlighting style (accessible-pygments' a11y-high-contrast-light); see scripts/nbbuild.py.
course: setup  ## execute every notebook into accessible HTML under build/course
	$(BIN)/python scripts/nbbuild.py --html build/course --execute-html notebooks/[0-9][0-9]_*.ipynb

release: setup  ## write release/student and release/solution for every lab (re-runs each lab first)
	$(BIN)/python -m labkit release --out release/

grade: setup  ## grade a lab: make grade LAB=00_welcome_and_baseline [SUBMISSIONS=dir] [OUT=dir]
	@test -n "$(LAB)" || { echo "usage: make grade LAB=00_welcome_and_baseline [SUBMISSIONS=submissions/LAB] [OUT=grades/LAB]"; exit 2; }
	$(BIN)/python -m labkit grade --assignment notebooks/$(LAB).ipynb \
		--submissions $(or $(SUBMISSIONS),submissions/$(LAB)) --out $(or $(OUT),grades/$(LAB)) --jobs $(JOBS)

bench: setup  ## benchmark the compression kernels against their peers
	$(BIN)/python -m labkit bench

lint: setup  ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup  ## format the code with ruff
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:  ## remove the virtual environment and build products
	rm -rf $(VENV) build release .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
