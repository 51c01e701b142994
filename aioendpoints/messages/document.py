"""An AsyncAPI 3.0.0 document describing an application's WebSocket routes.

One channel per route (its address is the route's path, its parameters the path's
placeholders), the route's messages with JSON Schemas made by msgspec or pydantic from the
message classes, and two operations: what the client sends (``receive``, for the
application) and what the server sends (``send``). Routes of plain text, bytes or JSON
are described too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from .codecs import ERROR_TYPE, message_kind

__all__ = ["ASYNCAPI_VERSION", "asyncapi"]

#: The AsyncAPI version of the documents made here.
ASYNCAPI_VERSION = "3.0.0"

_DEFAULT_PLACEHOLDER = "[^{}/]+"
_PLAIN: dict[str, dict[str, Any]] = {
    "text": {"contentType": "text/plain", "payload": {"type": "string"}},
    "bytes": {
        "contentType": "application/octet-stream",
        "payload": {"type": "string", "format": "binary"},
    },
    "json": {"contentType": "application/json", "payload": {}},
}


def asyncapi(
    app: web.Application,
    *,
    title: str,
    version: str,
    description: str | None = None,
    servers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Describe ``app``'s WebSocket routes as an AsyncAPI 3.0.0 document (a ``dict``).

    ``title`` and ``version`` describe the API; ``servers`` is the document's ``servers``
    object as it is, such as ``{"local": {"host": "127.0.0.1:8080", "protocol": "ws"}}``.
    Routes of sub-applications (``app.add_subapp()``) are included, under their prefix.
    """
    builder = _Builder()
    for route in _routes(app):
        options = getattr(route.handler, "websocket_options", None)
        if route.method == "GET" and options is not None:
            builder.add_route(route, getattr(route.handler, "websocket_view", None), options)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": info,
        "defaultContentType": "application/json",
    }
    if servers:
        document["servers"] = {name: dict(server) for name, server in servers.items()}
    document["channels"] = builder.channels
    document["operations"] = builder.operations
    document["components"] = builder.components()
    return document


def _routes(app: web.Application) -> Iterable[web.AbstractRoute]:
    """The routes of ``app`` and of its sub-applications (whose paths have their prefix)."""
    for resource in app.router.resources():
        subapp = resource.get_info().get("app")
        if isinstance(subapp, web.Application):
            yield from _routes(subapp)
        else:
            yield from resource


class _Builder:
    """Collects channels, operations, messages and schemas, route by route."""

    def __init__(self) -> None:
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.schemas: dict[str, Any] = {}
        self._classes: dict[type, str] = {}

    def add_route(self, route: web.AbstractRoute, view: object, options: Any) -> None:
        resource = route.resource
        assert resource is not None
        address = resource.canonical
        channel_id = self._channel_id(resource.name or address)
        channel: dict[str, Any] = {"address": address, "messages": {}}
        summary = _first_line(getattr(view, "__doc__", None))
        if summary:
            channel["description"] = summary
        parameters = _parameters(resource)
        if parameters:
            channel["parameters"] = parameters
        codec = options.codec
        if codec is not None:
            received = [self._typed_message(cls) for cls in codec.receives]
            if not received:
                received = [self._plain_message("json")]
            sent = [self._typed_message(cls) for cls in codec.sends]
            sent.append(self._error_message(codec.request_id))
        else:
            raw = isinstance(view, type) and getattr(view, "encoding", "") is None
            kinds = ["text", "bytes"] if raw else [options.receive_type]
            received = [self._plain_message(kind) for kind in kinds]
            sent = [self._plain_message(options.send_type)]
        for name in (*received, *sent):
            channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        self.channels[channel_id] = channel
        for action, names, verb in (
            ("receive", received, "sends"),
            ("send", sent, "receives"),
        ):
            self.operations[f"{channel_id}_{action}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"What the client {verb} on {address}",
                "messages": [
                    {"$ref": f"#/channels/{channel_id}/messages/{name}"}
                    for name in dict.fromkeys(names)
                ],
            }

    def _channel_id(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "root"
        channel_id, number = base, 2
        while channel_id in self.channels:
            channel_id, number = f"{base}_{number}", number + 1
        return channel_id

    def _typed_message(self, cls: type) -> str:
        name = self._classes.get(cls)
        if name is not None:
            return name
        name = self._classes[cls] = cls.__name__
        message: dict[str, Any] = {
            "name": name,
            "title": name,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        summary = _first_line(cls.__doc__)
        if summary and not summary.startswith(("Base class", "A base class")):
            message["summary"] = summary
        self.messages[name] = message
        return name

    def _plain_message(self, kind: str) -> str:
        name = kind
        self.messages[name] = {"name": name, "title": f"{kind} message", **_PLAIN[kind]}
        return name

    def _error_message(self, request_id: str) -> str:
        name = "error" if request_id == "id" else f"error_{request_id}"
        self.schemas[name] = error_schema(request_id)
        self.messages[name] = {
            "name": name,
            "title": "Error",
            "summary": "An invalid message, a rejected or a failed request",
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        return name

    def components(self) -> dict[str, Any]:
        by_kind: dict[str, list[type]] = {}
        for cls in self._classes:
            by_kind.setdefault(message_kind(cls) or "", []).append(cls)
        if "msgspec" in by_kind:
            self.schemas.update(_msgspec_schemas(by_kind["msgspec"]))
        if "pydantic" in by_kind:
            self.schemas.update(_pydantic_schemas(by_kind["pydantic"]))
        for name, message in self.messages.items():
            payload = message["payload"]
            if "$ref" in payload:
                payload = self.schemas[payload["$ref"].rsplit("/", 1)[1]]
            message["examples"] = [{"name": name, "payload": example(payload, self.schemas)}]
        return {"messages": self.messages, "schemas": self.schemas}


def error_schema(request_id: str = "id") -> dict[str, Any]:
    """The JSON Schema of the error message that invalid messages and failed requests get."""
    return {
        "title": "Error",
        "type": "object",
        "description": (
            "The last message was invalid, or the request failed. The connection stays open."
        ),
        "properties": {
            "type": {"const": ERROR_TYPE},
            "error": {"type": "string", "description": "What was wrong."},
            "path": {
                "type": ["string", "null"],
                "description": "Where: the invalid field's path, such as $.text, or null.",
            },
            request_id: {
                "type": ["string", "integer"],
                "description": "The id of the request, when the message carried one.",
            },
        },
        "required": ["type", "error", "path"],
    }


def _msgspec_schemas(classes: list[type]) -> dict[str, Any]:
    import msgspec

    _, schemas = msgspec.json.schema_components(classes, ref_template="#/components/schemas/{name}")
    return schemas


def _pydantic_schemas(classes: list[type]) -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema

    _, schema = models_json_schema(
        [(cls, "serialization") for cls in classes],
        ref_template="#/components/schemas/{model}",
    )
    return dict(schema.get("$defs", {}))


def _parameters(resource: web.AbstractResource) -> dict[str, Any]:
    info = resource.get_info()
    pattern = info.get("pattern")
    if pattern is None:
        return {}
    parameters: dict[str, Any] = {}
    for name, regex in _groups(pattern.pattern):
        description = f"The route parameter {name!r}"
        if regex != _DEFAULT_PLACEHOLDER:
            description += f", matching the regular expression {regex}"
        parameters[name] = {"description": description + "."}
    return parameters


def _groups(pattern: str) -> Iterable[tuple[str, str]]:
    """The named groups of a route's regular expression, and what each matches."""
    for found in re.finditer(r"\(\?P<(\w+)>", pattern):
        depth, index = 1, found.end()
        while depth and index < len(pattern):
            char = pattern[index]
            if char == "\\":
                index += 1
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            index += 1
        yield found.group(1), pattern[found.end() : index - 1]


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


def example(schema: Mapping[str, Any], schemas: Mapping[str, Any], depth: int = 0) -> Any:
    """A value that fits ``schema``: its own examples and defaults first, else made up."""
    if depth > 8:
        return None
    if "$ref" in schema:
        return example(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, depth + 1)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example(schema[key][0], schemas, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        properties = schema.get("properties", {})
        required = schema.get("required", list(properties))
        return {
            name: example(sub, schemas, depth + 1)
            for name, sub in properties.items()
            if name in required
        }
    if kind == "array":
        return [example(schema.get("items", {}), schemas, depth + 1)]
    made_up = {"string": "text", "integer": 0, "number": 0.0, "boolean": True, "null": None}
    if kind == "string" and schema.get("format") == "binary":
        return "(bytes)"
    return made_up.get(kind, "…") if isinstance(kind, str) else {}
