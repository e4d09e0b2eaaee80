"""The README's configuration examples are what users copy: each ```toml block must load
with the settings loader of its table, commented-out options included (uncommented),
so a renamed or misspelt setting in the README fails here instead of at a user's
start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest

from stream.clients.settings import load_kafka_settings
from stream.sender.settings import load_sender_settings
from stream.worker.settings import load_playbooks_settings, load_worker_settings

README = Path(__file__).resolve().parents[2] / "README.md"

LOADERS: dict[str, Callable[[Path], Any]] = {
    "worker": load_worker_settings,
    "playbooks": load_playbooks_settings,
    "sender": lambda path: load_sender_settings(path, environ={}),
    "kafka": lambda path: load_kafka_settings(path, environ={}),
}


def toml_blocks() -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```$", README.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def uncommented(block: str) -> str:
    """The block with its commented-out ``# key = value`` options switched on."""
    return re.sub(r"^# ?(?=[a-z_]+ *= )", "", block, flags=re.MULTILINE)


def first_table(block: str) -> str:
    match = re.search(r"^\[([a-z_]+)", block, flags=re.MULTILINE)
    assert match, f"a README toml block with no table:\n{block}"
    return match.group(1)


def test_the_readme_has_a_config_example_of_every_table() -> None:
    assert {first_table(block) for block in toml_blocks()} == set(LOADERS)


@pytest.mark.parametrize("block", toml_blocks(), ids=first_table)
@pytest.mark.parametrize("variant", [lambda block: block, uncommented], ids=["as shown", "options uncommented"])
def test_each_config_example_loads(block: str, variant: Callable[[str], str], tmp_path: Path) -> None:
    path = tmp_path / "segments.toml"
    path.write_text(variant(block), encoding="utf-8")
    LOADERS[first_table(block)](path)


def test_a_misspelt_option_would_fail(tmp_path: Path) -> None:
    """The check above can fail: a key the worker does not know stops the loader."""
    [worker_block] = [block for block in toml_blocks() if first_table(block) == "worker"]
    path = tmp_path / "segments.toml"
    path.write_text(worker_block.replace("input_quiet_seconds", "input_quite_seconds"), encoding="utf-8")
    with pytest.raises(Exception, match="input_quite_seconds"):
        load_worker_settings(path)
