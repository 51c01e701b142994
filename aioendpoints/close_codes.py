"""Named WebSocket close codes (RFC 6455 §7.4) and the rules for using them."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CloseCode", "is_sendable_close_code"]


class CloseCode(IntEnum):
    """WebSocket close codes, as registered by RFC 6455 §7.4.1 and IANA."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RECEIVED = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


# 1005, 1006 and 1015 only ever describe a closure locally: RFC 6455 §7.4.1 forbids
# putting them in a close frame. 1004 is reserved.
_NEVER_SENT = frozenset({1004, 1005, 1006, 1015})


def is_sendable_close_code(code: int) -> bool:
    """Tell whether ``code`` may appear in a close frame (RFC 6455 §7.4)."""
    if 1000 <= code <= 1014:
        return code not in _NEVER_SENT
    return 3000 <= code <= 4999
