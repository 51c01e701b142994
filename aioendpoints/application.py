"""App-wide parts: :func:`setup` installs the registry of open connections, graceful
shutdown and the features (groups, authentication) on an application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .admin import install_admin
from .auth.check import AUTH_KEY, AuthSettings
from .auth.principal import Authenticate, GroupPermission
from .broadcast.client import DEFAULT_CLIENT_PATH, install_client
from .broadcast.groups import Broadcast
from .broadcast.groups import install as install_broadcast
from .broadcast.history import HistorySettings
from .monitoring import MONITOR_KEY, Monitor
from .observers import OBSERVER_KEY
from .origins import ALLOWED_ORIGINS_KEY, AllowedOrigins, OriginPolicy
from .registry import CONNECTIONS_KEY, DEFAULT_SHUTDOWN_TIMEOUT, ConnectionRegistry

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from .admin_page import AdminCheck

__all__ = ["CONNECTIONS_KEY", "ConnectionRegistry", "setup"]


def setup(
    app: web.Application,
    *,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    allowed_origins: AllowedOrigins | None = None,
    broadcast: str | Broadcast = "memory://",
    asyncapi: str | None = None,
    asyncapi_title: str = "WebSocket API",
    asyncapi_version: str = "1.0.0",
    authenticate: Authenticate | None = None,
    group_permission: GroupPermission | None = None,
    # Operations
    metrics: bool | CollectorRegistry = False,
    metrics_path: str | None = None,
    admin_path: str | None = None,
    admin_check: AdminCheck | None = None,
    tracing: bool | TracerProvider = False,
    trace_messages: bool = False,
    history: HistorySettings | None = None,
    client_path: str | None = DEFAULT_CLIENT_PATH,
) -> None:
    """Install aioendpoints' app-wide parts on ``app``.

    * a :class:`ConnectionRegistry` of open connections, as ``app[CONNECTIONS_KEY]``;
    * graceful shutdown: when the app shuts down, every open connection is closed with
      1001 (going away) and its view gets ``shutdown_timeout`` seconds to end;
    * ``allowed_origins``: the cross-site origins that routes without their own
      ``allowed_origins`` accept (``"*"`` for any); by default, same-origin only.
    * groups and broadcast (:meth:`WebSocket.join`, :func:`publish`) over ``broadcast``:
      ``"memory://"`` (one process) or ``"redis://host:port/db"`` (every process sharing
      that Redis), or a :class:`~aioendpoints.broadcast.Broadcast`; it starts and stops
      with the app.
    * ``asyncapi``: a path such as ``"/asyncapi.json"`` that serves the app's AsyncAPI
      document (see :func:`aioendpoints.asyncapi`), titled ``asyncapi_title`` and
      ``asyncapi_version``, and a readable HTML page of it at the same path with
      ``.html`` for ``.json``.
    * ``authenticate`` and ``group_permission``: the credential check before the upgrade
      and the group permission of routes without their own (see :mod:`aioendpoints.auth`).
    * with metrics or tracing on, a :class:`~aioendpoints.monitoring.Monitor` of the
      connections' totals per route, which the metrics report;
    * ``metrics``: record Prometheus metrics (needs the ``metrics`` extra) in a registry of
      their own (``app[METRICS_KEY]``), or in the ``CollectorRegistry`` given;
      ``metrics_path`` also serves them at that path (and turns them on).
    * ``tracing``: OpenTelemetry spans for each handshake (continuing the request's
      ``traceparent``) and each connection (needs the ``tracing`` extra), through the
      global tracer provider, or the ``TracerProvider`` given; ``trace_messages`` adds a
      span per received message (and turns tracing on), on the routes whose own
      ``trace_messages`` option does not say otherwise (see :doc:`/howto/operating`).
    * ``admin_path``: a read-only admin page of this process's connections and groups,
      refreshed live, for the requests that ``admin_check(request)`` allows (required with
      it; sync or async); off by default.
    * ``history``: what groups keep for recovery and replay: a
      :class:`~aioendpoints.History` for every group, or a function of the group name that
      returns one (or ``None``); by default, none.
    * ``client_path``: where the browser module that reconnects and resumes is served
      (``None``: not served); see :func:`aioendpoints.resume`.

    Routes work without it; call it once, before the app starts.
    """
    if CONNECTIONS_KEY in app:
        raise RuntimeError("aioendpoints.setup() was already called for this application")
    auth = AuthSettings.checked(authenticate, group_permission)
    app[CONNECTIONS_KEY] = ConnectionRegistry(shutdown_timeout=shutdown_timeout)
    if allowed_origins is not None:
        app[ALLOWED_ORIGINS_KEY] = OriginPolicy.from_origins(allowed_origins)
    if auth is not None:
        app[AUTH_KEY] = auth
    app.on_shutdown.append(_close_connections)
    hub = install_broadcast(app, broadcast, history)
    if client_path is not None:
        install_client(app, client_path)
    install_admin(app, hub)
    recording = metrics is not False or metrics_path is not None
    if recording or tracing or trace_messages:
        # The monitor keeps the totals that the metrics report, and the tracing observer
        # hears of connections through it. With neither on, no observer is installed, so
        # that no handshake or close calls one.
        monitor = Monitor(count_messages=recording)
        app[OBSERVER_KEY] = app[MONITOR_KEY] = monitor
        if tracing or trace_messages:
            from .tracing import TracingObserver

            provider = None if isinstance(tracing, bool) else tracing
            app[OBSERVER_KEY] = TracingObserver(monitor, provider, trace_messages=trace_messages)
        if recording:
            from .metrics import install_metrics

            registry = None if isinstance(metrics, bool) else metrics
            install_metrics(app, monitor, hub, registry, metrics_path)
    if admin_path is not None:
        from .admin_page import install_admin_page

        install_admin_page(app, admin_path, admin_check)
    if asyncapi is not None:
        from .messages.pages import install as install_asyncapi

        install_asyncapi(app, asyncapi, title=asyncapi_title, version=asyncapi_version)


async def _close_connections(app: web.Application) -> None:
    await app[CONNECTIONS_KEY].close_all()
