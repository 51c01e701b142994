"""How a connection ends: one table from the way its view ended to what the peer and the log get.

The view runner (:mod:`aioendpoints.handlers`) hands :func:`ending_for` how the view
ended, and carries out the :class:`Ending` it gets back, in one place. This module only
decides: a pure function of its arguments, tested as a table.

================================  =================================  ==================
How the view ended                after ``accept()``                 before it
================================  =================================  ==================
returned                          close 1000                         HTTP 403
the peer vanished (1006)          DEBUG                              HTTP 403 (unseen)
its task was cancelled            dropped (1006), DEBUG; re-raised   re-raised
the peer closed, caught code      DEBUG                              none
the peer closed, another code     WARNING, without a traceback       none
this side closed first (a limit)  DEBUG                              none
WebSocketClose, ``close_codes``   close with that code, DEBUG        HTTP 403
an aiohttp HTTP error             close 1011, ERROR and traceback    that HTTP error
any other exception               close 1011, ERROR and traceback    HTTP 500
================================  =================================  ==================

A connection that is closed already keeps its close code and gets no second close frame.
A close code that cannot be sent in a close frame (1005, 1006, ...) becomes 1011 and is
logged at ERROR. An exception that ``close_codes`` maps to 1011 is a fault with the
route's reason.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from aiohttp import web

from .close_codes import CloseCode, is_sendable_close_code
from .exceptions import WebSocketClose, WebSocketDisconnect

__all__ = ["Ending", "Outcome", "classify", "ending_for"]

INTERNAL_ERROR_REASON = "Internal server error"


class Outcome(enum.Enum):
    """How a view ended."""

    RETURNED = "returned"
    #: The peer vanished without a close frame (1006).
    DROPPED = "dropped"
    #: The task serving the connection was cancelled: a server that cancels handlers whose
    #: peer left, or a shutdown that stopped waiting.
    CANCELLED = "cancelled"
    #: The peer's close frame, raised as a disconnect out of the view.
    PEER_CLOSED = "peer closed"
    #: A disconnect after this side closed first: ``ws.close()``, a limit, a shutdown.
    CLOSED_HERE = "closed here"
    #: :class:`~aioendpoints.WebSocketClose`, or an exception the route maps to a code.
    CLOSE = "close"
    #: An aiohttp HTTP error (``web.HTTPException``).
    HTTP_ERROR = "HTTP error"
    #: Any other exception: a fault of the server.
    FAULT = "fault"


@dataclass(frozen=True, slots=True)
class Ending:
    """What to do about a connection whose view ended."""

    #: The close code: sent to the peer when :attr:`send_close`, and what
    #: ``on_disconnect`` and :attr:`WebSocket.close_code` get.
    code: int
    reason: str = ""
    #: Send a close frame with :attr:`code` (false when the connection is closed already).
    send_close: bool = False
    #: Drop the transport without a close frame.
    drop: bool = False
    #: Before ``accept()``: the HTTP status to answer instead of the upgrade.
    refusal: int | None = None
    #: Raise the view's exception again (a cancellation; an HTTP error before ``accept()``).
    reraise: bool = False
    #: The level to log :attr:`message` at; ``logging.NOTSET`` logs nothing.
    log_level: int = logging.NOTSET
    #: Log the exception's traceback with the message.
    traceback: bool = False
    message: str = ""


def classify(
    error: BaseException | None, *, closed_here: bool, mapped: tuple[int, str] | None
) -> Outcome:
    """How a view that raised ``error`` (``None``: returned) ended.

    ``closed_here`` tells whether this side closed the connection first; ``mapped`` is
    what the route's ``close_codes`` maps ``error`` to.
    """
    if error is None:
        return Outcome.RETURNED
    if isinstance(error, asyncio.CancelledError):
        return Outcome.CANCELLED
    if isinstance(error, WebSocketDisconnect):
        if error.code == CloseCode.ABNORMAL_CLOSURE:
            return Outcome.DROPPED
        return Outcome.CLOSED_HERE if closed_here else Outcome.PEER_CLOSED
    if isinstance(error, WebSocketClose):
        return Outcome.CLOSE
    if isinstance(error, web.HTTPException):
        return Outcome.HTTP_ERROR
    if mapped is not None and mapped[0] != CloseCode.INTERNAL_ERROR:
        return Outcome.CLOSE
    return Outcome.FAULT


def ending_for(
    error: BaseException | None,
    *,
    accepted: bool,
    closed: tuple[int, str] | None,
    closed_here: bool,
    catches: Callable[[int], bool],
    mapped: tuple[int, str] | None,
) -> Ending:
    """Decide how to end a connection whose view raised ``error`` (``None``: returned).

    ``accepted``: whether the handshake was accepted. ``closed``: the close code and
    reason if the connection is closed already. ``closed_here``: whether this side closed
    first. ``catches``: the route's ``caught_close_codes`` test. ``mapped``: what the
    route's ``close_codes`` maps ``error`` to, if anything.
    """
    outcome = classify(error, closed_here=closed_here, mapped=mapped)
    if outcome is Outcome.CANCELLED:
        code, reason = closed or (CloseCode.ABNORMAL_CLOSURE, "")
        return Ending(
            code,
            reason,
            drop=accepted and closed is None,
            reraise=True,
            log_level=logging.DEBUG,
            message="was cancelled (its peer left, or the server stopped waiting)",
        )
    if not accepted:
        return _refusal(outcome, error, mapped)
    ending = _after_accept(outcome, error, catches, mapped)
    if closed is not None:
        # Closed already: that close code stands, and there is nothing more to send.
        return replace(ending, code=closed[0], reason=closed[1], send_close=False, drop=False)
    return ending


def _after_accept(
    outcome: Outcome,
    error: BaseException | None,
    catches: Callable[[int], bool],
    mapped: tuple[int, str] | None,
) -> Ending:
    if outcome is Outcome.RETURNED:
        return _closing(CloseCode.NORMAL_CLOSURE, "", logging.NOTSET, "")
    if outcome is Outcome.DROPPED:
        return Ending(
            CloseCode.ABNORMAL_CLOSURE,
            drop=True,
            log_level=logging.DEBUG,
            message="ended: its peer vanished (1006)",
        )
    if isinstance(error, WebSocketDisconnect):  # PEER_CLOSED or CLOSED_HERE
        code = error.code
        if outcome is Outcome.PEER_CLOSED and not catches(code):
            level = logging.WARNING
            message = f"ended by a disconnect with code {code} (not in caught_close_codes)"
        else:
            level, message = logging.DEBUG, f"ended by a disconnect with code {code}"
        return _closing(code, error.reason, level, message)
    if outcome is Outcome.CLOSE:
        code, reason = mapped or _close_of(error)
        return _closing(code, reason, logging.DEBUG, f"closes with {code} on {error!r}")
    # A fault: an HTTP error after accept(), or any other exception.
    code, reason = mapped or (CloseCode.INTERNAL_ERROR, INTERNAL_ERROR_REASON)
    return Ending(
        code,
        reason,
        send_close=True,
        log_level=logging.ERROR,
        traceback=True,
        message="failed",
    )


def _refusal(
    outcome: Outcome, error: BaseException | None, mapped: tuple[int, str] | None
) -> Ending:
    """The ending of a view that ended before ``accept()``: an HTTP answer, no upgrade."""
    if outcome is Outcome.HTTP_ERROR:
        return Ending(
            CloseCode.POLICY_VIOLATION,
            "refused",
            reraise=True,
            log_level=logging.DEBUG,
            message=f"refused the handshake with {error!r}",
        )
    if outcome is Outcome.CLOSE:
        code, reason = mapped or _close_of(error)
        return Ending(
            code,
            reason,
            refusal=403,
            log_level=logging.DEBUG,
            message=f"refused the handshake on {error!r}",
        )
    if outcome is Outcome.FAULT:
        return Ending(
            CloseCode.INTERNAL_ERROR,
            "",
            refusal=500,
            log_level=logging.ERROR,
            traceback=True,
            message="failed before accept()",
        )
    if outcome is Outcome.DROPPED:
        return Ending(
            CloseCode.ABNORMAL_CLOSURE,
            refusal=403,
            log_level=logging.DEBUG,
            message="ended before accept(): its peer left",
        )
    # Returned (or a disconnect raised by hand) without accepting: refused, as in Starlette.
    return Ending(
        CloseCode.POLICY_VIOLATION,
        "refused",
        refusal=403,
        log_level=logging.DEBUG,
        message="ended without accept(): the handshake is refused",
    )


def _closing(code: int, reason: str, level: int, message: str) -> Ending:
    """Close with ``code``; one that cannot be sent in a close frame becomes 1011."""
    if not is_sendable_close_code(code):
        return Ending(
            CloseCode.INTERNAL_ERROR,
            INTERNAL_ERROR_REASON,
            send_close=True,
            log_level=logging.ERROR,
            message=f"asked for close code {code}, which cannot be sent; closing with 1011",
        )
    return Ending(code, reason, send_close=True, log_level=level, message=message)


def _close_of(error: BaseException | None) -> tuple[int, str]:
    assert isinstance(error, WebSocketClose)
    return error.code, error.reason
