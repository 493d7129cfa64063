"""Per-model prices, to turn token usage into cost and to stop at a cost budget.

USD per million tokens (input, output), from the providers' public price lists. A model served locally (vLLM,
Ollama, llama.cpp) costs nothing here; an unknown hosted model has no price unless one is given with
--price-in/--price-out, and the report says so. Through the Batch API a table price is halved (OpenAI bills batch
requests at 50% of the live price); a price given on the command line is taken as the price of the mode in use.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}
BATCH_PRICE_FACTOR = 0.5  # OpenAI's Batch API: "50% lower costs" than the same requests live


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float
    known: bool = True

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1_000_000


def price_of(model: str, override: tuple[float, float] | None = None, *, batch: bool = False) -> Price:
    """The price of `model`: the override, else the longest table entry it starts with (dated snapshots share
    their family's price), halved for the Batch API, else zero and marked unknown."""
    if override is not None:
        return Price(*override)
    name = model.rsplit("/", 1)[-1].lower()
    factor = BATCH_PRICE_FACTOR if batch else 1.0
    for prefix in sorted(PRICES_PER_MILLION, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "-"):
            price_in, price_out = PRICES_PER_MILLION[prefix]
            return Price(price_in * factor, price_out * factor)
    return Price(0.0, 0.0, known=False)
