"""The sender's Prometheus metrics (prometheus_client) and its ``/metrics`` + ``/healthz``
HTTP endpoint on ``metrics_host:metrics_port`` (127.0.0.1:6068 by default).

Every label value the sender can use is created up front, so a dashboard or alert never
refers to a series that "does not exist yet".
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from stream.ops.metrics import register_process_collectors
from stream.sender.action import IGNORE_REASONS
from stream.sender.eligibility import SKIP_REASONS
from stream.sender.ledger import SKIP_ERASED


class SenderMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        register_process_collectors(self.registry)
        self.sent = Counter("segments_actions_sent", "Emails accepted by the SMTP server (or printed in demo mode), by channel.",
                            ["channel"], registry=self.registry)
        self.skipped = Counter("segments_actions_skipped", "Actions the sender did not send, by reason (expired, no_contact, re-checks, erased).",
                               ["reason"], registry=self.registry)
        self.failed = Counter("segments_actions_failed", "Failed delivery attempts: transient (retried) or permanent (dead-lettered).",
                              ["kind"], registry=self.registry)
        self.unknown = Counter("segments_actions_unknown", "Actions whose delivery is in doubt (no reply after the end of data, or in flight at a crash); never retried.",
                               registry=self.registry)
        self.ignored = Counter("segments_sender_ignored", "Action records not for the sender (other channel, skipped status, holdout) or malformed.",
                               ["reason"], registry=self.registry)
        self.erasures = Counter("segments_sender_erasures", "Erasure notices applied: the customer's unsent actions cancelled, their ledger rows redacted.",
                                registry=self.registry)
        self.pruned = Counter("segments_sender_pruned", "Finished actions deleted from the ledger (prune_after_days), by state.",
                              ["state"], registry=self.registry)
        self.pending = Gauge("segments_sender_pending", "Actions in the ledger waiting to be sent (held, due or retrying).",
                             registry=self.registry)
        self.active = Gauge("segments_sender_active", "1 while this sender holds the actions topic's partitions and sends; 0 while it "
                            "stands by for another sender of its group (stream/sender/assignor.py).", registry=self.registry)
        self.sent.labels("email")
        for reason in (*SKIP_REASONS, SKIP_ERASED):
            self.skipped.labels(reason)
        for kind in ("transient", "permanent"):
            self.failed.labels(kind)
        for reason in IGNORE_REASONS:
            self.ignored.labels(reason)
        self.started = time.monotonic()
        self.last_loop = time.monotonic()
        # Consumers connected and the profiles partitions assigned (``/healthz`` says so).
        self.ready = False
        self.is_active = False

    def set_active(self, active: bool) -> None:
        """This sender holds the actions topic's partitions (True) or stands by."""
        self.is_active = active
        self.active.set(int(active))

    def beat(self) -> None:
        """The main loop is alive (``/healthz``)."""
        self.last_loop = time.monotonic()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``/metrics`` and ``/healthz`` in a daemon thread. ``/healthz`` answers 503 when the
    main loop has not come round for ``stale_seconds`` (stuck, not merely busy)."""

    def __init__(self, metrics: SenderMetrics, host: str, port: int, *, stale_seconds: float) -> None:
        self.metrics = metrics
        self.stale_seconds = stale_seconds
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, CONTENT_TYPE_LATEST, outer.metrics.render())
                elif path == "/healthz":
                    silent = time.monotonic() - outer.metrics.last_loop
                    healthy = silent <= outer.stale_seconds
                    body: dict[str, Any] = {
                        "status": "ok" if healthy else "stalled",
                        "ready": outer.metrics.ready,
                        "active": outer.metrics.is_active,
                        "uptime_seconds": round(time.monotonic() - outer.metrics.started, 3),
                        "seconds_since_loop": round(silent, 3),
                    }
                    self._answer(200 if healthy else 503, "application/json", orjson.dumps(body))
                else:
                    self._answer(404, "application/json", b'{"error": "not found"}')

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: no access log
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="sender-metrics", daemon=True)

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
