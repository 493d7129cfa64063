"""The `anytasktune` command: one small module per layer's commands. Nothing imports this package."""

import os

# Polars allocates through its own jemalloc, which by default keeps freed pages for about 10 s. A batch job that
# frees each phase's memory before the next should hand it back at once: set before Polars loads, inherited by
# the build's worker processes (a 1M-record build's peak: 1.5 -> 1.36 GB). A value set by the user wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
