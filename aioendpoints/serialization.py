"""JSON encoding: orjson when it is installed, the standard library otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["JSONDumps", "JSONLoads", "default_dumps", "default_loads"]

#: Turns a value into JSON text; ``bytes`` (UTF-8) is accepted and saves a copy.
JSONDumps = Callable[[Any], str | bytes]
#: Turns JSON text into a value; raises :class:`ValueError` on invalid input.
JSONLoads = Callable[[str], Any]


# One encoder for every message: json.dumps() with non-default options builds a new
# JSONEncoder per call.
_stdlib_dumps: Callable[[Any], str] = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False
).encode


try:  # pragma: no cover - which branch runs depends on the installed extras
    import orjson
except ImportError:  # pragma: no cover
    default_dumps: JSONDumps = _stdlib_dumps
    default_loads: JSONLoads = json.loads
else:  # pragma: no cover
    default_dumps = orjson.dumps
    default_loads = orjson.loads
