"""Dataset cards: the release README (Hub YAML and prose), statistics, plots, changelog, LLaMA-Factory metadata.

Reads a release folder in Hub layout and the catalog; imports `catalog` and `validation`, never `pipeline`.
"""

from cards.render import CardContext, render_card, write_card_files

__all__ = ["CardContext", "render_card", "write_card_files"]
