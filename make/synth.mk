# The synthesizer: `make synth` grows the datasets through an OpenAI-compatible endpoint (OPENAI_BASE_URL /
# OPENAI_API_KEY, or SYNTH_ARGS="--base-url ..."); without one it stops at once with a message.
# `make bench-synth` measures it against the loopback server in tests/fake_openai.py.

SYNTH_ARGS ?= --per-task 10

.PHONY: synth bench-synth fake-openai

synth: $(VENV)/.installed-base
	$(CLI) synth $(SYNTH_ARGS)

bench-synth: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_synth.py

# The loopback server on its own, for the README's worked example: make fake-openai FAKE_ARGS="--latency 0.2"
FAKE_ARGS ?= --port 8765 --latency 0.5
fake-openai: $(VENV)/.installed-dev
	$(BIN)/python -m tests.fake_openai $(FAKE_ARGS)
