# Two commands do all set-up: `make book` and `make test`. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HTML   := _build/html/index.html
# Rebuild the book only when one of its sources changed: a no-change `make book` is instant.
# (code/ holds the reparam package the chapters import and the book's Sphinx extension.)
BOOK_SOURCES := _config.yml _toc.yml $(shell find chapters code -type f \
                  ! -path '*/__pycache__/*' ! -path '*/.ipynb_checkpoints/*' \
                  ! -path '*.egg-info/*' 2>/dev/null)
# --all: Sphinx re-reads every page (fresh environment), so every warning and every stderr
# output is reported again on every build; outputs of unchanged code come from the cache.
JB_FLAGS := --all -W -n --keep-going
# Execution cache (jupyter-cache, `execute_notebooks: cache` in _config.yml). It is keyed on a
# notebook's code cells (source and metadata) and kernelspec only, so it is emptied whenever
# something else a chapter's outputs depend on changes: the reparam package or the installed
# packages. A notebook that failed is never cached, so it is executed again on the next build.
CACHE := _build/.jupyter_cache
CACHE_INPUTS := $(VENV)/.installed requirements.txt $(shell find code/reparam -type f \
                  ! -path '*/__pycache__/*' 2>/dev/null)
# The order in which chapters are handed to the kernels, one per core (a chapter not listed
# goes last). Simulated for two cores over every order of the eight chapters with their
# measured execution times, +-15 %: the diffusion chapter (the longest) starts on one core
# while the other runs three short chapters and then the VAE, so both end close together
# (50.6 s expected, against 53.1 s for plain longest-first; the bound is 49.6 s).
EXECUTION_ORDER := 09_diffusion 05_other_distributions 03_pathwise_gradient \
                   06_discrete_choices 07_vae 04_the_real_trick 01_change_of_variables \
                   02_seeing_the_map
NOTEBOOKS := $(wildcard chapters/*.ipynb)
NOTEBOOKS_ORDERED := $(foreach name,$(EXECUTION_ORDER),$(filter %/$(name).ipynb,$(NOTEBOOKS))) \
  $(filter-out $(EXECUTION_ORDER:%=\%/%.ipynb),$(sort $(NOTEBOOKS)))
# The same as execute.timeout in _config.yml.
EXEC_TIMEOUT := 300
# One math-library thread per kernel, in every build: two kernels run at once on two cores,
# and more threads than cores (spinning OpenMP threads) slows both down. Every build, serial
# or parallel, uses the same setting, so floating-point reductions and hence the glued
# numbers do not depend on how a build was scheduled.
KERNEL_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Step 1 of a build: execute, in parallel, the chapters missing from the cache, in ONE Python
# process (three `jcache` commands cost ~7 s of CPU in start-up alone, most of a prose-edit
# rebuild). With at least two chapters per core to execute (a clean build), in warm
# kernels: forks of one process that imported the chapters' libraries once
# (code/execute_chapters.py; REPARAM_WARM_KERNELS=1 always, =0 never). A chapter that
# fails is not cached and is reported by step 2, which executes it again.
# tests/conftest.py runs this same target (with its own CACHE and NOTEBOOKS).
# ipykernel logs a notice at every kernel start that its (local, loopback) TCP sockets are not
# encrypted; it buries real messages in the build log. This IPython configuration (read by
# every kernel of this .venv) drops exactly that record; every other kernel log record, and
# every stderr output of a cell (which fails the build), still appears.
KERNEL_CONFIG := $(VENV)/etc/ipython/ipython_kernel_config.py
define KERNEL_CONFIG_PY
# Written by the Makefile (make kernel-config); see the Makefile for why.
import logging


class _DropUnencryptedTcpNotice(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        return not message.startswith("Kernel is running over TCP without encryption")


logging.getLogger("IPKernelApp").addFilter(_DropUnencryptedTcpNotice())
endef
export KERNEL_CONFIG_PY
# Jupyter refuses to run as root (containers, CI machines) unless told it may.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: book test lint lab bench clean distclean help kernel-config execute-chapters
.DEFAULT_GOAL := help

help:
	@echo "make book   build the website (_build/html), executing the chapters whose code changed"
	@echo "make test   run the whole test suite (builds the book from clean, browser tests too)"
	@echo "make lint   ruff over code/, tests/, benchmarks/ and the chapters"
	@echo "make lab    open the chapters in JupyterLab with live ipywidgets"
	@echo "make bench  run the benchmarks, write benchmarks/results.json"
	@echo "make clean  remove build outputs (keeps .venv); make distclean also removes .venv"

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	@touch $@

$(VENV)/.installed: $(VENV)/.python-ok requirements.txt pyproject.toml
	$(BIN)/python -m pip install -r requirements.txt
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/python -m pip install -r requirements-test.txt
	@touch $@

$(KERNEL_CONFIG): Makefile $(VENV)/.python-ok
	@mkdir -p $(dir $@)
	@printf '%s\n' "$$KERNEL_CONFIG_PY" > $@
	@echo "wrote $@"
kernel-config: $(KERNEL_CONFIG)

# Empty the execution cache when the package or the environment changed (see CACHE above).
_build/.cache-inputs: $(CACHE_INPUTS)
	rm -rf $(CACHE)
	@mkdir -p _build && touch $@

$(HTML): $(VENV)/.installed $(KERNEL_CONFIG) _build/.cache-inputs $(BOOK_SOURCES)
	@# 1. Execute the chapters missing from the cache, in parallel on every core.
	@# 2. Build strictly from a fresh Sphinx environment; cached outputs are reused, any
	@#    notebook not in the cache (it failed, or is new) is executed again and fails the
	@#    build if it fails. On failure remove index.html so make retries next time.
	@$(MAKE) --no-print-directory execute-chapters
	$(KERNEL_ENV) $(BIN)/jupyter-book build $(JB_FLAGS) . || { rm -f $(HTML); exit 1; }
	@touch $@

execute-chapters:
	@mkdir -p $(CACHE)
	$(KERNEL_ENV) $(BIN)/python code/execute_chapters.py $(CACHE) $(EXEC_TIMEOUT) \
	  $(NOTEBOOKS_ORDERED)

book: $(HTML)
	@echo "The book is at: $(abspath $(HTML))"

# CI and `make test` build the book into a temporary folder with an empty cache, so every
# chapter is executed (tests/conftest.py); lint runs first and fails fast. The suite runs on
# TEST_WORKERS processes (pytest-xdist); loadgroup keeps a group of tests on one worker.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
test: lint $(VENV)/.installed-test $(KERNEL_CONFIG)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: $(VENV)/.installed-test
	$(BIN)/ruff check code tests benchmarks chapters

lab: $(VENV)/.installed
	$(BIN)/jupyter lab $(LAB_FLAGS) chapters/

bench: $(VENV)/.installed-test $(KERNEL_CONFIG)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf _build .pytest_cache .hypothesis .benchmarks
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
