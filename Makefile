# Set-up and everyday commands. Every target installs what it needs first, so on a fresh
# machine `make demo` and `make test` are the only two commands required.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.adaptlab-installed

.PHONY: install demo demo-digits test test-all bench clean

install: $(STAMP)

# torch and torchvision are pinned together in constraints.txt; installing them in the same
# resolver run keeps a later dependency (timm) from swapping torch underneath.
$(STAMP): pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The main job: synthesize a few hundred 32-bit adders, train GATv2 to predict their
# post-sizing delay and area, then score the best checkpoint on the held-out adders.
demo: install
	$(BIN)/adaptlab train examples/graphsym/adders.yaml
	$(BIN)/adaptlab evaluate "$$(ls -td runs/graphsym-adders-* | head -n 1)"

demo-digits: install
	$(BIN)/adaptlab train examples/digits/lora.yaml

test: install
	$(BIN)/python -m pytest -m "not slow"

test-all: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/graphsym_dataset.py

clean:
	rm -rf $(VENV) build *.egg-info
