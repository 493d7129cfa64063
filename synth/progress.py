"""The live progress line: records accepted of those wanted, requests/s, tokens, accept rate and cost."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synth.report import JobStats


class ProgressBar:
    """A rich progress bar on stderr, redrawn at most a few times a second; silent when stderr is not a terminal."""

    def __init__(self, total: int, enabled: bool = True, console: Console | None = None):
        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("synth"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
            console=self._console,
            disable=not (enabled and self._console.is_terminal),
            refresh_per_second=4,
        )
        self._task = self._progress.add_task("synth", total=total, line="")
        self._last = 0.0
        self._latest: JobStats | None = None  # the newest stats, drawn or not

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._latest is not None:
            self._draw(self._latest)  # the final counts, whatever the throttle skipped
        self._progress.stop()

    def update(self, stats: JobStats) -> None:
        self._latest = stats
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        self._draw(stats)

    def _draw(self, stats: JobStats) -> None:
        rate = stats.requests / stats.elapsed if stats.elapsed > 0 else 0.0
        line = f"{rate:6.1f} req/s  {stats.tokens:,} tok  accept {stats.accept_rate:5.1%}  ${stats.cost:.4f}" + (
            f"  429s {stats.rate_limited}" if stats.rate_limited else ""
        )
        self._progress.update(self._task, completed=sum(stats.accepted.values()), line=line)
