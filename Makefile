# Two commands do all set-up: `make book` and `make test`. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HTML   := _build/html/index.html
# Rebuild the book only when one of its sources changed: a no-change `make book` is instant.
BOOK_SOURCES := _config.yml _toc.yml $(shell find chapters code/reparam -type f \
                  ! -path '*/__pycache__/*' ! -path '*/.ipynb_checkpoints/*' 2>/dev/null)
JB_FLAGS := --all -W -n --keep-going
# Jupyter refuses to run as root (containers, CI machines) unless told it may.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: book test lab bench clean distclean help
.DEFAULT_GOAL := help

help:
	@echo "make book   build the website (_build/html), executing every chapter"
	@echo "make test   run the whole test suite (builds the book from clean, browser tests too)"
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

$(HTML): $(VENV)/.installed $(BOOK_SOURCES)
	@# From clean (--all): after a failed strict build a second run would otherwise skip the
	@# failing page and report success. On failure remove index.html so make retries next time.
	$(BIN)/jupyter-book build $(JB_FLAGS) . || { rm -f $(HTML); exit 1; }
	@touch $@

book: $(HTML)
	@echo "The book is at: $(abspath $(HTML))"

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

lab: $(VENV)/.installed
	$(BIN)/jupyter lab $(LAB_FLAGS) chapters/

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf _build .pytest_cache .hypothesis .benchmarks
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
