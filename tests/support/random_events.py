"""Random input events for tests that compare ways of processing the same stream."""

from __future__ import annotations

import random

from stream.core.events import CartEvent, EmailOpenEvent, InputEvent, OrderEvent


def behaviour_event(rng: random.Random, number: int, customer: str, at: int, roll: float) -> InputEvent:
    """An order (``roll`` < 0.6), a cart event (< 0.8) or an email open, with random
    amounts, discounts, cart actions and privacy opens."""
    if roll < 0.6:
        return OrderEvent(f"e{number}", customer, at, f"o{number}", "placed",
                          rng.randrange(5, 900) * 1_000_000, rng.random() < 0.3, None)
    if roll < 0.8:
        return CartEvent(f"e{number}", customer, at, f"k{number}", rng.choice(["add", "cleared"]),
                         rng.randrange(1, 200) * 1_000_000)
    return EmailOpenEvent(f"e{number}", customer, at, None, None, rng.random() < 0.2)
