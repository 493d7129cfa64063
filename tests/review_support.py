"""A built data folder for the review app's tests (one task of each output format, hostile records), and the app
running on a loopback port in a thread, as `anytasktune review` runs it."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from catalog import Catalog
from catalog.records import compact_json, record_id
from catalog.settings import Settings
from pipeline.build import build
from review.server import review_server
from tests.conftest import DATA, write_jsonl

# One task of each output format: label, labels, items, fields, object, text.
FORMAT_TASKS = {
    "label": "fin_intent",
    "labels": "hr_exit_reasons",
    "items": "law_keywords",
    "fields": "med_key_info",
    "object": "con_aspect_scoring",
    "text": "psy_support_reply",
}
SCRIPT = "<script>window.__pwned = 1</script>"
IMAGE = '<img src="x" onerror="window.__pwned = 1">'
HOSTILE_INPUT = (
    f"I paste things from the web into my notes and today a line said {SCRIPT} and another said {IMAGE}. "
    "Since then I have been worried that I broke something at work and that my manager will blame me for it."
)
HOSTILE_OUTPUT = (
    f"It makes sense that you feel uneasy after seeing {IMAGE} in your notes. A strange line of text cannot break "
    "anything by being read, and it is fine to ask a colleague to look at it with you tomorrow."
)


def hostile_records(catalog: Catalog) -> list[dict[str, Any]]:
    """A published record and a quarantined one whose text is markup meant to run in the reviewer's browser."""
    reply, extract = catalog.get("psy_support_reply"), catalog.get("med_key_info")
    common = {"lang": "en", "source": "synth", "generator": f"model{SCRIPT}", "provenance": {"note": IMAGE}}
    return [
        {
            "task": reply.id,
            "instruction": reply.instructions_for("en")[0],
            "input": HOSTILE_INPUT,
            "output": HOSTILE_OUTPUT,
            **common,
        },
        {  # symptom only: the other keys are missing, so the build quarantines it as invalid
            "task": extract.id,
            "instruction": extract.instructions_for("en")[0],
            "input": f"Headache for three days after a long flight, {SCRIPT} took paracetamol twice a day.",
            "output": compact_json({"symptom": IMAGE}),
            **common,
        },
    ]


def hostile_ids() -> tuple[str, str]:
    return (
        record_id("psy_support_reply", "en", HOSTILE_INPUT),
        record_id(
            "med_key_info", "en", f"Headache for three days after a long flight, {SCRIPT} took paracetamol twice a day."
        ),
    )


def built_folder(root: Path, catalog: Catalog) -> Settings:
    """A data folder with every task, the seeds of the format tasks and the hostile records, built."""
    data = root / "data"
    shutil.copytree(DATA / "tasks", data / "tasks")
    (data / "seeds").mkdir(parents=True)
    for task in FORMAT_TASKS.values():
        shutil.copy(DATA / "seeds" / f"{task}.jsonl", data / "seeds")
    (data / "synth").mkdir()
    write_jsonl(data / "synth" / "part-0001.jsonl", hostile_records(catalog))
    settings = Settings(data)
    build(catalog, settings)
    return settings


@contextlib.contextmanager
def serving(
    catalog: Catalog,
    settings: Settings,
    reviewer: str,
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
    blind_only: bool = False,
) -> Iterator[str]:
    """The review app on a free port; yields its base URL (with the token link's query when there is one)."""
    server, sock, link = review_server(
        catalog, settings, name="anytasktune", reviewer=reviewer, host=host, port=0, token=token, blind_only=blind_only
    )
    if host == "0.0.0.0":  # reached through loopback, as another machine would reach the real address
        link = link.replace("0.0.0.0", "127.0.0.1")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield link
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
