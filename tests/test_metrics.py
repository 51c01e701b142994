"""Prometheus metrics, scraped from ``/metrics`` of a real server under a scripted scenario."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

import aioendpoints
from aioendpoints import Broadcast, WebSocket, WebSocketRoutes, close_slow_member

from .helpers import eventually, serving

#: Sample name and sorted labels -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

ECHO = "/echo/{room}"
GUARDED = "/guarded"
RECEIVE_TIMEOUT = 10.0


def scenario_routes() -> WebSocketRoutes:
    """An echo that joins its room's group, publishes on request and kicks on request."""
    routes = WebSocketRoutes()

    @routes.websocket_route(ECHO, value_type="text", caught_close_codes="all")
    async def echo(ws: WebSocket, room: str) -> None:
        await ws.accept()
        await ws.join(f"room:{room}")
        async for text in ws:
            if text == "kick":
                await ws.close(1008, "kicked")
            elif text.startswith("publish:"):
                await ws.publish(f"room:{room}", text.removeprefix("publish:"))
            else:
                await ws.send(text)

    @routes.websocket_route(GUARDED)
    async def guarded(ws: WebSocket) -> None:
        ws.reject(401, "who are you?")

    return routes


async def scrape(session: aiohttp.ClientSession, url: str) -> Samples:
    """GET the metrics and parse them as Prometheus does; only aioendpoints' samples."""
    async with session.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("aioendpoints_") and not sample.name.endswith("_created")
    }


async def scrape_when(
    session: aiohttp.ClientSession, url: str, ready: Callable[[Samples], bool]
) -> Samples:
    """Scrape until ``ready`` holds: closes are handled by the server a moment later."""
    latest: Samples = {}

    async def check() -> bool:
        nonlocal latest
        latest = await scrape(session, url)
        return ready(latest)

    for _ in range(200):
        if await check():
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"the metrics never got there: {latest}")


def lag_samples(count: int) -> Samples:
    """The broadcast lag histogram with ``count`` observations, for the memory backend 0."""
    name = "aioendpoints_broadcast_lag_seconds"
    buckets = [*(str(bound) for bound in aioendpoints.metrics.LAG_BUCKETS), "+Inf"]
    samples: Samples = {(f"{name}_bucket", (("le", bound),)): count for bound in buckets}
    samples[(f"{name}_count", ())] = count
    samples[(f"{name}_sum", ())] = 0.0
    return samples


async def test_every_metric_has_its_exact_value_after_a_scripted_scenario() -> None:
    """4 connects, 5 messages in, 3 out, 3 closes (1000, 4001, 1008), 3 refusals."""
    app = web.Application()
    aioendpoints.setup(app, metrics_path="/metrics")
    app.add_routes(scenario_routes())
    async with serving(app) as url, aiohttp.ClientSession() as session:
        one = await session.ws_connect(f"{url}/echo/a")
        two = await session.ws_connect(f"{url}/echo/b")
        three = await session.ws_connect(f"{url}/echo/a")
        four = await session.ws_connect(f"{url}/echo/b")
        # Refusals: a cross-site origin (403), the view's own (401), no upgrade (426).
        with pytest.raises(aiohttp.WSServerHandshakeError) as cross_site:
            await session.ws_connect(f"{url}/echo/c", origin="http://elsewhere.example")
        assert cross_site.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
            await session.ws_connect(f"{url}/guarded")
        assert unknown.value.status == 401
        async with session.get(f"{url}/echo/a") as plain:
            assert plain.status == 426

        for text in ("hello", "héllo"):  # 5 bytes, then 6 in UTF-8
            await one.send_str(text)
            assert await one.receive_str(timeout=RECEIVE_TIMEOUT) == text
        await two.send_str("hello")
        assert await two.receive_str(timeout=RECEIVE_TIMEOUT) == "hello"
        await four.send_str("publish:hi")  # 10 bytes in; "hi" comes back through the group
        assert await four.receive_str(timeout=RECEIVE_TIMEOUT) == "hi"
        await three.send_str("kick")  # 4 bytes in; the server closes with 1008
        assert (await three.receive(timeout=RECEIVE_TIMEOUT)).type is aiohttp.WSMsgType.CLOSE
        assert three.close_code == 1008
        await one.close()
        await two.close(code=4001)

        samples = await scrape_when(
            session,
            url,
            lambda samples: samples.get(("aioendpoints_connections", (("route", ECHO),))) == 1,
        )
        echo, guarded = (("route", ECHO),), (("route", GUARDED),)
        assert samples == {
            ("aioendpoints_connections", echo): 1,
            ("aioendpoints_connections", guarded): 0,
            ("aioendpoints_connections_total", echo): 4,
            ("aioendpoints_connections_total", guarded): 0,
            ("aioendpoints_disconnects_total", (("code", "1000"), *echo)): 1,
            ("aioendpoints_disconnects_total", (("code", "1008"), *echo)): 1,
            ("aioendpoints_disconnects_total", (("code", "4001"), *echo)): 1,
            ("aioendpoints_handshake_refusals_total", (*echo, ("status", "403"))): 1,
            ("aioendpoints_handshake_refusals_total", (*echo, ("status", "426"))): 1,
            ("aioendpoints_handshake_refusals_total", (*guarded, ("status", "401"))): 1,
            ("aioendpoints_messages_received_total", echo): 5,
            ("aioendpoints_messages_received_total", guarded): 0,
            ("aioendpoints_messages_sent_total", echo): 3,
            ("aioendpoints_messages_sent_total", guarded): 0,
            ("aioendpoints_received_bytes_total", echo): 5 + 6 + 5 + 10 + 4,
            ("aioendpoints_received_bytes_total", guarded): 0,
            ("aioendpoints_sent_bytes_total", echo): 5 + 6 + 5,
            ("aioendpoints_sent_bytes_total", guarded): 0,
            ("aioendpoints_send_buffer_bytes", echo): 0,
            ("aioendpoints_send_buffer_bytes", guarded): 0,
            ("aioendpoints_group_members", ()): 1,
            ("aioendpoints_published_total", ()): 1,
            ("aioendpoints_slow_members_closed_total", ()): 0,
            **lag_samples(0),
        }
        await four.close()
        samples = await scrape_when(
            session,
            url,
            lambda samples: samples.get(("aioendpoints_connections", (("route", ECHO),))) == 0,
        )
        assert samples[("aioendpoints_disconnects_total", (("code", "1000"), *echo))] == 2
        assert samples[("aioendpoints_group_members", ())] == 0
        # The counts of ended connections stay in the totals.
        assert samples[("aioendpoints_messages_received_total", echo)] == 5


async def test_a_slow_member_closed_by_the_policy_is_counted() -> None:
    """A member that never reads: one slow member closed with 1013, every publish counted."""
    app = web.Application()
    aioendpoints.setup(
        app,
        metrics_path="/metrics",
        broadcast=Broadcast(
            buffer_limit=64 * 1024,
            slow_member_timeout=0.2,
            on_slow_member=close_slow_member(timeout=1.0),
        ),
    )
    app.add_routes(scenario_routes())
    padding = "x" * 64 * 1024
    async with serving(app) as url, aiohttp.ClientSession() as session:
        fast = await session.ws_connect(f"{url}/echo/slow")
        slow = await session.ws_connect(f"{url}/echo/slow")  # and never reads
        members = set(aioendpoints.group_members(app, "room:slow"))
        published = 0
        while not any(member.closed for member in members):
            assert published < 1000, "the slow member was never closed"
            await aioendpoints.publish(app, "room:slow", padding)
            published += 1
            assert await fast.receive_str(timeout=RECEIVE_TIMEOUT) == padding
        await eventually(lambda: len(aioendpoints.group_members(app, "room:slow")) == 1)
        samples = await scrape(session, url)
        assert samples[("aioendpoints_published_total", ())] == published
        assert samples[("aioendpoints_slow_members_closed_total", ())] == 1
        assert samples[("aioendpoints_group_members", ())] == 1
        await fast.close()
        async with asyncio.timeout(RECEIVE_TIMEOUT):
            while (await slow.receive()).type is aiohttp.WSMsgType.TEXT:
                pass  # what was sent before the server gave up on it (or dropped it)
        echo = (("route", ECHO),)
        samples = await scrape_when(
            session,
            url,
            lambda samples: samples.get(("aioendpoints_connections", echo)) == 0,
        )
        assert samples[("aioendpoints_disconnects_total", (("code", "1013"), *echo))] == 1
        assert samples[("aioendpoints_disconnects_total", (("code", "1000"), *echo))] == 1


DASHBOARD = Path(__file__).resolve().parent.parent / "examples" / "grafana" / "aioendpoints.json"


async def test_the_grafana_dashboard_charts_every_metric_and_only_real_ones() -> None:
    """Each name in the dashboard's queries is exposed, and each exposed metric is charted."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    charted = set(re.findall(r"\baioendpoints_\w+", " ".join(queries)))
    app = web.Application()
    aioendpoints.setup(app, metrics_path="/metrics")
    app.add_routes(scenario_routes())
    async with (
        serving(app) as url,
        aiohttp.ClientSession() as session,
        session.get(f"{url}/metrics") as response,
    ):
        text = await response.text()
    # Every family is announced, with or without samples yet.
    families = set(re.findall(r"^# HELP (aioendpoints_\w+)", text, re.M))
    families = {name for name in families if not name.endswith("_created")}
    charted_families = {re.sub(r"_bucket$", "", name) for name in charted}
    assert families == charted_families, families ^ charted_families
