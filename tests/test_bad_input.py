"""Bad input, sent through a raw socket: each gets its exact close code or HTTP status.

After every attack the same server must still serve a well-behaved client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from tests.echo_app import MAX_MESSAGE_SIZE, make_echo_app
from tests.rawws import (
    Close,
    Opcode,
    RawWebSocket,
    build_frame,
    close_payload,
    deflate,
    http_request,
    new_key,
    upgrade_request,
)

ServerFactory = Callable[..., Awaitable[TestServer]]

AIOHTTP_ACCEPTS_UNMASKED = (
    "aiohttp <= 3.14.5 does not check the mask bit of client frames (RFC 6455 §5.1 says a "
    "server MUST close the connection); known upstream: aiohttp's THREAT_MODEL.md item 3.1, "
    "'Unmasked client frames accepted' (aio-libs/aiohttp#12976)"
)
AIOHTTP_DEFLATE_ERROR_CLOSES_1000 = (
    "aiohttp <= 3.14.5 turns a zlib.error while inflating into a close with 1000 "
    "instead of failing the connection (web_ws.py closes with the default code); "
    "no upstream issue found"
)


@pytest.fixture
async def server(each_mode_server: ServerFactory) -> TestServer:
    """A running echo application on a free loopback port."""
    return await each_mode_server(make_echo_app())


async def connect(server: TestServer, path: str, **options: object) -> RawWebSocket:
    assert server.port is not None
    return await RawWebSocket.connect("127.0.0.1", server.port, path, **options)  # type: ignore[arg-type]


async def close_after(
    server: TestServer,
    path: str,
    *frames: bytes,
    headers: dict[str, str] | None = None,
    within: float = 5.0,
) -> Close:
    """Send ``frames`` on a fresh connection to ``path`` and return how the server closed."""
    websocket = await connect(server, path, headers=headers)
    try:
        for frame in frames:
            websocket.send_raw(frame)
        return await websocket.read_close(within)
    finally:
        await websocket.aclose()


async def assert_still_serving(server: TestServer) -> None:
    """A well-behaved client still gets its echo and a clean close."""
    websocket = await connect(server, "/echo")
    websocket.send_text("still there?")
    assert await websocket.read_text() == "still there?"
    websocket.send_close(1000)
    assert (await websocket.read_close()).code == 1000
    await websocket.aclose()


def text(payload: bytes, **options: object) -> bytes:
    return build_frame(Opcode.TEXT, payload, **options)  # type: ignore[arg-type]


def close_frame(payload: bytes) -> bytes:
    return build_frame(Opcode.CLOSE, payload)


# The close-code policy (issue 4, section 1) ---------------------------------------------


async def test_binary_frame_on_text_route_closes_1003(server: TestServer) -> None:
    """A binary message on a text route is unsupported data (1003)."""
    close = await close_after(server, "/text", build_frame(Opcode.BINARY, b"\x00\x01"))
    assert close.code == 1003
    await assert_still_serving(server)


async def test_binary_frame_on_json_route_closes_1003(server: TestServer) -> None:
    """A binary message on a json route is unsupported data (1003)."""
    close = await close_after(server, "/json", build_frame(Opcode.BINARY, b"{}"))
    assert close.code == 1003
    await assert_still_serving(server)


async def test_text_frame_on_bytes_route_closes_1003(server: TestServer) -> None:
    """A text message on a bytes route is unsupported data (1003)."""
    close = await close_after(server, "/bytes", text(b"hello"))
    assert close.code == 1003
    await assert_still_serving(server)


async def test_invalid_json_closes_1007(server: TestServer) -> None:
    """Text that is not JSON on a json route is an invalid payload (1007)."""
    close = await close_after(server, "/json", text(b'{"unterminated": '))
    assert close.code == 1007
    await assert_still_serving(server)


async def test_text_that_is_not_utf8_on_json_route_closes_1007(server: TestServer) -> None:
    """A text frame whose bytes are not UTF-8 is an invalid payload (1007)."""
    close = await close_after(server, "/json", text(b'"caf\xe9"'))
    assert close.code == 1007
    await assert_still_serving(server)


async def test_oversized_message_closes_1009_before_its_payload(server: TestServer) -> None:
    """A frame declaring more than max_msg_size is refused (1009) from its header alone."""
    header_only = text(b"", declared_length=64 * MAX_MESSAGE_SIZE)
    close = await close_after(server, "/text", header_only)
    assert close.code == 1009
    await assert_still_serving(server)


async def test_oversized_fragmented_message_closes_1009(server: TestServer) -> None:
    """Fragments that add up to more than max_msg_size are refused (1009)."""
    half = b"a" * (MAX_MESSAGE_SIZE // 2 + 1)
    close = await close_after(
        server,
        "/text",
        text(half, fin=False),
        build_frame(Opcode.CONTINUATION, half, fin=False),
        build_frame(Opcode.CONTINUATION, half),
    )
    assert close.code == 1009
    await assert_still_serving(server)


async def test_exception_after_accept_closes_1011_and_logs_once(
    server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises after accept closes with 1011 and logs one traceback."""
    with caplog.at_level(logging.ERROR, logger="aioendpoints"):
        close = await close_after(server, "/fail-on-receive", text(b"boom"))
        await assert_still_serving(server)
    assert close.code == 1011
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 1
    assert "on_receive failed on purpose" in str(tracebacks[0].exc_info[1])  # type: ignore[index]


async def test_exception_before_accept_is_http_500(server: TestServer) -> None:
    """on_connect raising before accept() answers the handshake with HTTP 500."""
    assert server.port is not None
    request = upgrade_request("/fail-before-accept", f"127.0.0.1:{server.port}", key=new_key())
    response = await http_request("127.0.0.1", server.port, request)
    assert response.status == 500
    await assert_still_serving(server)


async def test_policy_refusal_after_accept_closes_1008_with_reason(server: TestServer) -> None:
    """WebSocketClose(1008, reason) after accept sends 1008 and the reason."""
    close = await close_after(server, "/policy", text(b"one too many"))
    assert close == Close(1008, "rate limit exceeded")
    await assert_still_serving(server)


@pytest.mark.parametrize(
    "code",
    [
        0,
        999,
        1004,
        1005,
        1006,  # aiohttp <= 3.14.5 lets it through; aioendpoints fails the connection itself
        1015,
        1016,
        2999,
    ],
)
async def test_peer_close_code_that_is_never_sent_fails_with_1002(
    server: TestServer, code: int
) -> None:
    """A close code no peer may send fails the connection with 1002 instead of an echo."""
    close = await close_after(server, "/echo", close_frame(close_payload(code)))
    assert close.code == 1002
    await assert_still_serving(server)


# Framing violations (RFC 6455 §5) -------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(build_frame(Opcode.RESERVED_DATA, b"x"), id="reserved-data-opcode-3"),
        pytest.param(build_frame(0x7, b""), id="reserved-data-opcode-7"),
        pytest.param(build_frame(Opcode.RESERVED_CONTROL, b""), id="reserved-control-opcode-B"),
        pytest.param(build_frame(0xF, b""), id="reserved-control-opcode-F"),
        pytest.param(text(b"x", rsv=0b100), id="rsv1-without-deflate"),
        pytest.param(text(b"x", rsv=0b010), id="rsv2"),
        pytest.param(text(b"x", rsv=0b001), id="rsv3"),
        pytest.param(build_frame(Opcode.PING, b"x", fin=False), id="fragmented-ping"),
        pytest.param(build_frame(Opcode.PING, b"x" * 126), id="ping-over-125-bytes"),
        pytest.param(build_frame(Opcode.CONTINUATION, b"x"), id="orphan-continuation"),
        pytest.param(close_frame(b"\x03"), id="close-payload-of-one-byte"),
    ],
)
async def test_protocol_violation_fails_with_1002(server: TestServer, frame: bytes) -> None:
    """A frame that breaks RFC 6455's framing rules fails the connection with 1002."""
    close = await close_after(server, "/echo", frame)
    assert close.code == 1002
    await assert_still_serving(server)


async def test_new_message_inside_fragmented_one_fails_with_1002(server: TestServer) -> None:
    """A text frame where a continuation is due fails the connection with 1002."""
    close = await close_after(server, "/echo", text(b"first", fin=False), text(b"second"))
    assert close.code == 1002
    await assert_still_serving(server)


async def test_close_reason_that_is_not_utf8_fails_with_1007(server: TestServer) -> None:
    """A close frame whose reason is not UTF-8 fails the connection with 1007."""
    close = await close_after(server, "/echo", close_frame(close_payload(1000, b"\xff\xfe")))
    assert close.code == 1007
    await assert_still_serving(server)


@pytest.mark.xfail(strict=True, reason=AIOHTTP_ACCEPTS_UNMASKED)
async def test_unmasked_client_frame_fails_with_1002(server: TestServer) -> None:
    """A client frame without a mask fails the connection with 1002."""
    close = await close_after(server, "/echo", text(b"no mask", mask=False), within=1.0)
    assert close.code == 1002
    await assert_still_serving(server)


async def test_valid_deflated_message_is_echoed(server: TestServer) -> None:
    """With permessage-deflate agreed, a compressed frame is inflated and echoed."""
    websocket = await connect(
        server, "/echo", headers={"Sec-WebSocket-Extensions": "permessage-deflate"}
    )
    assert "permessage-deflate" in websocket.handshake_headers["sec-websocket-extensions"]
    websocket.send_raw(text(deflate(b"squeeze me"), rsv=0b100))
    frame = await websocket.read_message()
    await websocket.aclose()
    assert frame.rsv == 0b100
    assert frame.payload != b"squeeze me"


@pytest.mark.xfail(strict=True, reason=AIOHTTP_DEFLATE_ERROR_CLOSES_1000)
async def test_corrupt_deflate_payload_fails_with_1007(server: TestServer) -> None:
    """A compressed frame that does not inflate fails the connection with 1007."""
    close = await close_after(
        server,
        "/echo",
        text(b"\xff\xff\xff\xff not deflate", rsv=0b100),
        headers={"Sec-WebSocket-Extensions": "permessage-deflate"},
    )
    assert close.code == 1007
    await assert_still_serving(server)


# Bad opening handshakes: refused with an HTTP status, never upgraded ---------------------


def handshake(server: TestServer, **options: object) -> bytes:
    return upgrade_request("/echo", f"127.0.0.1:{server.port}", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "status"),
    [
        pytest.param({}, 400, id="missing-key"),
        pytest.param({"key": "not-a-16-byte-nonce"}, 400, id="invalid-key"),
        pytest.param({"key": new_key(), "version": None}, 400, id="missing-version"),
        pytest.param({"key": new_key(), "version": "8.5"}, 400, id="unknown-version"),
        pytest.param({"key": new_key(), "method": "POST"}, 405, id="post-instead-of-get"),
    ],
)
async def test_bad_upgrade_request_is_refused(
    server: TestServer, options: dict[str, object], status: int
) -> None:
    """A malformed opening handshake gets an HTTP error and no upgrade."""
    assert server.port is not None
    response = await http_request("127.0.0.1", server.port, handshake(server, **options))
    assert response.status == status
    await assert_still_serving(server)


async def test_foreign_origin_is_refused_with_403(server: TestServer) -> None:
    """A browser handshake from another site is refused with 403 (no hijacking)."""
    assert server.port is not None
    request = handshake(server, key=new_key(), headers={"Origin": "https://evil.example"})
    response = await http_request("127.0.0.1", server.port, request)
    assert response.status == 403
    await assert_still_serving(server)
