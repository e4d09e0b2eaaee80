"""Which consumer groups `segments lag` watches, and the topics each reads from its start."""

from __future__ import annotations

from pathlib import Path

from stream.ops.groups import engine_group_sources


def test_the_shipped_defaults() -> None:
    assert engine_group_sources(None) == {
        "segments": ["orders", "carts", "email-opens", "erasures", "segments-events"],
        "segments-playbooks": ["segment-changes"],
        "segments-sender": ["playbook-actions"],
    }
    assert list(engine_group_sources(None)) == ["segments", "segments-playbooks", "segments-sender"]  # lag's order


def test_renamed_topics_and_groups_follow_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text(
        '[worker]\napp_id = "shop-a"\n[worker.topics]\ncarts = "shop-a-carts"\nsegment_changes = "shop-a-changes"\n'
        '[sender]\ngroup_id = "mailer"\n[sender.topics]\nactions = "shop-a-actions"\n'
    )
    sources = engine_group_sources(config)
    assert sources["shop-a"] == ["orders", "shop-a-carts", "email-opens", "erasures", "segments-events"]
    # The playbooks app reads the worker's changes unless its own table names a topic.
    assert sources["segments-playbooks"] == ["shop-a-changes"]
    assert sources["mailer"] == ["shop-a-actions"]
