"""The demo's live view of segment-changes: every kind and cause of change, erasures too."""

from __future__ import annotations

from rich.console import Console

from stream.cli.demo import LiveView


def change(customer: str, kind: str, cause: dict, **fields) -> dict:
    return {"customer_id": customer, "kind": kind, "at": "1997-03-01T00:00:00Z", "cause": cause, **fields}


def test_the_view_follows_segments_tags_and_erasures() -> None:
    view = LiveView()
    order = {"kind": "event", "event_id": "e1", "event_type": "order"}
    erasure = {"kind": "erasure", "event_id": "erase-1"}
    for record in [
        change("alice", "segment", order, **{"from": None, "to": "New Customers"}),
        change("alice", "tag", order, tag="one_time_buyer", entered=True),
        change("bob", "segment", {"kind": "time"}, **{"from": None, "to": "Lost"}),
        change("carol", "segment", {"kind": "rules"}, **{"from": "Lost", "to": "Hibernating"}),
        change("alice", "segment", erasure, **{"from": "New Customers", "to": None}),
        change("alice", "tag", erasure, tag="one_time_buyer", entered=False),
        change("alice", "erasure", erasure),
    ]:
        view.add(record)
    assert (view.changes, view.erased, view.tag_counts["one_time_buyer"]) == (7, 1, 0)
    assert view.segment_of["alice"] is None
    assert [recent["customer_id"] for recent in view.recent] == ["bob", "carol"]  # alice's gone from the feed
    console = Console(record=True, width=120)
    console.print(view.render("demo"))
    text = console.export_text()
    assert "erased: 1" in text and "rules" in text and "alice" not in text
