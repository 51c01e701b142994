"""aioendpoints: friendly WebSocket views and endpoints for aiohttp."""

from .admin import ConnectionInfo, connections, disconnect, send_to_user
from .application import CONNECTIONS_KEY, ConnectionRegistry, setup
from .broadcast import (
    BROADCAST_KEY,
    Broadcast,
    BroadcastUnavailable,
    History,
    Position,
    Recovery,
    close_slow_member,
    group_members,
    history,
    presence,
    publish,
    resume,
)
from .close_codes import CloseCode
from .endpoints import WebSocketEndpoint
from .exceptions import (
    InvalidData,
    UnsupportedData,
    WebSocketClose,
    WebSocketDisconnect,
    WebSocketStateError,
)
from .handlers import websocket_handler
from .limits import RateLimit
from .logs import ConnectionLogFilter
from .messages import MessageRejected, asyncapi, on_message
from .options import DEFAULT_MAX_MESSAGE_SIZE, WebSocketOptions
from .routing import WebSocketRoutes
from .websocket import Address, WebSocket, WebSocketState

__version__ = "0.1.0"

__all__ = [
    # The connection
    "Address",
    "WebSocket",
    "WebSocketState",
    # Views, endpoints and routes
    "WebSocketEndpoint",
    "WebSocketOptions",
    "WebSocketRoutes",
    "websocket_handler",
    "DEFAULT_MAX_MESSAGE_SIZE",
    # Typed messages
    "MessageRejected",
    "asyncapi",
    "on_message",
    # Limits
    "RateLimit",
    # App-wide parts
    "CONNECTIONS_KEY",
    "ConnectionRegistry",
    "setup",
    # Groups and broadcast
    "BROADCAST_KEY",
    "Broadcast",
    "BroadcastUnavailable",
    "close_slow_member",
    "group_members",
    "publish",
    # Operations
    "ConnectionInfo",
    "ConnectionLogFilter",
    "connections",
    "disconnect",
    "send_to_user",
    # History and recovery
    "History",
    "Position",
    "Recovery",
    "history",
    "presence",
    "resume",
    # Close codes and errors
    "CloseCode",
    "InvalidData",
    "UnsupportedData",
    "WebSocketClose",
    "WebSocketDisconnect",
    "WebSocketStateError",
]
