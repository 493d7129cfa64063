# Training and evaluation (training/; the README section "Training and evaluation").
#   make train TASKS=med_key_info MODEL=Qwen/Qwen2-7B     LoRA SFT (CONFIG=configs/train/all.yaml by default)
#   make eval MODEL=Qwen/Qwen2-7B [ADAPTER=runs/train/<run>/adapter] [ENDPOINT=http://host:8000/v1] [TASKS=...]
#   make matrix                                          model × task matrix of all runs under runs/eval
#   make bench-train                                     throughput against plain SFTTrainer defaults

CONFIG ?= configs/train/all.yaml
TASKS ?=
MODEL ?=
ADAPTER ?=
ENDPOINT ?=
TRAIN_ARGS = $(if $(TASKS),--tasks $(TASKS)) $(if $(MODEL),--model $(MODEL))
EVAL_ARGS = --model $(MODEL) $(if $(TASKS),--tasks $(TASKS)) $(if $(ADAPTER),--adapter $(ADAPTER)) $(if $(ENDPOINT),--endpoint $(ENDPOINT))

.PHONY: train eval matrix bench-train

train: $(VENV)/.installed-train
	$(CLI) train --config $(CONFIG) $(TRAIN_ARGS)

eval: $(VENV)/.installed-train
	@test -n "$(MODEL)" || { echo "usage: make eval MODEL=<path or Hub id> [ADAPTER=...] [ENDPOINT=...] [TASKS=...]"; exit 2; }
	$(CLI) eval $(EVAL_ARGS)

matrix: $(VENV)/.installed-base
	$(CLI) matrix

bench-train: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_train.py
