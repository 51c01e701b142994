"""Unit tests: every way aiohttp reports a lost peer becomes the right close code.

A fake response stands in for aiohttp's, so that each report can be produced on demand; the
functional tests elsewhere show the same codes over real sockets.
"""

from __future__ import annotations

import pytest
from aiohttp import WebSocketError, WSMessage, WSMsgType
from aiohttp.test_utils import make_mocked_request

from aioendpoints import CloseCode, WebSocket, WebSocketDisconnect


class FakeResponse:
    """Answers receive() with one scripted aiohttp message."""

    ws_protocol = None

    def __init__(self, message: WSMessage) -> None:
        self.message = message

    async def receive(self) -> WSMessage:
        return self.message

    async def close(self, *, code: int, message: bytes = b"", drain: bool = True) -> bool:
        self.closed_with = (code, message)
        return True


class IdleTransport:
    """A transport with nothing left to write."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16 * 1024, 64 * 1024)

    def is_closing(self) -> bool:
        return False


def open_websocket(message: WSMessage) -> WebSocket:
    websocket = WebSocket(make_mocked_request("GET", "/", transport=IdleTransport()))
    response = FakeResponse(message)
    websocket.response = response  # type: ignore[assignment]
    websocket._receive_message = FakeResponse.receive
    websocket._receive_from = response
    websocket._phase = 1  # open, as after accept()
    return websocket


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        (WSMessage(WSMsgType.CLOSE, 1000, ""), 1000, ""),
        (WSMessage(WSMsgType.CLOSE, 4002, "bye"), 4002, "bye"),
        (WSMessage(WSMsgType.CLOSE, 0, ""), CloseCode.NO_STATUS_RECEIVED, ""),
        (WSMessage(WSMsgType.CLOSED, None, None), CloseCode.ABNORMAL_CLOSURE, ""),
        (WSMessage(WSMsgType.CLOSING, None, None), CloseCode.ABNORMAL_CLOSURE, ""),
        (WSMessage(WSMsgType.ERROR, ConnectionResetError(), None), 1006, ""),
        (
            WSMessage(WSMsgType.ERROR, WebSocketError(1009, "Message too big"), None),
            CloseCode.MESSAGE_TOO_BIG,
            "Message too big",
        ),
    ],
    ids=["close-1000", "close-4002", "close-empty", "closed", "closing", "reset", "too-big"],
)
async def test_receive_maps_each_report_to_its_close_code(
    message: WSMessage, code: int, reason: str
) -> None:
    """CLOSE keeps the peer's code; CLOSED/CLOSING/errors without a close frame are 1006."""
    websocket = open_websocket(message)
    with pytest.raises(WebSocketDisconnect) as raised:
        await websocket.receive()
    assert (raised.value.code, raised.value.reason) == (code, reason)
    assert (websocket.close_code, websocket.closed) == (code, True)


async def test_after_a_disconnect_every_call_raises_the_same_code() -> None:
    """Once closed, receive() and send() raise WebSocketDisconnect with the same code."""
    websocket = open_websocket(WSMessage(WSMsgType.CLOSE, 4100, "gone"))
    for call in (websocket.receive, websocket.receive_bytes, lambda: websocket.send("x")):
        with pytest.raises(WebSocketDisconnect) as raised:
            await call()
        assert raised.value.code == 4100


async def test_our_close_code_wins_over_a_later_closing_report() -> None:
    """After our own close(), aiohttp's CLOSING report keeps our code, not 1006."""
    websocket = open_websocket(WSMessage(WSMsgType.CLOSING, None, None))
    websocket._set_closed(CloseCode.GOING_AWAY, "shutdown")
    with pytest.raises(WebSocketDisconnect) as raised:
        await websocket.receive()
    assert raised.value.code == CloseCode.GOING_AWAY


def test_disconnect_and_close_exceptions_read_well() -> None:
    """The exceptions' messages name the code and reason."""
    assert str(WebSocketDisconnect(1001, "bye")) == "WebSocket closed with code 1001: bye"
    from aioendpoints import InvalidData, UnsupportedData, WebSocketClose

    assert str(WebSocketClose(4000, "nope")) == "close with code 4000: nope"
    assert UnsupportedData().code == CloseCode.UNSUPPORTED_DATA
    assert InvalidData(reason="bad").code == CloseCode.INVALID_PAYLOAD
