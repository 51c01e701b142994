"""The ending table: how a view ended -> close code, reason, HTTP refusal and log level."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from aiohttp import web

from aioendpoints import WebSocketClose, WebSocketDisconnect
from aioendpoints.endings import Ending, Outcome, classify, ending_for
from aioendpoints.options import RouteOptions

DEBUG, WARNING, ERROR, SILENT = logging.DEBUG, logging.WARNING, logging.ERROR, logging.NOTSET
ROUTE = RouteOptions.from_options({"close_codes": {KeyError: (4004, "no such key")}})
FAULTY = RouteOptions.from_options({"close_codes": {KeyError: (1011, "lost a key")}})
INTERNAL = "Internal server error"

# id, raised (None: returned), accepted, already closed with, closed here, route, ending
TABLE: list[
    tuple[str, BaseException | None, bool, tuple[int, str] | None, bool, RouteOptions, Ending]
] = [
    (
        "returned",
        None,
        True,
        None,
        False,
        ROUTE,
        Ending(1000, send_close=True),
    ),
    (
        "returned-after-close",
        None,
        True,
        (4000, "bye"),
        True,
        ROUTE,
        Ending(4000, "bye"),
    ),
    (
        "returned-without-accept",
        None,
        False,
        None,
        False,
        ROUTE,
        Ending(1008, "refused", refusal=403, log_level=DEBUG),
    ),
    (
        "dropped",
        WebSocketDisconnect(1006),
        True,
        (1006, ""),
        False,
        ROUTE,
        Ending(1006, log_level=DEBUG),
    ),
    (
        "dropped-before-accept",
        WebSocketDisconnect(1006),
        False,
        None,
        False,
        ROUTE,
        Ending(1006, refusal=403, log_level=DEBUG),
    ),
    (
        "cancelled",
        asyncio.CancelledError(),
        True,
        None,
        False,
        ROUTE,
        Ending(1006, drop=True, reraise=True, log_level=DEBUG),
    ),
    (
        "cancelled-after-close",
        asyncio.CancelledError(),
        True,
        (1001, "Server shutdown"),
        True,
        ROUTE,
        Ending(1001, "Server shutdown", reraise=True, log_level=DEBUG),
    ),
    (
        "cancelled-before-accept",
        asyncio.CancelledError(),
        False,
        None,
        False,
        ROUTE,
        Ending(1006, reraise=True, log_level=DEBUG),
    ),
    (
        "peer-closed-caught",
        WebSocketDisconnect(1001, "bye"),
        True,
        (1001, "bye"),
        False,
        ROUTE,
        Ending(1001, "bye", log_level=DEBUG),
    ),
    (
        "peer-closed-uncaught",
        WebSocketDisconnect(4000, "no"),
        True,
        (4000, "no"),
        False,
        ROUTE,
        Ending(4000, "no", log_level=WARNING),
    ),
    (
        "limit-hit",
        WebSocketDisconnect(1008, "Rate limit exceeded"),
        True,
        (1008, "Rate limit exceeded"),
        True,
        ROUTE,
        Ending(1008, "Rate limit exceeded", log_level=DEBUG),
    ),
    (
        "websocket-close",
        WebSocketClose(4003, "room is full"),
        True,
        None,
        False,
        ROUTE,
        Ending(4003, "room is full", send_close=True, log_level=DEBUG),
    ),
    (
        "websocket-close-before-accept",
        WebSocketClose(4003, "room is full"),
        False,
        None,
        False,
        ROUTE,
        Ending(4003, "room is full", refusal=403, log_level=DEBUG),
    ),
    (
        "websocket-close-unsendable",
        WebSocketClose(1006, "gone"),
        True,
        None,
        False,
        ROUTE,
        Ending(1011, INTERNAL, send_close=True, log_level=ERROR),
    ),
    (
        "mapped",
        KeyError("room"),
        True,
        None,
        False,
        ROUTE,
        Ending(4004, "no such key", send_close=True, log_level=DEBUG),
    ),
    (
        "mapped-before-accept",
        KeyError("room"),
        False,
        None,
        False,
        ROUTE,
        Ending(4004, "no such key", refusal=403, log_level=DEBUG),
    ),
    (
        "mapped-to-1011",
        KeyError("room"),
        True,
        None,
        False,
        FAULTY,
        Ending(1011, "lost a key", send_close=True, log_level=ERROR, traceback=True),
    ),
    (
        "fault",
        RuntimeError("bug"),
        True,
        None,
        False,
        ROUTE,
        Ending(1011, INTERNAL, send_close=True, log_level=ERROR, traceback=True),
    ),
    (
        "fault-after-close",
        RuntimeError("bug"),
        True,
        (1000, ""),
        True,
        ROUTE,
        Ending(1000, log_level=ERROR, traceback=True),
    ),
    (
        "fault-before-accept",
        RuntimeError("bug"),
        False,
        None,
        False,
        ROUTE,
        Ending(1011, refusal=500, log_level=ERROR, traceback=True),
    ),
    (
        "http-error-before-accept",
        web.HTTPUnauthorized(),
        False,
        None,
        False,
        ROUTE,
        Ending(1008, "refused", reraise=True, log_level=DEBUG),
    ),
    (
        "http-error-after-accept",
        web.HTTPUnauthorized(),
        True,
        None,
        False,
        ROUTE,
        Ending(1011, INTERNAL, send_close=True, log_level=ERROR, traceback=True),
    ),
]


@pytest.mark.parametrize(
    ("raised", "accepted", "closed", "closed_here", "route", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_ending_table(
    raised: BaseException | None,
    accepted: bool,
    closed: tuple[int, str] | None,
    closed_here: bool,
    route: RouteOptions,
    expected: Ending,
) -> None:
    """Each way a view can end gets its close code, reason, refusal and log level."""
    ending = ending_for(
        raised,
        accepted=accepted,
        closed=closed,
        closed_here=closed_here,
        catches=route.catches,
        mapped=None if raised is None else route.close_for(raised),
    )
    assert dataclasses.replace(ending, message="") == expected
    assert bool(ending.message) == (ending.log_level != SILENT)


@pytest.mark.parametrize(
    ("raised", "closed_here", "outcome"),
    [
        (None, False, Outcome.RETURNED),
        (WebSocketDisconnect(1006), False, Outcome.DROPPED),
        (WebSocketDisconnect(1006), True, Outcome.DROPPED),
        (WebSocketDisconnect(1000), False, Outcome.PEER_CLOSED),
        (WebSocketDisconnect(1008), True, Outcome.CLOSED_HERE),
        (asyncio.CancelledError(), False, Outcome.CANCELLED),
        (WebSocketClose(4000), False, Outcome.CLOSE),
        (web.HTTPForbidden(), False, Outcome.HTTP_ERROR),
        (KeyError("mapped"), False, Outcome.CLOSE),
        (ValueError("not mapped"), False, Outcome.FAULT),
    ],
)
def test_classify(raised: BaseException | None, closed_here: bool, outcome: Outcome) -> None:
    """A view's ending is classified by what it raised and who closed first."""
    mapped = ROUTE.close_for(raised) if raised is not None else None
    assert classify(raised, closed_here=closed_here, mapped=mapped) is outcome


def test_a_dropped_peer_is_caught_whatever_the_route_says() -> None:
    """1006 ends a view silently even when caught_close_codes leaves it out."""
    route = RouteOptions.from_options({"caught_close_codes": [1000]})
    assert route.catches(1006)
    assert not route.catches(1001)
