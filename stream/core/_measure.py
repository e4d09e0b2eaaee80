"""Measure encoded customer-state sizes for typical histories (``python -m stream.core._measure``).

Dev tooling only; the numbers are quoted in ``stream.core.state``'s docstring.
"""

from __future__ import annotations

from stream.rules import Rules

from .engine import advance, apply, look_ahead
from .erasure import erase
from .events import CartEvent, EmailOpenEvent, ErasureRequest, OrderEvent
from .state import CustomerState
from .timers import next_due

DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def _history(orders: int, every_days: int, refunds: int, opens: int, carts: int, cid: str = "customer-000123"):
    evs = []
    n = 0

    def eid() -> str:
        nonlocal n
        n += 1
        return f"evt-{cid}-{n:08d}-0b6f3c1e"  # realistic-length ids (UUID-ish)

    for i in range(orders):
        t = T0 + i * every_days * DAY + 3_600_000
        evs.append(OrderEvent(eid(), cid, t, f"ORD-{i:09d}", "placed", 45_990_000 + i * 1000, i % 3 == 0, None))
        if i < refunds:
            evs.append(OrderEvent(eid(), cid, t + 2 * DAY, f"ORD-{i:09d}", "refunded", 0, False, 5_000_000))
    span = max(1, orders * every_days)
    for i in range(opens):
        t = T0 + (i * span * DAY) // max(1, opens) + 7_200_000
        evs.append(EmailOpenEvent(eid(), cid, t, "cmp-1", f"msg-{i}", i % 4 == 0))
    for i in range(carts):
        t = T0 + (i * span * DAY) // max(1, carts) + 10_800_000
        evs.append(CartEvent(eid(), cid, t, "cart-1", "add" if i % 2 else "cleared", 20_000_000 * (i % 2)))
    evs.sort(key=lambda e: e.occurred_at)
    return evs


CASES = {
    "new customer after one email open": [EmailOpenEvent("evt-1-0b6f3c1e", "customer-000123", T0, "cmp", "m", False)],
    "one-time buyer (1 order, 2 opens, a cart)": _history(1, 1, 0, 2, 1),
    "regular (24 orders in 2 years, monthly, 3 refunds, 40 opens, 30 carts)": _history(24, 30, 3, 40, 30),
    "heavy (200 orders within the window, 100 opens, 100 carts)": _history(200, 3, 10, 100, 100),
    "5 years of monthly orders (60 orders, 36 of them folded)": _history(60, 30, 0, 0, 0),
}


def main() -> None:
    rules = Rules()
    for name, events in CASES.items():
        st = CustomerState(events[0].customer_id)
        for ev in events:
            apply(st, ev, rules)
        advance(st, st.evaluated_at or 0, rules)
        # As the worker stores it: after the look-ahead, with its next instant (``w``).
        look_ahead(st, rules)
        next_due(st, rules)
        print(f"{len(st.to_bytes()):>7,} bytes  {name}  ({len(events)} events)")
    # What is kept of a customer after an erasure request: the regular's, erased.
    regular = CASES["regular (24 orders in 2 years, monthly, 3 refunds, 40 opens, 30 carts)"]
    st = CustomerState(regular[0].customer_id)
    for ev in regular:
        apply(st, ev, rules)
    stub, _ = erase(st, ErasureRequest("erase-0b6f3c1e", st.customer_id, (st.evaluated_at or 0) + DAY), rules)
    print(f"{len(stub.to_bytes()):>7,} bytes  the regular, erased (what is kept: id, change count, instant)")


if __name__ == "__main__":
    main()
