# Peers for the synthesizer benchmark: `make bench-synth-peers` is `make bench-synth` with Curator sending the
# baseline's requests too (bench/synth_curator.py), so the engine is measured against a library people use for this.
# Curator lives in its own environment, .venv-curator: its pins (litellm, datasets, openai, pydantic) are not ours,
# and nothing of the project's install changes for it. Pinned so the peer's figures compare from one run to the next.

CURATOR_VENV := .venv-curator
CURATOR_VERSION := 0.1.31

.PHONY: bench-synth-peers

# Redone when this file changes (a new pin reinstalls); the repo's own venv is not touched.
$(CURATOR_VENV)/.installed: make/peers.mk
	$(PYTHON) -m venv $(CURATOR_VENV)
	$(CURATOR_VENV)/bin/python -m pip install -q --upgrade pip
	$(CURATOR_VENV)/bin/python -m pip install -q 'bespokelabs-curator==$(CURATOR_VERSION)'
	touch $@

# The repo's venv builds the request bodies (the baseline's code) and runs the bench; Curator's sends.
bench-synth-peers: $(VENV)/.installed-dev $(CURATOR_VENV)/.installed
	$(BIN)/python bench/bench_synth.py --peers
