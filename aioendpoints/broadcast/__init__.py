"""Groups and broadcast: send one message to every member of a group, in every process.

``memory://`` (the default) keeps groups within one process; ``redis://host:port/db``
spreads them over every process connected to the same Redis.
"""

from .backend import BroadcastBackend, BroadcastUnavailable
from .client import resume
from .frames import Message
from .groups import (
    BROADCAST_KEY,
    DEFAULT_BUFFER_LIMIT,
    Broadcast,
    broadcast_of,
    group_members,
    history,
    presence,
    publish,
)
from .history import History, HistorySettings, Position, Recovery
from .memory import MemoryBackend
from .slow_members import SlowMemberPolicy, close_slow_member
from .urls import backend_for_url

__all__ = [
    # Per application
    "BROADCAST_KEY",
    "Broadcast",
    "broadcast_of",
    "group_members",
    "publish",
    "Message",
    # History and recovery
    "History",
    "HistorySettings",
    "Position",
    "Recovery",
    "history",
    "presence",
    "resume",
    # Slow members
    "DEFAULT_BUFFER_LIMIT",
    "SlowMemberPolicy",
    "close_slow_member",
    # Backends
    "BroadcastBackend",
    "BroadcastUnavailable",
    "MemoryBackend",
    "backend_for_url",
]
