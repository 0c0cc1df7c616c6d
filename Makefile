# lmm-workbook: `make test` and `make book` do everything from a fresh clone
# (Python 3.11 and GNU make are the only prerequisites).
#
# Data: set LMMLIB_DATA_MIRROR to a folder holding the course CSV files to work
# offline; otherwise they are downloaded (and checked against their sha256)
# into data/ (or LMMLIB_DATA_DIR).  See data/README.md.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv install data test book bench reference lint clean distclean

help:
	@echo "make venv       create .venv and install lmmlib with the test, book and bench extras"
	@echo "make data       fetch and verify the course datasets"
	@echo "make test       run the test suite"
	@echo "make book       build the book into book/_build/html"
	@echo "make bench      run the benchmarks (fits, inference, scale, peers; lme4 where R is installed)"
	@echo "make reference  regenerate the lme4 fixtures (needs R and lme4)"
	@echo "make lint       ruff check"
	@echo "make clean      remove build output and caches (distclean: also .venv and data)"

venv: $(STAMP)
install: $(STAMP)

$(VPY):
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: $(PYTHON) is older than Python 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pins in pyproject.toml change.
$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install -e ".[test,book,bench]"
	touch $@

data: $(STAMP)
	$(VPY) -m lmmlib.datasets fetch

test: $(STAMP) data
	$(VPY) -m pytest -q $(PYTEST_ARGS)

book: $(STAMP) data
	$(VENV)/bin/jupyter-book build book -W -n --keep-going

bench: $(STAMP) data
	$(VPY) tests/benchmarks/bench_fit.py
	$(VPY) tests/benchmarks/bench_inference.py
	$(VPY) tests/benchmarks/bench_scale.py
	$(VPY) tests/benchmarks/bench_glmm.py
	$(VPY) tests/benchmarks/bench_partitioned.py --compare
	$(VPY) tests/benchmarks/bench_peers.py

# R packages: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite r-cran-lmertest r-cran-rlrsim r-cran-pbkrtest
REF := tests/reference
REFIN := data/reference-input
reference: $(STAMP) data
	@command -v Rscript >/dev/null || \
	  { echo "error: Rscript not found; install R and its packages: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite r-cran-lmertest r-cran-rlrsim r-cran-pbkrtest" >&2; exit 1; }
	$(VPY) -m lmmlib.datasets export $(REFIN)
	Rscript $(REF)/lme4_goldens.R $(REFIN) $(REF)/fixtures
	Rscript $(REF)/lme4_confint.R $(REFIN) $(REF)/fixtures/confint
	Rscript $(REF)/lmertest.R $(REFIN) $(REF)/fixtures/lmertest
	Rscript $(REF)/rlrsim.R $(REFIN) $(REF)/fixtures/rlrsim
	Rscript $(REF)/anova.R $(REFIN) $(REF)/fixtures/anova
	Rscript $(REF)/lme4_glmer.R $(REF)/fixtures/glmer
	Rscript $(REF)/lme4_weights.R $(REF)/fixtures/weights
	Rscript $(REF)/lme4_glmer_confint.R $(REF)/fixtures/glmer_confint
	Rscript $(REF)/lme4_families.R $(REF)/fixtures/families
	Rscript $(REF)/lme4_predict.R $(REF)/fixtures/predict
	Rscript $(REF)/lme4_formulas.R $(REF)/fixtures/formulas
	Rscript $(REF)/lmertest_parity.R $(REFIN) $(REF)/fixtures/lmertest_parity
	Rscript $(REF)/book_exercises.R $(REFIN) $(REF)/fixtures/book
	Rscript $(REF)/book_pig_slope.R $(REFIN) $(REF)/fixtures/book
	Rscript $(REF)/book_soybean_date.R $(REFIN) $(REF)/fixtures/book
	Rscript $(REF)/book_nepal_centring.R $(REFIN) $(REF)/fixtures/book
	Rscript $(REF)/book_pages.R $(REFIN) $(REF)/fixtures/pages

lint: $(STAMP)
	$(VENV)/bin/ruff check lmmlib tests

clean:
	rm -rf book/_build .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) data/reference-input
	rm -f data/*.csv data/*.bz2
