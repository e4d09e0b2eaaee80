"""ensure_topics returns only once the broker shows every topic ready for a consumer group."""

from __future__ import annotations

import pytest

from stream.clients.topics import TopicsNotReady, _wait_for_leaders, topics_without_leaders


def partition(index: int, leader: int = 1, error_code: int = 0) -> dict:
    return {"partition_index": index, "leader_id": leader, "error_code": error_code}


def test_a_topic_is_ready_once_every_partition_has_a_leader() -> None:
    described = [
        {"name": "ready", "error_code": 0, "partitions": [partition(0), partition(1)]},
        {"name": "unknown", "error_code": 3, "partitions": []},
        {"name": "no-partitions-yet", "error_code": 0, "partitions": []},
        {"name": "leaderless", "error_code": 0, "partitions": [partition(0), partition(1, leader=-1)]},
        {"name": "partition-error", "error_code": 0, "partitions": [partition(0, error_code=5)]},
    ]
    assert topics_without_leaders(described) == ["unknown", "no-partitions-yet", "leaderless", "partition-error"]


def test_no_topics_none_pending() -> None:
    assert topics_without_leaders([]) == []


class AdminAnswering:
    """Stands in for kafka-python's admin client: each describe_topics call gets the next answer."""

    def __init__(self, answers: list[list[dict]]) -> None:
        self.answers = answers
        self.calls = 0

    def describe_topics(self, names: list[str]) -> list[dict]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer


def test_waits_until_the_broker_shows_a_leader_everywhere() -> None:
    not_yet = [{"name": "events", "error_code": 3, "partitions": []}]
    ready = [{"name": "events", "error_code": 0, "partitions": [partition(0), partition(1)]}]
    admin = AdminAnswering([not_yet, not_yet, ready])
    _wait_for_leaders(admin, ["events"], timeout=10)
    assert admin.calls == 3


def test_gives_up_naming_the_topics_without_leaders() -> None:
    answer = [
        {"name": "events", "error_code": 0, "partitions": [partition(0)]},
        {"name": "changes", "error_code": 0, "partitions": [partition(0, leader=-1)]},
    ]
    with pytest.raises(TopicsNotReady, match=r"changes after 0s"):
        _wait_for_leaders(AdminAnswering([answer]), ["events", "changes"], timeout=0)
