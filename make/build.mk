# The build benchmark: 100,000 and 1,000,000 generated records through the whole build (see bench/bench_build.py).
# BENCH_BUILD_RECORDS=10000000 make bench-build runs one size instead.
.PHONY: bench-build

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@ $(VENV)/.installed-base

bench-build: $(VENV)/.installed-bench
	$(BIN)/python bench/bench_build.py
