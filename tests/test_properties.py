"""Property tests: values round-trip exactly, and random bytes never break the server."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.echo_app import DISCONNECTS_KEY, make_echo_app
from tests.rawws import Opcode, RawWebSocket, build_frame
from tests.resources import settle

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]

# The server fixture is shared by all examples of a test on purpose: it is the thing
# under test, and a fresh one per example would only make the run slower.
round_trip_settings = settings(
    max_examples=60,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    """A client of a running echo application."""
    return await aiohttp_client(make_echo_app())


@round_trip_settings
@given(text=st.text(max_size=2000))
async def test_text_round_trips_exactly(client: TestClient[Any, Any], text: str) -> None:
    """Any text comes back from a text route unchanged."""
    async with client.ws_connect("/text") as websocket:
        await websocket.send_str(text)
        assert await websocket.receive_str() == text


@round_trip_settings
@given(data=st.binary(max_size=4000))
async def test_bytes_round_trip_exactly(client: TestClient[Any, Any], data: bytes) -> None:
    """Any bytes come back from a bytes route unchanged."""
    async with client.ws_connect("/bytes") as websocket:
        await websocket.send_bytes(data)
        assert await websocket.receive_bytes() == data


@round_trip_settings
@given(value=json_values)
async def test_nested_json_round_trips_exactly(client: TestClient[Any, Any], value: Any) -> None:
    """Any nested JSON value comes back from a json route equal, with the same types."""
    async with client.ws_connect("/json") as websocket:
        await websocket.send_str(json.dumps(value))
        echoed = json.loads(await websocket.receive_str())
    assert echoed == value
    assert json.dumps(echoed, sort_keys=True) == json.dumps(value, sort_keys=True)


# Random bytes after the handshake -------------------------------------------------------

#: How a server may end a connection after garbage: protocol error, bad payload, too big.
FAILURE_CODES = {1002, 1007, 1009}


def client_close_codes(data: bytes) -> set[int]:
    """Close codes the server may rightly echo: those of close frames inside ``data``."""
    codes: set[int] = set()
    position = 0
    while position + 2 <= len(data):
        first, second = data[position], data[position + 1]
        length, position = second & 0x7F, position + 2
        if length >= 126:
            size = 2 if length == 126 else 8
            length = int.from_bytes(data[position : position + size], "big")
            position += size
        key = data[position : position + 4] if second & 0x80 else b""
        position += len(key)
        key = key or bytes(4)  # aiohttp reads an unmasked frame as it is
        payload = data[position : position + length]
        if len(payload) < length:
            break
        position += length
        if first & 0xF == Opcode.CLOSE:
            unmasked = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
            codes.add(int.from_bytes(unmasked[:2], "big") if len(unmasked) >= 2 else 1000)
            break
    return codes


# Mostly well-formed headers, so that payload checks (UTF-8, sizes) are reached too.
frames = st.builds(
    build_frame,
    opcode=st.sampled_from([0x0, 0x1, 0x1, 0x2, 0x8, 0x9, 0xA]) | st.integers(0, 15),
    payload=st.binary(max_size=200) | st.text(max_size=50).map(str.encode),
    fin=st.just(True) | st.booleans(),
    rsv=st.just(0) | st.sampled_from([1, 2, 4]),
    mask=st.just(True) | st.booleans(),
    declared_length=st.none() | st.integers(0, 2**16) | st.integers(2**20, 2**63),
    mask_key=st.binary(min_size=4, max_size=4),
)
#: Garbage of two kinds: plain random bytes, and frames with random header fields.
garbage = st.binary(min_size=1, max_size=512) | st.lists(frames, min_size=1, max_size=4).map(
    b"".join
)


@settings(
    max_examples=100,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=garbage)
# Pinned examples, so every run reaches each failure code at least once.
@example(data=build_frame(Opcode.TEXT, b"\xff\xfe", mask_key=b"abcd"))  # 1007
@example(data=build_frame(Opcode.BINARY, b"", declared_length=2**40, mask_key=b"abcd"))  # 1009
@example(data=build_frame(Opcode.PING, b"x", fin=False, mask_key=b"abcd"))  # 1002
@example(data=build_frame(Opcode.CLOSE, b"\x00", mask=False))  # an unmasked 1-byte close
async def test_random_bytes_never_break_the_server(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    caplog: pytest.LogCaptureFixture,
    data: bytes,
) -> None:
    """Garbage after the handshake: the connection stays open or closes 1002/1007/1009."""
    caplog.clear()
    server = await aiohttp_server(make_echo_app())
    assert server.port is not None
    with caplog.at_level(logging.WARNING):
        websocket = await RawWebSocket.connect("127.0.0.1", server.port, "/echo")
        websocket.send_raw(data)
        try:
            close = await websocket.read_close(within=0.3)
        except TimeoutError:
            close = None  # still open, waiting for the rest of a frame
        await websocket.aclose()
        if close is not None:
            assert close.code in FAILURE_CODES | client_close_codes(data), close
        # However it ended, the view finishes: on_disconnect runs, nothing hangs.
        assert await settle(lambda: len(server.app[DISCONNECTS_KEY]) == 1, within=3.0)
        await server.close()
    problems = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert problems == []
