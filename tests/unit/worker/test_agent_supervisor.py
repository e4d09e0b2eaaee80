"""The agents' supervisor allows the restarts faust asks for: a rebalance restarts one
isolated-partition actor per revoked partition, back to back."""

from __future__ import annotations

from mode import OneForOneSupervisor

from stream.worker.plumbing import AgentSupervisor


def restarts_allowed_at_once(supervisor: OneForOneSupervisor) -> int:
    allowed = 0
    while allowed < 1000 and supervisor._bucket.pour():
        allowed += 1
    return allowed


def test_a_rebalance_may_restart_many_actors_at_once() -> None:
    # What faust's agents ask for (faust/agents/agent.py, _new_supervisor).
    asked = {"max_restarts": 100.0, "over": 1.0}
    # mode's bucket makes that one restart, then one per 10 ms: why AgentSupervisor exists
    # (if this changes with a new mode, the subclass may go).
    assert restarts_allowed_at_once(OneForOneSupervisor(**asked)) == 1
    assert restarts_allowed_at_once(AgentSupervisor(**asked)) == 100


def test_faust_apps_use_it() -> None:
    import faust

    from stream.clients import KafkaSettings
    from stream.worker.plumbing import stream_app
    from stream.worker.settings import WorkerSettings

    app = stream_app(WorkerSettings(app_id="supervised"), KafkaSettings(), 4)
    assert isinstance(app, faust.App) and app.conf.agent_supervisor is AgentSupervisor
