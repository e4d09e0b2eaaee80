"""Start, stop and inspect a real Apache Kafka broker from the official jars.

Layout under the home folder (``$SEGMENTS_HOME`` or ``./.segments``)::

    kafka/lib/                 jars copied from the local Maven repository (cache, shared)
    kafka/lib/.complete        written last, so a half-finished copy is never trusted
    kafka/server.properties    generated; broker + controller in one process (KRaft)
    kafka/log4j.properties     generated
    kafka/data/                the log directories (formatted once)
    kafka/logs/server.log      the broker's own log (rolling)
    kafka/broker.json          pid, address and version of the running broker
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator

import orjson

# Keep in step with <kafka.version> in pom.xml and the image tag in docker-compose.yml.
KAFKA_VERSION = "3.9.2"
DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
HOME_ENV = "SEGMENTS_HOME"
# Kafka holds a file open per log segment of every partition, and Kafka's documentation
# asks for 100,000 or more descriptors: a development broker that had hosted a day of
# test runs' topics (19,371 partition folders) hit this machine's limit of 20,000 and
# stopped accepting connections.
BROKER_OPEN_FILES = 100_000
# Several brokers (yours, the test suite's) can share one jar cache.
LIB_ENV = "SEGMENTS_KAFKA_LIB"
MIN_JAVA = 17
_READY_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 60.0

Say = Callable[[str], None]


class BrokerError(Exception):
    """Something stops the local broker; the message says what to do about it."""


def raise_open_files_limit(wanted: int = BROKER_OPEN_FILES) -> None:
    """Raise this process's open-files limit to ``wanted`` (for the broker, in the child
    before exec): the hard limit too where allowed (root), else the soft one as far as
    the hard limit goes. Never lowers either."""
    infinite = resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == infinite or soft >= wanted:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard if hard == infinite or hard >= wanted else wanted))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    bootstrap: str | None = None
    pid: int | None = None
    version: str | None = None
    data_dir: str | None = None
    detail: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def new_cluster_id() -> str:
    """A random KRaft cluster id (a UUID, base64url), never starting with "-": the storage
    tool would read such an id as an option and refuse to format (1 broker start in 64
    failed that way), which is why Kafka's own Uuid.randomUuid() draws again too."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".segments").resolve()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _java_major_version(java: str) -> int | None:
    try:
        completed = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', completed.stderr + completed.stdout)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8".
    return int(match.group(2) or 0) if major == 1 else major


def _alternatives_hint() -> str:
    return (
        "Or skip the local broker: run `docker compose up -d kafka` (Docker), "
        "or point the project at an existing cluster with KAFKA_BOOTSTRAP_SERVERS=host:9092."
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (ours, not yet reaped) is not a running broker.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _is_kafka_process(pid: int) -> bool:
    """Guard against a stale pid file whose pid now belongs to another program."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return _process_alive(pid)  # no /proc (macOS): trust the pid file
    return b"kafka.Kafka" in cmdline


class LocalBroker:
    """One single-node KRaft broker living in ``home/kafka``.

    ``lib_dir`` can point elsewhere so that several brokers (the user's and the test
    suite's) share one jar cache.
    """

    def __init__(self, home: Path | None = None, lib_dir: Path | None = None, say: Say | None = None) -> None:
        self.home = (home or default_home()) / "kafka"
        self.lib_dir = lib_dir or (Path(os.environ[LIB_ENV]) if os.environ.get(LIB_ENV) else self.home / "lib")
        self.data_dir = self.home / "data"
        self.logs_dir = self.home / "logs"
        self.state_file = self.home / "broker.json"
        self.properties_file = self.home / "server.properties"
        self.log4j_file = self.home / "log4j.properties"
        self._say = say or (lambda message: print(message, file=sys.stderr))

    # ----------------------------------------------------------------- jars

    def jars_ready(self) -> bool:
        return (self.lib_dir / ".complete").is_file() and (
            (self.lib_dir / ".complete").read_text().strip() == KAFKA_VERSION
        )

    def fetch(self) -> None:
        """Copy the broker's jars from Maven Central (through the local Maven repository)."""
        if self.jars_ready():
            return
        # Brokers of several homes share the jar cache (the test suite's parallel workers
        # start one each): one copies, the others wait and find the jars there.
        with self._fetch_lock():
            if not self.jars_ready():
                self._copy_jars()

    @contextlib.contextmanager
    def _fetch_lock(self) -> Iterator[None]:
        self.lib_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lib_dir.with_name(self.lib_dir.name + ".lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _copy_jars(self) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven is needed once, to fetch the Kafka broker's jars from Maven Central, and `mvn` "
                "is not on the PATH. Install it (Debian/Ubuntu: `apt-get install maven`; macOS: "
                "`brew install maven`). " + _alternatives_hint()
            )
        self._say(f"Fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once; cached in {self.lib_dir}) ...")
        staging = self.lib_dir.with_name(self.lib_dir.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with resources.as_file(resources.files("stream.broker") / "pom.xml") as pom:
            command = [
                mvn, "-B", "-q", "-f", str(pom),
                "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
            ]
            completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
            raise BrokerError(f"Maven could not fetch the Kafka jars (exit {completed.returncode}):\n{tail}")
        (staging / ".complete").write_text(KAFKA_VERSION)
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        staging.rename(self.lib_dir)

    # --------------------------------------------------------------- status

    def _read_state(self) -> dict | None:
        try:
            return orjson.loads(self.state_file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None

    def status(self) -> BrokerStatus:
        state = self._read_state()
        if not state:
            return BrokerStatus(False, detail="not running (never started here)")
        pid = int(state["pid"])
        if not (_process_alive(pid) and _is_kafka_process(pid)):
            return BrokerStatus(False, bootstrap=state.get("bootstrap"), detail="not running (the last broker exited)")
        return BrokerStatus(
            True,
            bootstrap=state["bootstrap"],
            pid=pid,
            version=state.get("version"),
            data_dir=str(self.data_dir),
            detail="running",
        )

    def running_bootstrap(self) -> str | None:
        status = self.status()
        return status.bootstrap if status.running else None

    # ---------------------------------------------------------------- start

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home and (Path(java_home) / "bin" / "java").exists() else shutil.which("java")
        if java is None:
            raise BrokerError(
                f"Java {MIN_JAVA} or newer is needed to run the local Kafka broker, and `java` is not on the "
                "PATH. Install it (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`; macOS: "
                "`brew install openjdk@17`). " + _alternatives_hint()
            )
        major = _java_major_version(java)
        if major is not None and major < MIN_JAVA:
            raise BrokerError(f"Java {MIN_JAVA}+ is needed, but {java} is Java {major}. Install a newer JDK. " + _alternatives_hint())
        return java

    def _write_config(self, port: int, controller_port: int) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        properties = {
            # KRaft: broker and controller in one process, this node the only voter.
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            # One node: every internal topic must live with a single replica, or consumer
            # groups (offsets topic) and transactions (transaction state log) never come up.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            # Tests and demos join groups constantly; the 3 s default delay only slows them down.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.cleaner.enable": "true",
            # Check for compactable logs every second, not every 15 s, so compacted topics
            # (profiles, changelogs) stay small on a laptop.
            "log.cleaner.backoff.ms": "1000",
            "log.retention.hours": "168",
        }
        self.properties_file.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        self.log4j_file.write_text(
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.RollingFileAppender\n"
            f"log4j.appender.file.File={self.logs_dir / 'server.log'}\n"
            "log4j.appender.file.MaxFileSize=20MB\n"
            "log4j.appender.file.MaxBackupIndex=3\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.request.logger=WARN\n"
            "log4j.logger.org.apache.kafka.raft=WARN\n"
            "log4j.logger.kafka.log.LogCleaner=WARN\n"
        )

    def _classpath_command(self, java: str, main_class: str, *args: str, heap: str = "1g") -> list[str]:
        return [
            java, f"-Xmx{heap}", "-Xms256m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j_file}", f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp", str(self.lib_dir / "*"), main_class, *args,
        ]

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = self._classpath_command(
            java, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(self.properties_file), heap="512m"
        )
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise BrokerError(f"formatting the broker's storage failed:\n{completed.stdout}{completed.stderr}")

    def _pick_ports(self, port: int | None, controller_port: int | None) -> tuple[int, int]:
        if port is not None and not port_is_free(port):
            raise BrokerError(f"port {port} is already in use on 127.0.0.1; choose another with --port, or stop what holds it")
        if controller_port is not None and not port_is_free(controller_port):
            raise BrokerError(f"controller port {controller_port} is already in use on 127.0.0.1; choose another with --controller-port")
        if port is None:
            port = DEFAULT_PORT
            if not port_is_free(port):
                port = free_port()
                self._say(f"Port {DEFAULT_PORT} is taken by another program; using 127.0.0.1:{port} instead.")
        if controller_port is None:
            controller_port = DEFAULT_CONTROLLER_PORT
            if controller_port == port or not port_is_free(controller_port):
                controller_port = free_port()
        return port, controller_port

    def start(self, port: int | None = None, controller_port: int | None = None, timeout: float = _READY_TIMEOUT_S) -> BrokerStatus:
        """Start the broker unless it's already running; return once a metadata request succeeds."""
        current = self.status()
        if current.running:
            self._say(f"Kafka is already running on {current.bootstrap} (pid {current.pid}).")
            return current
        java = self._java()
        self.fetch()
        port, controller_port = self._pick_ports(port, controller_port)
        self._write_config(port, controller_port)
        self._format_storage(java)
        bootstrap = f"127.0.0.1:{port}"
        stdout_log = open(self.logs_dir / "stdout.log", "ab")
        try:
            process = subprocess.Popen(
                self._classpath_command(java, "kafka.Kafka", str(self.properties_file)),
                stdin=subprocess.DEVNULL,
                stdout=stdout_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI exiting and its terminal's Ctrl-C
                cwd=self.home,
                preexec_fn=raise_open_files_limit,
            )
        finally:
            stdout_log.close()
        state = {
            "pid": process.pid,
            "bootstrap": bootstrap,
            "port": port,
            "controller_port": controller_port,
            "version": KAFKA_VERSION,
            "started_at": time.time(),
        }
        self.state_file.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
        self._wait_ready(process, bootstrap, timeout)
        return self.status()

    def _wait_ready(self, process: subprocess.Popen, bootstrap: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(f"the broker exited during start-up (code {process.returncode}). Last log lines:\n{self.tail(30)}")
            if metadata_ok(bootstrap):
                return
            time.sleep(0.5)
        raise BrokerError(f"the broker did not answer a metadata request within {timeout:.0f}s. Last log lines:\n{self.tail(30)}")

    # ----------------------------------------------------------------- stop

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> bool:
        """Shut the broker down cleanly (SIGTERM, then SIGKILL after ``timeout``). False if it wasn't running."""
        status = self.status()
        if not status.running or status.pid is None:
            return False
        os.kill(status.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _process_alive(status.pid):
            time.sleep(0.2)
        if _process_alive(status.pid):
            self._say(f"The broker did not stop within {timeout:.0f}s; killing it.")
            os.kill(status.pid, signal.SIGKILL)
        return True

    # ----------------------------------------------------------------- logs

    def log_file(self) -> Path:
        return self.logs_dir / "server.log"

    def tail(self, lines: int = 50) -> str:
        text = ""
        for path in (self.log_file(), self.logs_dir / "stdout.log"):
            try:
                text += "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
            except OSError:
                continue
        return text.rstrip()


def metadata_ok(bootstrap: str, timeout_ms: int = 3000, **client_kwargs) -> bool:
    """True once the cluster answers a metadata request (what every client needs first)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
            client_id="segments-readiness",
            **client_kwargs,
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
