"""The observability part of docker-compose.yml: Prometheus and Grafana (deploy/).

No Docker engine runs here, so instead of starting the stack these tests check what
would break it silently: a provisioning file that does not parse, a mount of a file
that is not there, a scrape target that is not the worker's service and port, and,
above all, a dashboard query naming a metric the worker does not export (Grafana just
shows "No data", nobody notices).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import promql_parser
import pytest
import yaml

from stream.cli.worker import worker as worker_command
from stream.worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "segments.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "segments.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"


# --------------------------------------------------------------------------- helpers


def _bind_mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (``./x:/y[:ro]``)."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def _host_path(service: str, container_path: str) -> Path:
    """Where ``container_path`` of ``service`` comes from on the host, through its bind mounts."""
    for target, source in sorted(_bind_mounts(service).items(), key=lambda item: -len(item[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    raise AssertionError(f"{container_path} is not mounted into the {service} service")


def _option(command: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a command list."""
    for index, argument in enumerate(command):
        if argument == name and index + 1 < len(command):
            return command[index + 1]
        if argument.startswith(name + "="):
            return argument.split("=", 1)[1]
    return None


def _container_port(service: str) -> int:
    """The container port a service publishes (``[ip:]host:container``)."""
    (published,) = SERVICES[service]["ports"]
    return int(str(published).rsplit(":", 1)[1])


def _panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _expressions(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in _panels(dashboard) for target in panel.get("targets", []) if "expr" in target]


# Grafana's interval variables: replaced by a duration so the expression parses as PromQL.
_GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def parse_promql(expression: str) -> promql_parser.Expr:
    """The expression parsed by promql-parser (the PromQL grammar of Prometheus, ported
    to Rust); raises ValueError on a syntax error."""
    return promql_parser.parse(_GRAFANA_INTERVALS.sub("1m", expression))


def vector_selectors(node: Any) -> Iterator[promql_parser.VectorSelector]:
    """Every vector selector in a parsed expression (those of range selectors too)."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node
    elif isinstance(node, promql_parser.MatrixSelector):
        yield node.vector_selector
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from vector_selectors(node.lhs)
        yield from vector_selectors(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from vector_selectors(argument)
    elif isinstance(node, promql_parser.AggregateExpr):
        yield from vector_selectors(node.expr)
        if node.param is not None:
            yield from vector_selectors(node.param)
    elif isinstance(node, (promql_parser.ParenExpr, promql_parser.SubqueryExpr, promql_parser.UnaryExpr)):
        yield from vector_selectors(node.expr)


def promql_metric_names(expression: str) -> set[str]:
    """The metric (sample) names an expression selects. A selector by ``{__name__=...}``
    is refused: its name could not be checked."""
    names = set()
    for selector in vector_selectors(parse_promql(expression)):
        if selector.name is None or any(matcher.name == "__name__" for matcher in selector.matchers.matchers):
            raise ValueError(f"select metrics by name, not by __name__: {expression}")
        names.add(selector.name)
    return names


def metric_family(sample_name: str, exported: set[str]) -> str:
    """A histogram's _bucket/_sum/_count sample back to its family name; others as they are."""
    for suffix in _HISTOGRAM_SUFFIXES:
        family = sample_name.removesuffix(suffix)
        if family != sample_name and f"{family}_bucket" in exported:
            return family
    return sample_name


def _exported_metric_names() -> set[str]:
    """What the worker's, the playbooks app's and the sender's /metrics emit, from the
    code that emits it.

    A failure here, rather than a skip, is deliberate: without the worker's list the
    dashboard check would pass vacuously.
    """
    try:
        from stream.ops.metrics import engine_metric_names
    except ImportError as error:
        pytest.fail(f"stream.ops.metrics.engine_metric_names() is needed to check the dashboard's queries: {error}")
    names = set(engine_metric_names())
    assert names, "exported_metric_names() returned nothing"
    return names


# ------------------------------------------------------------- the PromQL selectors


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("sum by (consumergroup, topic, partition) (kafka_consumergroup_lag)", {"kafka_consumergroup_lag"}),
        ('rate(segments_events_total{type="order", job=~"seg.*"}[$__rate_interval])', {"segments_events_total"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(segments_batch_duration_seconds_bucket[5m])))",
            {"segments_batch_duration_seconds_bucket"},
        ),
        (
            "sum(rate(a_sum[1m])) / on (job) group_left (instance) sum(rate(a_count[1m] offset 5m))",
            {"a_sum", "a_count"},
        ),
        ("topk(15, sum without (instance) (increase(x_total[$__range]))) > bool 0", {"x_total"}),
        ("max_over_time(lag[10m:30s]) and on() vector(1) or absent(other_metric)", {"lag", "other_metric"}),
        ('label_replace(up, "dst", "$1", "src", "(by|rate)")', {"up"}),
        ("1e3 * m1 - Inf", {"m1"}),
    ],
)
def test_promql_metric_names(expression: str, expected: set[str]) -> None:
    assert promql_metric_names(expression) == expected


def test_a_promql_syntax_error_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_promql("sum(rate(segments_events_total[5m])")
    with pytest.raises(ValueError):
        parse_promql("segments_ready == == 0")


def test_promql_metric_names_refuses_name_matchers() -> None:
    with pytest.raises(ValueError):
        promql_metric_names('sum(rate({__name__=~"segments_.*"}[1m]))')


def test_histogram_samples_map_back_to_their_family() -> None:
    exported = {"h_bucket", "h_sum", "h_count", "c_total", "g_count"}
    assert metric_family("h_bucket", exported) == "h"
    assert metric_family("h_count", exported) == "h"
    # Not a histogram: a gauge that happens to end in _count stays itself.
    assert metric_family("g_count", exported) == "g_count"
    assert metric_family("c_total", exported) == "c_total"


# -------------------------------------------------------------- files and compose


@pytest.mark.parametrize("path", [PROMETHEUS_CONFIG, DATASOURCES, DASHBOARD_PROVIDERS, ALERTS, ALERTS_TEST])
def test_yaml_files_parse(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_dashboard_parses() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


@pytest.mark.parametrize("service", ["worker", "prometheus", "grafana"])
def test_every_bind_mount_exists(service: str) -> None:
    for target, source in _bind_mounts(service).items():
        assert source.exists(), f"{service}: {source} (mounted at {target}) does not exist"
        assert source.is_relative_to(ROOT / "deploy") or service == "worker", f"{service} mounts {source} from outside deploy/"


def test_compose_mounts_the_provisioning_files() -> None:
    prometheus = SERVICES["prometheus"]
    config_in_container = _option(prometheus["command"], "--config.file")
    assert _host_path("prometheus", config_in_container) == PROMETHEUS_CONFIG.resolve()

    # Grafana reads /etc/grafana/provisioning/{datasources,dashboards}/*.yml ...
    assert _host_path("grafana", "/etc/grafana/provisioning/datasources/prometheus.yml") == DATASOURCES.resolve()
    assert _host_path("grafana", "/etc/grafana/provisioning/dashboards/segments.yml") == DASHBOARD_PROVIDERS.resolve()
    # ... and the file provider's path, inside the container, must hold the dashboard.
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    assert provider["type"] == "file"
    assert _host_path("grafana", provider["options"]["path"]) == DASHBOARD.parent.resolve()
    home = SERVICES["grafana"]["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert _host_path("grafana", home) == DASHBOARD.resolve()


def test_images_are_official_and_pinned() -> None:
    for service, repository in [("prometheus", "prom/prometheus"), ("grafana", "grafana/grafana")]:
        image = SERVICES[service]["image"]
        name, _, tag = image.partition(":")
        assert name == repository, image
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{image}: pin an exact version"


def test_published_ports_are_loopback_only() -> None:
    # Grafana lets anonymous visitors view; neither UI has any business on the LAN.
    assert SERVICES["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert SERVICES["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    # The worker listens on 0.0.0.0 inside its container (for Prometheus); publishing
    # that on the host's every interface would expose /metrics and /api to the LAN.
    # Nor the broker (no authentication), the playbooks app or the sender: every service.
    for service in SERVICES.values():
        for published in service.get("ports", []):
            assert str(published).startswith("127.0.0.1:"), published


def test_prometheus_scrapes_the_worker_service_on_its_web_port() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "segments-worker"]
    (static,) = job["static_configs"]
    (target,) = static["targets"]
    host, port = target.rsplit(":", 1)
    assert host == "worker" and host in SERVICES

    worker = SERVICES["worker"]
    command = worker["command"]
    expected_port = _option(command, "--web-port") or WorkerSettings().web_port
    assert int(port) == int(expected_port)
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "5s"

    # The worker binds 127.0.0.1 by default: another container only reaches it if the
    # compose command asks for all interfaces, with a flag the command really has.
    assert "--web-host" in {option for param in worker_command.params for option in param.opts}
    assert _option(command, "--web-host") == "0.0.0.0"

    # A token on the worker without one in the scrape config would make every scrape a 401.
    if "SEGMENTS_WEB_TOKEN" in worker.get("environment", {}):
        authorization = job.get("authorization", {})
        assert authorization.get("credentials") or authorization.get("credentials_file")


def test_grafana_datasource_points_at_the_prometheus_service() -> None:
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    match = re.fullmatch(r"http://([\w-]+):(\d+)/?", datasource["url"])
    assert match, datasource["url"]
    assert match.group(1) == "prometheus" and match.group(1) in SERVICES
    assert int(match.group(2)) == _container_port("prometheus")


def test_every_panel_uses_the_provisioned_datasource() -> None:
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in _panels(dashboard):
        for holder in [panel, *panel.get("targets", [])]:
            if panel["type"] == "row" and holder is panel:
                continue
            assert holder.get("datasource") == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]


# ------------------------------------------------------------- dashboard queries


def test_dashboard_queries_only_metrics_the_worker_exports() -> None:
    exported = _exported_metric_names()
    dashboard = json.loads(DASHBOARD.read_text())
    unknown = {
        name: expression
        for expression in _expressions(dashboard)
        for name in promql_metric_names(expression)
        if name not in exported
    }
    assert not unknown, f"the dashboard queries metrics the worker does not export: {unknown}"


def test_dashboard_covers_what_operators_need() -> None:
    exported = _exported_metric_names()
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        metric_family(name, exported)
        for expression in _expressions(dashboard)
        for name in promql_metric_names(expression)
    }
    needed = {
        "kafka_consumergroup_lag",  # consumer lag per partition
        "segments_event_time_lag_seconds",
        "segments_events_total",  # throughput
        "segments_customers",  # segment distribution
        "segments_segment_changes_total",  # transitions
        "segments_dead_letters_total",  # DLQ rate
        "segments_batch_duration_seconds",  # p99
        "segments_ready",
        "segments_worker_info",  # which rules each worker runs
        "segments_rules_sweep_pending",
        "process_resident_memory_bytes",  # memory per process
        "process_cpu_seconds_total",  # a worker near one core is at its ceiling
    }
    assert needed <= used, f"no panel shows {needed - used}"


def test_histogram_quantiles_read_buckets_by_le() -> None:
    # histogram_quantile over anything but rate(_bucket) summed by le returns nonsense or nothing.
    quantiles = [expression for expression in _expressions(json.loads(DASHBOARD.read_text())) if "histogram_quantile" in expression]
    assert quantiles
    for expression in quantiles:
        assert re.search(r"by\s*\([^)]*\ble\b", expression), expression
        assert all(name.endswith("_bucket") for name in promql_metric_names(expression)), expression


@pytest.mark.parametrize(
    ("job_name", "service", "host_flag", "default_port"),
    [
        ("segments-playbooks", "playbooks", "--web-host", "playbooks"),
        ("segments-sender", "sender", "--metrics-host", "sender"),
    ],
)
def test_prometheus_scrapes_the_playbooks_app_and_the_sender(job_name: str, service: str, host_flag: str, default_port: str) -> None:
    from stream.sender.settings import SenderSettings
    from stream.worker.settings import PlaybooksSettings

    port_of = {"playbooks": PlaybooksSettings().web_port, "sender": SenderSettings().metrics_port}
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == job_name]
    ((target,),) = [static["targets"] for static in job["static_configs"]]
    host, port = target.rsplit(":", 1)
    assert host == service and service in SERVICES
    assert int(port) == port_of[default_port]
    # Reachable from the Prometheus container only when bound beyond loopback.
    assert _option(SERVICES[service]["command"], host_flag) == "0.0.0.0"


# ------------------------------------------------------------------ alerting rules


def _alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_prometheus_loads_the_alerting_rules_compose_mounts() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (rules_file,) = config["rule_files"]
    assert _host_path("prometheus", rules_file) == ALERTS.resolve()


def test_every_alert_parses_and_names_only_exported_metrics_and_scraped_jobs() -> None:
    exported = _exported_metric_names() | {"up"}  # up: Prometheus's own, per scrape target
    jobs = {job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    rules = _alert_rules()
    assert rules
    for rule in rules:
        selectors = list(vector_selectors(parse_promql(rule["expr"])))
        assert selectors, rule["alert"]
        unknown = {selector.name for selector in selectors} - exported
        assert not unknown, f"{rule['alert']} queries metrics nothing exports: {unknown}"
        for selector in selectors:
            # Every selector says whose metric it means: the worker's, the playbooks
            # app's and the sender's share names (segments_ready, the lag series), and
            # the process_* series are every exporter's: only those may name their jobs
            # by a regular expression, and it must match a scraped job.
            job_matchers = [m for m in selector.matchers.matchers if m.name == "job"]
            named = {m.value for m in job_matchers if m.op == promql_parser.MatchOp.Equal}
            patterns = [m.value for m in job_matchers if m.op == promql_parser.MatchOp.Re]
            if selector.name != "segments_worker_info":
                assert named or patterns, (rule["alert"], selector.name)
            assert named <= jobs, (rule["alert"], selector.name)
            if patterns:
                assert selector.name.startswith(("process_", "python_")), (rule["alert"], selector.name)
            for pattern in patterns:
                assert any(re.fullmatch(pattern, job) for job in jobs), (rule["alert"], selector.name, pattern)


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    names = [rule["alert"] for rule in _alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in _alert_rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_alerts_cover_what_operators_need() -> None:
    exported = _exported_metric_names()
    used = {
        metric_family(selector.name, exported)
        for rule in _alert_rules()
        for selector in vector_selectors(parse_promql(rule["expr"]))
    }
    needed = {
        "up",
        "kafka_consumergroup_lag",
        "segments_ready",
        "segments_event_time_lag_seconds",  # time-caused changes firing late
        "segments_dead_letters_total",
        "segments_rules_sweep_pending",
        "segments_actions_unknown_total",  # emails in doubt
        "process_start_time_seconds",  # crash loops
    }
    assert needed <= used, f"no alert watches {needed - used}"


def test_alerting_rules_pass_their_promtool_tests() -> None:
    """Prometheus's own rule checker evaluates every alert against made-up series
    (alerts_test.yml): where it must fire, with which labels and text, and where not.
    Skipped without promtool (`make promtool` installs Debian's), unless
    SEGMENTS_REQUIRE_PROMTOOL=1 (CI), which makes that a failure."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("SEGMENTS_REQUIRE_PROMTOOL") == "1":
            pytest.fail("SEGMENTS_REQUIRE_PROMTOOL=1 but no promtool on PATH (`make promtool` installs it)")
        pytest.skip("no promtool on PATH (`make promtool` installs Debian's)")
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", ALERTS_TEST.name], cwd=ALERTS_TEST.parent, capture_output=True, text=True, timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert has a scenario.
    tested_alerts = {
        case["alertname"] for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"] for case in test["alert_rule_test"]
    }
    untested = {rule["alert"] for rule in _alert_rules()} - tested_alerts
    assert not untested, f"alerts without a promtool scenario in {ALERTS_TEST.name}: {sorted(untested)}"


@pytest.mark.parametrize(("service", "port"), [("worker", "6066"), ("playbooks", "6067")])
def test_the_worker_and_playbooks_containers_check_their_liveness_probe(service: str, port: str) -> None:
    from stream.ops.web import PROBES

    kind, interpreter, flag, code = SERVICES[service]["healthcheck"]["test"]
    assert (kind, interpreter, flag) == ("CMD", "python", "-c")
    compile(code, "healthcheck", "exec")
    (url,) = re.findall(r"'(http://[^']+)'", code)
    # Inside the container, on the port the service's web server listens on (its
    # published container port), a path that needs no token.
    assert url == f"http://127.0.0.1:{_container_port(service)}/healthz" and port == str(_container_port(service))
    assert "/healthz" in PROBES
