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
# The build itself, its settings, its three steps and its execution cache (emptied when
# the reparam package, the requirements or the installed packages change) are in
# code/bookbuild.py.
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

.PHONY: book pdf test lint lab bench clean distclean help kernel-config
.DEFAULT_GOAL := help

help:
	@echo "make book   build the website (_build/html), executing the chapters whose code changed"
	@echo "make pdf    the whole book as one PDF (_build/pdf/book.pdf), printed by Chromium"
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

AXE_CORE := $(VENV)/share/axe-core/axe.min.js
$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt $(AXE_CORE)
	$(BIN)/python -m pip install -r requirements-test.txt
	@touch $@

# axe-core for the accessibility tests, from the npm registry, checked against its hash.
$(AXE_CORE): tests/fetch_axe_core.py $(VENV)/.python-ok
	$(BIN)/python tests/fetch_axe_core.py $@

$(KERNEL_CONFIG): Makefile $(VENV)/.python-ok
	@mkdir -p $(dir $@)
	@printf '%s\n' "$$KERNEL_CONFIG_PY" > $@
	@echo "wrote $@"
kernel-config: $(KERNEL_CONFIG)

$(HTML): $(VENV)/.installed $(KERNEL_CONFIG) $(BOOK_SOURCES)
	@# On failure remove index.html, so that the next `make book` builds again.
	$(BIN)/python code/bookbuild.py || { rm -f $(HTML); exit 1; }
	@touch $@

book: $(HTML)
	@echo "The book is at: $(abspath $(HTML))"

# The whole book as one PDF, printed by headless Chromium from a single-page build.
pdf: $(VENV)/.installed-test $(KERNEL_CONFIG)
	$(BIN)/python code/bookbuild.py --pdf

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
