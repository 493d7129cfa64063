"""The review app as a reviewer sees it, for the README (`make review-screenshot`): the record list, a record with
a structured output and its decision forms, and a blind-annotation question, at 1280 px, from the repository's own
build. Only pages are read; no decision is written."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from catalog import load_catalog  # noqa: E402
from catalog.settings import Settings  # noqa: E402
from review.server import review_server  # noqa: E402

SHOTS = {
    "review-list.png": "?task=med_triage",
    "review-record.png": "record/{record}?task=med_key_info&lang=zh",
    "review-blind.png": "blind/{blind}?task=fin_intent&split=test",
}


def main() -> None:
    settings = Settings(REPO / "datasets")
    catalog = load_catalog(settings.tasks_dir)
    server, sock, link = review_server(catalog, settings, name="anytasktune", reviewer="maria", port=0)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    page = urllib.request.urlopen(f"{link}?task=med_key_info&lang=zh").read().decode()
    record = re.findall(r'href="/record/([0-9a-f]{16})', page)[0]
    page = urllib.request.urlopen(f"{link}?task=fin_intent&split=test&lang=en").read().decode()
    blind = re.findall(r'href="/record/([0-9a-f]{16})', page)[0]
    for name, path in SHOTS.items():
        target = link + path.format(record=record, blind=blind)
        subprocess.run(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1280,900", f"--screenshot={REPO / 'docs' / name}", target],
            check=True, capture_output=True,
        )  # fmt: skip
        print(f"docs/{name}: {target}")
    server.should_exit = True


if __name__ == "__main__":
    main()
