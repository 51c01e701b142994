"""Test helpers: talk to your WebSocket routes from pytest, and never hang.

With pytest-aiohttp installed, the ``websocket_connect`` fixture opens a connection to an
application under test::

    async def test_echo(websocket_connect: WebSocketConnect) -> None:
        ws = await websocket_connect(init_app(), "/echo")
        await ws.send_text("hello")
        await ws.expect_text("You said: hello")
        await ws.expect_close(1000)

Typed messages (msgspec Structs, pydantic models) have their own helpers:
``await ws.send_message(Say(text="hi"))``, ``await ws.expect_message(Said(text="hi"))``
and ``await ws.receive_message(Said)``.

Every receive waits at most :data:`DEFAULT_TIMEOUT` seconds (or the ``timeout`` you pass)
and then fails the test with an :class:`AssertionError` that says what it was waiting for.

The fixture lives in :mod:`aioendpoints.pytest_plugin`, which pytest loads through the
``pytest11`` entry point when aioendpoints is installed. This module does not import
pytest: :func:`connect` works with any :class:`aiohttp.test_utils.TestClient`, outside
pytest too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType, UnionType
from typing import Any, Protocol, TypeVar, overload

from aiohttp import ClientWebSocketResponse, WSMessage, WSMsgType, web
from aiohttp.test_utils import TestClient

from .close_codes import CloseCode
from .messages.codecs import decoder_for, typed_encoder
from .serialization import default_dumps, default_loads

__all__ = [
    "DEFAULT_TIMEOUT",
    "WebSocketConnect",
    "WebSocketTestClient",
    "connect",
]

#: Loaded by pytest with this module (the ``pytest11`` entry point names this module).
pytest_plugins = ["aioendpoints.pytest_plugin"]

#: Seconds a helper waits for the handshake or a message before it fails the test.
DEFAULT_TIMEOUT = 5.0

MessageT = TypeVar("MessageT")

_ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


class WebSocketTestClient:
    """The client side of a WebSocket connection in a test, with timeouts and assertions.

    ``receive*`` and ``expect_*`` wait at most :attr:`timeout` seconds, then raise
    :class:`AssertionError`. Use it as an async context manager to close it at the end.
    """

    # Not a test class, whatever pytest's name matching thinks.
    __test__ = False

    def __init__(
        self, response: ClientWebSocketResponse, *, path: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        #: The aiohttp client connection, for anything the helpers do not cover.
        self.response = response
        #: The path this connection was opened on, for failure messages.
        self.path = path
        #: Seconds each receive waits before it fails the test.
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<WebSocketTestClient {self.path}>"

    async def __aenter__(self) -> WebSocketTestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def close_code(self) -> int | None:
        """The close code once the connection has closed, else ``None``."""
        return self.response.close_code

    # Sending -------------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send a text frame."""
        await self.response.send_str(text)

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        await self.response.send_bytes(data)

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as JSON in a text frame."""
        encoded = default_dumps(value)
        await self.response.send_str(encoded if isinstance(encoded, str) else encoded.decode())

    async def send_message(self, message: Any) -> None:
        """Send a typed message (a msgspec Struct or pydantic model), encoded with its class."""
        encode = typed_encoder(type(message))
        if encode is None:
            raise TypeError(
                f"send_message() takes a msgspec Struct or pydantic model, got {message!r}"
            )
        await self.response.send_str(encode(message).decode())

    # Receiving -----------------------------------------------------------------------------

    async def receive(self) -> WSMessage:
        """Return the next message of any kind, close frames included."""
        seconds = self.timeout
        try:
            return await self.response.receive(timeout=seconds)
        except TimeoutError:
            raise AssertionError(f"no message from {self.path} within {seconds:g} s") from None

    async def receive_text(self) -> str:
        """Return the next message, which must be a text frame."""
        message = await self.receive()
        if message.type is not WSMsgType.TEXT:
            raise AssertionError(f"expected a text message from {self.path}, got {_show(message)}")
        return str(message.data)

    async def receive_bytes(self) -> bytes:
        """Return the next message, which must be a binary frame."""
        message = await self.receive()
        if message.type is not WSMsgType.BINARY:
            raise AssertionError(
                f"expected a binary message from {self.path}, got {_show(message)}"
            )
        return bytes(message.data)

    async def receive_json(self) -> Any:
        """Return the next message, a text frame of JSON, decoded."""
        text = await self.receive_text()
        try:
            return default_loads(text)
        except ValueError:
            raise AssertionError(f"expected JSON from {self.path}, got {text!r}") from None

    @overload
    async def receive_message(self, message_class: type[MessageT]) -> MessageT: ...

    @overload
    async def receive_message(self, message_class: UnionType | tuple[type, ...]) -> Any: ...

    async def receive_message(self, message_class: Any) -> Any:
        """Return the next message decoded into ``message_class`` (or a union of classes).

        Fails the test when it is not a text frame of that class.
        """
        text = await self.receive_text()
        try:
            return decoder_for(message_class)(text)
        except ValueError as error:
            name = getattr(message_class, "__name__", message_class)
            raise AssertionError(
                f"expected a {name} message from {self.path}, got {text!r}: {error}"
            ) from None

    # Assertions ----------------------------------------------------------------------------

    async def expect_message(self, expected: MessageT) -> MessageT:
        """Assert that the next message is the typed message ``expected``; return it."""
        received = await self.receive_message(type(expected))
        if received != expected:
            raise AssertionError(f"expected {expected!r} from {self.path}, got {received!r}")
        return received

    async def expect_text(self, expected: str) -> None:
        """Assert that the next message is the text frame ``expected``."""
        text = await self.receive_text()
        if text != expected:
            raise AssertionError(f"expected {expected!r} from {self.path}, got {text!r}")

    async def expect_bytes(self, expected: bytes) -> None:
        """Assert that the next message is the binary frame ``expected``."""
        data = await self.receive_bytes()
        if data != expected:
            raise AssertionError(f"expected {expected!r} from {self.path}, got {data!r}")

    async def expect_json(self, expected: Any) -> None:
        """Assert that the next message is JSON equal to ``expected``."""
        value = await self.receive_json()
        if value != expected:
            raise AssertionError(f"expected {expected!r} from {self.path}, got {value!r}")

    async def expect_close(
        self, code: int | None = None, reason: str | None = None
    ) -> tuple[int, str]:
        """Assert that the server closes next, with ``code`` and ``reason`` when given.

        A connection that drops without a close frame counts as code 1006. Returns the
        code and the reason.
        """
        message = await self.receive()
        if message.type not in _ENDED:
            raise AssertionError(f"expected a close from {self.path}, got {_show(message)}")
        if message.type is WSMsgType.CLOSE:
            got_code, got_reason = int(message.data), str(message.extra or "")
        else:
            got_code, got_reason = self.response.close_code or CloseCode.ABNORMAL_CLOSURE, ""
        if code is not None and got_code != code:
            raise AssertionError(
                f"expected close code {code} from {self.path}, "
                f"got {got_code}" + (f" ({got_reason!r})" if got_reason else "")
            )
        if reason is not None and got_reason != reason:
            raise AssertionError(
                f"expected close reason {reason!r} from {self.path}, got {got_reason!r}"
            )
        return got_code, got_reason

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection (nothing happens if it is already closed)."""
        if not self.response.closed:
            await self.response.close(code=code, message=reason.encode())


async def connect(
    client: TestClient[Any, Any],
    path: str,
    *,
    # It bounds every later wait on the connection too, so asyncio.timeout() cannot replace it.
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    **ws_connect_options: Any,
) -> WebSocketTestClient:
    """Open a WebSocket to ``path`` on the test server behind ``client``.

    ``ws_connect_options`` go to :meth:`aiohttp.ClientSession.ws_connect` (``protocols``,
    ``headers``, ...). A handshake that takes longer than ``timeout`` fails the test.
    """
    try:
        async with asyncio.timeout(timeout):
            response = await client.ws_connect(path, **ws_connect_options)
    except TimeoutError:
        raise AssertionError(
            f"WebSocket handshake to {path} took more than {timeout:g} s"
        ) from None
    return WebSocketTestClient(response, path=path, timeout=timeout)


class WebSocketConnect(Protocol):
    """The type of the ``websocket_connect`` fixture, for annotating tests."""

    def __call__(
        self,
        app_or_client: web.Application | TestClient[Any, Any],
        path: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        **ws_connect_options: Any,
    ) -> Awaitable[WebSocketTestClient]:
        """Open a WebSocket to ``path`` on an application or test client."""
        ...


def _show(message: WSMessage) -> str:
    if message.type is WSMsgType.CLOSE:
        return f"a close with code {message.data}" + (
            f" ({message.extra!r})" if message.extra else ""
        )
    if message.type in _ENDED:
        return f"the connection closing ({message.type.name})"
    kind = "text" if message.type is WSMsgType.TEXT else message.type.name.lower()
    return f"a {kind} message {message.data!r}"


def __getattr__(name: str) -> Any:
    # The fixture is importable from here as it always was, without importing pytest
    # until someone asks for it.
    if name == "websocket_connect":
        from .pytest_plugin import websocket_connect

        return websocket_connect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
