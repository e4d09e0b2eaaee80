"""``segments lag``: committed offsets against log ends for every consumer group of the
engine, like ``kafka-consumer-groups --describe``, with a Burrow-style status per
partition (rules in ``stream/ops/lag_status.py``). Works while the engine is down.

Exit code: 0 when everything is OK, 1 when the worst status is WARN, 2 for STALL, STOP
or ERR (Kafka unreachable included), so cron jobs and scripts can alert on it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import click
import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stream.cli.context import CliContext
from stream.cli.signals import StopRequest
from stream.clients import ConfigError
from stream.ops.lag_status import GroupEvaluation, GroupSnapshot, Status, evaluate_group, exit_code

STATUS_STYLES = {Status.OK: "green", Status.WARN: "yellow", Status.STALL: "magenta", Status.STOP: "red", Status.ERR: "bold red"}
SAMPLES_NOTE = "no commit times from __consumer_offsets: the time since the last commit is how long the committed offset stayed unchanged across the samples (a lower bound)"
# After Ctrl-C, the watch exits within this long even if a Kafka call hangs.
STOP_GRACE_SECONDS = 10.0


@click.command("lag")
@click.option("--group", "groups", multiple=True, metavar="ID", help="A consumer group to check (repeatable). Default: every group of the engine.")
@click.option("--samples", type=click.IntRange(min=1), default=3, show_default=True, help="Samples taken before printing (one-shot mode).")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Seconds between samples.")
@click.option("--watch", is_flag=True, help="Keep sampling and refresh the table every interval (Ctrl-C stops).")
@click.option("--window", type=click.IntRange(min=1), default=10, show_default=True, help="Samples the status is evaluated over in --watch mode.")
@click.option("--stop-after", type=click.FloatRange(min=0), default=300.0, show_default=True, help="STOP when a lagging partition has had no commit for longer than this (seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document per evaluation instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Also list partitions the group never committed that have no lag (e.g. faust's table changelogs, empty input partitions).")
@click.pass_obj
def lag(context: CliContext, groups: tuple[str, ...], samples: int, interval: float, watch: bool, window: int,
        stop_after: float, as_json: bool, show_all: bool) -> None:
    """Consumer lag and a Burrow-style status (OK, WARN, STALL, STOP, ERR) per partition.

    \b
    ERR   offsets unreadable, or committed beyond the log end / below the log start
    OK    lag 0 in any sample of the window
    STOP  lag > 0 and no live member owns the partition, or no commit for --stop-after s
    STALL lag > 0, owned and committing, but the committed offset never moves
    WARN  the committed offset moves but lag grows at every sample (>= 3 samples)

    Exit code 0 when all OK, 1 for WARN, 2 for STALL, STOP or ERR.
    """
    from stream.clients.lag import CommitLog, GroupOffsetsReader
    from stream.ops.groups import engine_group_sources

    try:
        sources = engine_group_sources(context.config_file)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    configured = list(sources)
    kafka = context.kafka_settings()
    size = window if watch else samples
    reader = GroupOffsetsReader(kafka)
    names = list(dict.fromkeys(groups))
    if not names:
        # The engine's groups that have run (a deployment without the sender has no
        # sender group); the worker's group is always shown, so "never ran" is an ERR.
        existing = reader.existing_groups()
        names = [name for name in configured if existing is None or name in existing] or configured[:1]
    # Read commits from far enough back to tell "no commit for --stop-after s" at once.
    commit_log = CommitLog(kafka, names, lookback=stop_after + size * interval + 60)
    history: dict[str, deque[GroupSnapshot]] = {name: deque(maxlen=size) for name in names}
    console = Console() if sys.stdout.isatty() else Console(width=160)

    def sample_all() -> None:
        for name in names:
            history[name].append(reader.snapshot(name, sources.get(name, ())))

    def evaluate() -> list[GroupEvaluation]:
        if not reader.unreachable:
            commit_log.refresh()
        return [
            evaluate_group(list(history[name]), stop_after=stop_after, last_commits=commit_log.last_commits(name),
                           commit_log_from=commit_log.since)
            for name in names
        ]

    def emit_json(evaluations: list[GroupEvaluation]) -> None:
        document = to_json(evaluations, stop_after=stop_after, interval=interval, commit_log_error=commit_log.error)
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
        sys.stdout.flush()

    code = 2
    try:
        if not watch:
            for index in range(samples):
                if index:
                    time.sleep(interval)
                sample_all()
                if reader.unreachable:
                    break  # more samples would only wait for the same timeout again
            evaluations = evaluate()
            code = exit_code([e.status for e in evaluations])
            if as_json:
                emit_json(evaluations)
            else:
                console.print(render(evaluations, show_all=show_all, commit_log_error=commit_log.error))
        else:
            # A live table on a terminal; elsewhere (a log file) one table per evaluation.
            live = Live(console=console, auto_refresh=False) if console.is_terminal and not as_json else None
            if live is not None:
                live.start()
            # Ctrl-C (or SIGTERM) ends the watch between samples: raised inside the
            # Kafka client, a KeyboardInterrupt can be swallowed by its retry loops.
            stop = WatchStop(lambda: code)
            try:
                while not stop.requested:
                    started = time.monotonic()
                    sample_all()
                    evaluations = evaluate()
                    code = exit_code([e.status for e in evaluations])
                    if as_json:
                        emit_json(evaluations)
                    else:
                        view = render(evaluations, show_all=show_all, commit_log_error=commit_log.error, watching=True)
                        if live is not None:
                            live.update(view, refresh=True)
                        else:
                            console.print(view, "")
                    stop.wait(max(0.0, interval - (time.monotonic() - started)))
            finally:
                stop.restore()
                if live is not None:
                    live.stop()
    finally:
        reader.close()
        commit_log.close()
    click.get_current_context().exit(code)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(evaluations: Sequence[GroupEvaluation], *, stop_after: float, interval: float, commit_log_error: str | None) -> dict[str, Any]:
    """One machine-readable document for one evaluation of every group."""
    groups = []
    for evaluation in evaluations:
        commit_times: dict[str, Any] = {"source": evaluation.commit_time_source}
        if evaluation.commit_time_source == "samples":
            commit_times.update(error=commit_log_error, note=SAMPLES_NOTE)
        partitions = []
        for item in evaluation.partitions:
            latest, result = item.latest, item.result
            age = result.commit_age
            partitions.append({
                "topic": item.topic,
                "partition": item.partition,
                "committed": latest.committed,
                "end": latest.end,
                "start": latest.start,
                "unread_from": latest.unread_from,
                "lag": result.lag,
                "lags": [sample.lag for sample in item.samples],
                "owner": None if item.owner is None else {
                    "member_id": item.owner.member_id, "client_id": item.owner.client_id, "host": item.owner.host,
                },
                "status": result.status.name,
                "reason": result.reason,
                "seconds_since_commit": None if age is None else round(age.seconds, 3),
                "seconds_since_commit_at_least": None if age is None else age.at_least,
                "commit_time_source": None if age is None else age.source,
            })
        groups.append({
            "group": evaluation.group,
            "status": evaluation.status.name,
            "reason": evaluation.reason,
            "state": evaluation.state,
            "members": evaluation.members,
            "lag": evaluation.lag(),
            "samples": max((len(p.samples) for p in evaluation.partitions), default=0),
            "commit_times": commit_times,
            "partitions": partitions,
        })
    statuses = [e.status for e in evaluations]
    return {
        "at": _iso(max((e.at for e in evaluations), default=time.time())),
        "status": max(statuses, default=Status.OK).name,
        "exit_code": exit_code(statuses),
        "interval": interval,
        "stop_after": stop_after,
        "groups": groups,
    }


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


class WatchStop(StopRequest):
    """Ctrl-C ends the watch between samples; a second one, or STOP_GRACE_SECONDS without
    the loop ending (a Kafka call that does not return), exits at once, by SIGALRM: no
    thread, no lock in a handler (stream/cli/signals.py)."""

    def __init__(self, code: Callable[[], int]) -> None:
        super().__init__()
        self._code = code
        # Left installed: once armed, the alarm also covers closing the Kafka clients.
        signal.signal(signal.SIGALRM, self._on_alarm)

    def on_request(self, *, already: bool) -> None:
        if already:
            os._exit(self._code())
        signal.alarm(int(STOP_GRACE_SECONDS))

    def _on_alarm(self, number: int, frame: Any) -> None:
        os.write(2, f"segments lag: a Kafka call did not return within {STOP_GRACE_SECONDS:.0f} s of the stop; exiting\n".encode())
        os._exit(self._code())


def render(evaluations: Sequence[GroupEvaluation], *, show_all: bool, commit_log_error: str | None, watching: bool = False) -> Group:
    """The table (one row per topic-partition) and one summary line per group."""
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for name, justify in [("group", "left"), ("topic", "left"), ("partition", "right"), ("committed", "right"),
                          ("end", "right"), ("lag", "right"), ("owner", "left"), ("status", "left"), ("why", "left")]:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    hidden = 0
    for evaluation in evaluations:
        for item in evaluation.partitions:
            latest, result = item.latest, item.result
            if latest.committed is None and latest.error is None and not result.lag and not show_all:
                hidden += 1
                continue
            table.add_row(
                evaluation.group, item.topic, str(item.partition), _number(latest.committed), _number(latest.end),
                _number(result.lag), item.owner.label() if item.owner else "-",
                Text(result.status.name, style=STATUS_STYLES[result.status]), result.reason,
            )
    lines: list[Any] = [table]
    if hidden:
        lines.append(Text(f"{hidden} partition(s) without a committed offset or lag not shown (--all shows them).", style="dim"))
    for evaluation in evaluations:
        total = f"{evaluation.lag():,}" if evaluation.partitions else "-"
        detail = f"state {evaluation.state or 'unknown'}, {evaluation.members} member(s), total lag {total}"
        samples = max((len(p.samples) for p in evaluation.partitions), default=0)
        line = Text.assemble(
            (f"{evaluation.group}: ", "bold"), (evaluation.status.name, STATUS_STYLES[evaluation.status]),
            f"  {evaluation.reason}  ({detail}; {samples} sample(s))",
        )
        lines.append(line)
    if commit_log_error:
        lines.append(Text(f"{commit_log_error}; {SAMPLES_NOTE}.", style="yellow"))
    if watching:
        lines.append(Text(f"{_iso(time.time())}  Ctrl-C to stop", style="dim"))
    return Group(*lines)
