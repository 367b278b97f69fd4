# The two commands: `make demo` and `make test`. Both set up everything first.
VENV ?= .venv

.PHONY: setup demo test bench rtl clean
setup:
	@./scripts/bootstrap.sh

demo: setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/ddnhw demo $(ARGS)

test: setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/python -m pytest -n 2 $(ARGS)

bench: setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/python bench/run.py $(ARGS)

clean:
	rm -rf build out .pytest_cache
