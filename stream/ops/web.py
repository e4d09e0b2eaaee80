"""The worker's ops endpoints on faust's web server.

- ``/healthz``: the process is alive and its event loop answers (liveness probe);
- ``/readyz``: partitions assigned and table recovery finished (readiness probe), 503
  until then;
- ``/metrics``: Prometheus text format (stream/ops/metrics.py);
- ``/dashboard/``: the live dashboard (stream/ops/static/), fed by ``/api/*``.

The server binds to 127.0.0.1 unless ``web_host`` says otherwise. With ``web_token`` set
every endpoint but the probes and the dashboard's page and assets requires
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Any, Callable

from aiohttp import web as aiohttp_web

from stream.core.timeutil import rfc3339_ms
from stream.ops import api
from stream.ops.metrics import CONTENT_TYPE, render_metrics

STATIC_DIR = Path(__file__).parent / "static"
PROBES = frozenset({"/healthz", "/readyz"})
DASHBOARD_PAGE = "/dashboard/"
DEFAULT_CHANGES = 50
MAX_CHANGES = 500


def _dashboard_asset(path: str) -> bool:
    return (path == DASHBOARD_PAGE or path.startswith(f"{DASHBOARD_PAGE}static/")) and ".." not in path


def bearer_token_middleware(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    @aiohttp_web.middleware
    async def require_token(request: Any, handler: Any) -> Any:
        # Open: the probes (load balancers send no secrets) and the dashboard's page and
        # assets (a browser sends no header with a page load; they hold no data, and the
        # page sends the token with its API calls).
        if request.path not in PROBES and not _dashboard_asset(request.path):
            given = request.headers.get("Authorization", "").encode()
            # Constant time, so the token can't be guessed byte by byte.
            if not hmac.compare_digest(given, expected):
                return aiohttp_web.json_response(
                    {"error": "a bearer token is required"}, status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="segments"'},
                )
        return await handler(request)

    return require_token


def register_probes_and_metrics(app: Any, *, ready: Callable[[], bool], metrics: Callable[[], bytes], token: str | None) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics`` on a faust app, and the bearer token."""
    from faust.web import View

    if token:
        app.web.web_app.middlewares.append(bearer_token_middleware(token))
    started = time.monotonic()

    @app.page("/healthz")
    async def healthz(self: View, request: Any) -> Any:
        return self.json({"status": "ok", "uptime_seconds": round(time.monotonic() - started, 3)})

    @app.page("/readyz")
    async def readyz(self: View, request: Any) -> Any:
        is_ready = ready()
        return self.json({"status": "ready" if is_ready else "not ready"}, status=200 if is_ready else 503)

    @app.page("/metrics")
    async def metrics_page(self: View, request: Any) -> Any:
        return self.bytes(metrics(), headers={"Content-Type": CONTENT_TYPE})


def register_ops_endpoints(app: Any, probe: Any, *, customers_table: Any, sample_seconds: float, token: str | None) -> None:
    """Add the worker's ops routes to ``app`` (a faust App) reading from ``probe`` (WorkerProbe)."""
    from faust.web import View

    register_probes_and_metrics(app, ready=probe.ready, metrics=lambda: render_metrics(probe.snapshot()), token=token)

    @app.page("/api/overview")
    async def overview(self: View, request: Any) -> Any:
        return self.json(api.overview(probe.snapshot()))

    @app.page("/api/series")
    async def series(self: View, request: Any) -> Any:
        return self.json(api.series(probe.snapshot(), sample_seconds))

    @app.page("/api/changes")
    async def changes(self: View, request: Any) -> Any:
        try:
            limit = min(MAX_CHANGES, int(request.query.get("limit", DEFAULT_CHANGES)))
        except ValueError:
            return self.json({"error": "limit must be an integer"}, status=400)
        return self.json(api.recent_changes(probe.snapshot(), limit))

    @app.page("/api/debug/offsets")
    async def debug_offsets(self: View, request: Any) -> Any:
        return self.json({"partitions": probe.consumer_offsets()})

    @app.page("/api/customers/{customer_id}")
    class CustomerLookup(View):
        # faust forwards the request to the worker owning the customer's partition.
        @app.table_route(table=customers_table, match_info="customer_id")
        async def get(self, request: Any, customer_id: str) -> Any:
            found = probe.customer(customer_id)
            if found is None:
                erased_at = probe.erased_at(customer_id)
                if erased_at is not None:
                    return self.json({"error": f"erased at {rfc3339_ms(erased_at)}"}, status=404)
                return self.json({"error": "unknown customer"}, status=404)
            return self.json(api.customer(*found))

    @app.page(DASHBOARD_PAGE)
    async def dashboard(self: View, request: Any) -> Any:
        index = STATIC_DIR / "index.html"
        if not index.is_file():
            return self.json({"error": "the dashboard's assets are not installed"}, status=404)
        return self.html(index.read_text(encoding="utf-8"))

    if STATIC_DIR.is_dir():
        app.web.add_static(f"{DASHBOARD_PAGE}static/", STATIC_DIR)

    @app.timer(sample_seconds)
    async def sample_series() -> None:
        """One point of the dashboard's time series (lag, totals, segment counts)."""
        if probe.started:
            probe.telemetry.series.append(api.series_sample(probe.snapshot()))
