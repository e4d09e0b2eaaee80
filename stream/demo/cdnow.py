"""The CDNOW purchase history (69,659 orders of 23,570 customers, 1997-98) as order events.

The file ships inside the ``lifetimes`` PyPI package as
``lifetimes/datasets/CDNOW_master.txt``: ``customer_id date(YYYYMMDD) cds dollars``.
CDNOW gives dates only; each order is placed at 12:00 UTC of its day, so day-based
changes at 00:00 fall before it, as on a real shop's day.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterator

import orjson


class DatasetMissing(Exception):
    pass


def cdnow_path() -> Path:
    spec = importlib.util.find_spec("lifetimes")  # finds the package without importing pandas
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissing("the CDNOW history ships in the `lifetimes` package: pip install lifetimes")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "CDNOW_master.txt"
    if not path.is_file():
        raise DatasetMissing(f"{path} is missing from the installed lifetimes package")
    return path


def cdnow_orders(path: Path | None = None, limit_customers: int | None = None) -> Iterator[dict]:
    """Order events in file order (the file is sorted by customer, then date)."""
    with (path or cdnow_path()).open() as handle:
        next(handle)  # header
        for line_number, line in enumerate(handle, start=2):
            fields = line.split()
            if len(fields) < 4:
                continue  # a few rows lack the dollar value; nothing to count
            customer, date, _cds, dollars = fields[:4]
            if limit_customers is not None and int(customer) > limit_customers:
                break
            yield {
                "event_id": f"cdnow-{line_number}",
                "type": "order",
                "customer_id": f"cdnow-{customer}",
                "occurred_at": f"{date[:4]}-{date[4:6]}-{date[6:]}T12:00:00Z",
                "order_id": f"cdnow-order-{line_number}",
                "status": "placed",
                "total": float(dollars),
                "currency": "USD",
            }


def time_ordered(events: list[dict]) -> list[dict]:
    """Sorted by ``occurred_at`` (stable), as a shop would have emitted them."""
    return sorted(events, key=lambda event: event["occurred_at"])


def write_jsonl(events: list[dict], path: Path) -> None:
    with path.open("wb") as handle:
        for event in events:
            handle.write(orjson.dumps(event) + b"\n")
