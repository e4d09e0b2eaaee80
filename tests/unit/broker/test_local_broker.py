"""The local broker's decisions that need no running broker: ports, config, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stream.broker import local
from stream.broker.local import BrokerError, LocalBroker, free_port

SEGMENTS = str(Path(sys.executable).with_name("segments"))


def _messages() -> tuple[list[str], callable]:
    said: list[str] = []
    return said, said.append


def test_default_port_taken_picks_another_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        monkeypatch.setattr(local, "DEFAULT_PORT", taken)
        said, say = _messages()
        port, controller_port = LocalBroker(home=tmp_path, say=say)._pick_ports(None, None)
    assert port != taken and controller_port != port
    assert said == [f"Port {taken} is taken by another program; using 127.0.0.1:{port} instead."]


def test_explicit_port_taken_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {taken} is already in use"):
            LocalBroker(home=tmp_path)._pick_ports(taken, free_port())


def test_generated_config_supports_transactions_on_one_node(tmp_path: Path) -> None:
    broker = LocalBroker(home=tmp_path)
    broker._write_config(19092, 19093)
    properties = dict(
        line.split("=", 1) for line in broker.properties_file.read_text().splitlines() if line and not line.startswith("#")
    )
    assert properties["process.roles"] == "broker,controller"
    assert properties["transaction.state.log.replication.factor"] == "1"
    assert properties["transaction.state.log.min.isr"] == "1"
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"


def test_status_of_a_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    broker = LocalBroker(home=tmp_path)
    broker.home.mkdir(parents=True)
    # A pid that surely is not a Kafka broker: this test process itself.
    broker.state_file.write_text(f'{{"pid": {os.getpid()}, "bootstrap": "127.0.0.1:1"}}')
    assert not broker.status().running


def _run_without(tmp_path: Path, keep: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `segments kafka start` with a PATH holding only the named programs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in keep:
        real = subprocess.run(["which", program], capture_output=True, text=True).stdout.strip()
        if not real:
            pytest.skip(f"{program} is not installed here")
        (bin_dir / program).symlink_to(real)
    env = {key: value for key, value in os.environ.items() if key not in ("JAVA_HOME", "SEGMENTS_KAFKA_LIB")}
    env.update(PATH=str(bin_dir), SEGMENTS_HOME=str(tmp_path / "home"))
    return subprocess.run([SEGMENTS, "kafka", "start"], env=env, capture_output=True, text=True, timeout=60)


def test_missing_java_gives_one_clear_message(tmp_path: Path) -> None:
    completed = _run_without(tmp_path, keep=[])
    assert completed.returncode == 1
    assert "Java 17 or newer is needed" in completed.stderr
    assert "docker compose up" in completed.stderr and "KAFKA_BOOTSTRAP_SERVERS" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_missing_maven_without_cached_jars_gives_one_clear_message(tmp_path: Path) -> None:
    completed = _run_without(tmp_path, keep=["java"])
    assert completed.returncode == 1
    assert "Maven is needed once" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_cluster_id_never_starts_like_an_option(monkeypatch) -> None:
    """The storage tool reads an id starting with "-" as an option and refuses to format."""
    import uuid

    # 0xF8 encodes to "-" first in base64url; the second draw does not.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(local.uuid, "uuid4", lambda: next(draws))
    cluster_id = local.new_cluster_id()
    assert cluster_id == "EAAAAAAAAAAAAAAAAAAAAA" and len(cluster_id) == 22


def test_brokers_sharing_a_jar_cache_copy_the_jars_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test suite's parallel processes start a broker each, all at once, on one cache."""
    import threading
    import time

    lib_dir = tmp_path / "cache" / "lib"
    copies: list[str] = []

    def slow_copy(broker: LocalBroker) -> None:
        copies.append(broker.home.name)
        time.sleep(0.3)  # the others ask meanwhile
        lib_dir.mkdir(parents=True)
        (lib_dir / ".complete").write_text(local.KAFKA_VERSION)

    monkeypatch.setattr(LocalBroker, "_copy_jars", slow_copy)
    brokers = [LocalBroker(home=tmp_path / f"home{n}", lib_dir=lib_dir) for n in range(3)]
    threads = [threading.Thread(target=broker.fetch) for broker in brokers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(copies) == 1 and all(broker.jars_ready() for broker in brokers)


def test_the_broker_process_gets_enough_open_files() -> None:
    """What start() runs in the broker's process before exec: the limit raised (as far as
    this machine allows), never lowered."""
    probe = (
        "import resource, sys; from stream.broker.local import raise_open_files_limit; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
        "before = resource.getrlimit(resource.RLIMIT_NOFILE); raise_open_files_limit(int(sys.argv[1])); "
        "print(before[1], *resource.getrlimit(resource.RLIMIT_NOFILE))"
    )

    def limits_after(wanted: int) -> tuple[int, int, int]:
        out = subprocess.run([sys.executable, "-c", probe, str(wanted)], capture_output=True, text=True, check=True)
        hard_before, soft, hard = map(int, out.stdout.split())
        return hard_before, soft, hard

    hard_before, soft, hard = limits_after(4096)
    assert soft == 4096 and hard == hard_before  # within the hard limit: the soft one only
    if hard_before != -1:  # RLIM_INFINITY: nothing above it to ask for
        hard_before, soft, hard = limits_after(hard_before * 2)
        # Root may raise the hard limit too; anyone else gets the hard limit.
        assert (soft, hard) in {(hard_before * 2, hard_before * 2), (hard_before, hard_before)}
    assert limits_after(10)[1] == 1024  # never lowered
