"""A real OpenAI-compatible server, offline on CPU: `transformers serve` in front of the tiny random Qwen2 model.

Not a test double: it is Hugging Face's own server (FastAPI + uvicorn), applying the model's real chat template,
counting tokens with the real Qwen2 tokenizer and generating with the model. What it does that the loopback fake does
not: it takes `response_format` without a word and ignores it, and an answer cut at `max_tokens` comes back with no
content at all (its Qwen2 response parser finds no end of message), with finish_reason "length".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.conftest import REPO

START_TIMEOUT_S = 180.0  # torch and transformers import, then the model loads


class TransformersServe:
    """`transformers serve <model>` as a child process on a free loopback port; a context manager."""

    def __init__(self, model: Path, port: int):
        self.model, self.port = model, port
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"transformers-serve-{port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> TransformersServe:
        command = [str(Path(sys.executable).parent / "transformers"), "serve", str(self.model)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--default-seed", "0"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self._process.returncode}: {self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"transformers serve did not answer within {START_TIMEOUT_S:.0f}s: {self._tail()}")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
