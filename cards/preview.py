"""The card as a page: its Markdown rendered to one standalone HTML file, to read it as a user would before release.

CommonMark with tables and strikethrough (what the Hub's renderer speaks), raw HTML allowed as on the Hub (the
card's `<details>` folds; record text inside is escaped by the card itself), a narrow readable column that tables
scroll inside, and the YAML header left out as the Hub shows it in its own panel.
"""

from __future__ import annotations

import html
from pathlib import Path

from markdown_it import MarkdownIt

PREVIEW_FILE = "card.html"
_STYLE = """
body { margin: 0; font: 16px/1.55 -apple-system, "Segoe UI", Helvetica, Arial, "Noto Sans CJK SC", sans-serif;
       color: #1f2328; background: #fff; }
main { max-width: 920px; margin: 0 auto; padding: 24px 20px 64px; }
h1 { font-size: 1.9em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
h2 { font-size: 1.45em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; margin-top: 1.6em; }
table { border-collapse: collapse; display: block; overflow-x: auto; max-width: 100%; margin: 12px 0; }
th, td { border: 1px solid #d1d9e0; padding: 5px 10px; vertical-align: top; }
tr:nth-child(2n) { background: #f6f8fa; }
code { background: #eff1f3; padding: .1em .35em; border-radius: 5px; font-size: 88%; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
blockquote { margin: 0 0 12px; padding: 0 1em; color: #3d444d; border-left: .25em solid #d1d9e0;
             overflow-wrap: anywhere; }
details { border: 1px solid #d1d9e0; border-radius: 6px; padding: 6px 12px; margin: 8px 0; }
summary { cursor: pointer; }
img { max-width: 100%; }
"""


def render_preview(card_text: str, title: str) -> str:
    """The HTML page of a card's Markdown (its YAML header dropped)."""
    body = card_text.split("\n---\n", 1)[1] if card_text.startswith("---\n") else card_text
    renderer = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><main>\n{renderer.render(body)}</main></body></html>\n"
    )


def write_preview(folder: Path, title: str) -> Path:
    """`card.html` beside the card's README.md (its plots are referenced relative to it)."""
    path = folder / PREVIEW_FILE
    path.write_text(render_preview((folder / "README.md").read_text(encoding="utf-8"), title), encoding="utf-8")
    return path
