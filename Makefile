# svp-hf: the two commands a new user needs are `make quickstart` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision must come from the same build. The default PyPI pair works on CPU-only machines and
# on GPUs; a CPU-only torch wheel beside PyPI's torchvision breaks `import torchvision` (and with it
# transformers.Trainer and timm). TORCH_PIP_ENV makes pip ignore local wheel folders that hold such a torch.
TORCH_PIP_ENV ?= env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null
DATA ?= ../shared/data
# The embedded default: the local AG News copy when it exists, the Hub's ag_news otherwise.
DATASET ?= $(if $(wildcard $(DATA)/ag_news),$(DATA)/ag_news,ag_news)
OUT ?= out/quickstart
PYTEST_ARGS ?=

.PHONY: install quickstart test lint clean labelstudio

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(TORCH_PIP_ENV) $(BIN)/pip install --quiet torch==2.13.0 torchvision==0.28.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[all,dev]"
	$(BIN)/python -c "import torch, torchvision, fasttext, timm, svp_hf; from transformers import Trainer; \
	assert torch.__version__.split('+')[1:] == torchvision.__version__.split('+')[1:], 'torch/torchvision builds differ'; \
	print('svp-hf', svp_hf.__version__, 'with torch', torch.__version__)"
	touch $@

# A Label Studio server for tests/test_labelstudio_server.py, in its own environment (it pins its own numpy)
labelstudio: .ls-venv/.installed

.ls-venv/.installed:
	$(PYTHON) -m venv .ls-venv
	.ls-venv/bin/pip install --quiet "label-studio==1.23.2"
	touch $@

quickstart: install
	$(BIN)/svp-hf select --dataset $(DATASET) --split train --proxy fasttext --strategy entropy \
		--budget 0.1 --seed 0 --output-dir $(OUT) --overwrite

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check svp_hf tests benchmarks
	$(BIN)/ruff format --check svp_hf tests benchmarks

clean:
	rm -rf $(VENV) .ls-venv out .pytest_cache
