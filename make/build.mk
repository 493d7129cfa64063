# The build benchmark: 1,000,000 generated records through the whole build (see bench/bench_build.py).
.PHONY: bench-build
BENCH_BUILD_RECORDS ?= 1000000

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[bench]'
	touch $@ $(VENV)/.installed-base

bench-build: $(VENV)/.installed-bench
	$(BIN)/python bench/bench_build.py --records $(BENCH_BUILD_RECORDS)
