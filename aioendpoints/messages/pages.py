"""Serving an application's AsyncAPI document, and a readable HTML page of it (no CDN).

:func:`aioendpoints.setup` with ``asyncapi="/asyncapi.json"`` calls :func:`install`: the
document at that path, the page next to it (``/asyncapi.html``). Both are made on the first
request, when every route is in place, and kept.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .document import asyncapi

__all__ = ["install", "page_path", "render_page"]


def page_path(document_path: str) -> str:
    """Where the HTML page goes: the document's path with ``.html`` for ``.json``."""
    base = document_path.removesuffix(".json")
    return f"{base}.html"


def install(
    app: web.Application,
    path: str,
    *,
    title: str,
    version: str,
    description: str | None = None,
) -> None:
    """Serve ``app``'s AsyncAPI document at ``path`` and its HTML page at :func:`page_path`."""
    if not path.startswith("/"):
        raise ValueError(f"asyncapi must be a path starting with '/', got {path!r}")

    made: dict[str, Any] = {}

    def document(request: web.Request) -> dict[str, Any]:
        if not made:
            made.update(
                asyncapi(request.app, title=title, version=version, description=description)
            )
        return made

    async def serve_document(request: web.Request) -> web.Response:
        return web.json_response(document(request))

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(
            text=render_page(document(request), document_url=path), content_type="text/html"
        )

    app.router.add_get(path, serve_document, name="aioendpoints-asyncapi")
    app.router.add_get(page_path(path), serve_page, name="aioendpoints-asyncapi-page")


_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d2129; }
h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #ccd; padding-bottom: .2rem; }
code, pre { font: 14px/1.4 ui-monospace, monospace; }
pre { background: #f4f5f8; padding: .6rem .8rem; overflow-x: auto; border-radius: 4px; }
table { border-collapse: collapse; margin: .4rem 0 1rem; }
th, td { text-align: left; padding: .2rem .8rem .2rem 0; vertical-align: top; }
.direction { font-size: .8rem; text-transform: uppercase; letter-spacing: .05em;
             color: #555; }
.message { margin-left: 1rem; }
"""


def render_page(document: Mapping[str, Any], *, document_url: str = "") -> str:
    """An HTML page of an AsyncAPI document: channels, messages, their fields and examples."""
    info = document["info"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(info['title'])} {_e(info['version'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(info['title'])}</h1>",
        f"<p>Version {_e(info['version'])} · AsyncAPI {_e(document['asyncapi'])}"
        + (f' · <a href="{_e(document_url)}">the document</a>' if document_url else "")
        + "</p>",
    ]
    if info.get("description"):
        parts.append(f"<p>{_e(info['description'])}</p>")
    components = document.get("components", {})
    messages = components.get("messages", {})
    schemas = components.get("schemas", {})
    operations = document.get("operations", {})
    for channel_id, channel in document.get("channels", {}).items():
        parts.append(f'<h2 id="{_e(channel_id)}"><code>{_e(channel["address"])}</code></h2>')
        if channel.get("description"):
            parts.append(f"<p>{_e(channel['description'])}</p>")
        parameters = channel.get("parameters", {})
        if parameters:
            parts.append("<table><tr><th>Parameter</th><th>Description</th></tr>")
            for name, parameter in parameters.items():
                parts.append(
                    f"<tr><td><code>{_e(name)}</code></td>"
                    f"<td>{_e(parameter.get('description', ''))}</td></tr>"
                )
            parts.append("</table>")
        for operation in operations.values():
            if operation["channel"]["$ref"] != f"#/channels/{channel_id}":
                continue
            heading = "Client sends" if operation["action"] == "receive" else "Server sends"
            parts.append(f'<p class="direction">{heading}</p>')
            for reference in operation["messages"]:
                name = reference["$ref"].rsplit("/", 1)[1]
                message = messages[channel["messages"][name]["$ref"].rsplit("/", 1)[1]]
                parts.append(_message(message, schemas))
    parts.append("</body></html>")
    return "\n".join(parts)


def _message(message: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    parts = [
        '<div class="message">',
        f"<h3>{_e(message.get('title', message['name']))} "
        f"<small><code>{_e(message.get('contentType', ''))}</code></small></h3>",
    ]
    if message.get("summary"):
        parts.append(f"<p>{_e(message['summary'])}</p>")
    payload = _resolve(message.get("payload", {}), schemas)
    properties = payload.get("properties", {})
    if properties:
        required = set(payload.get("required", ()))
        parts.append("<table><tr><th>Field</th><th>Type</th><th></th><th>Description</th></tr>")
        for name, field in properties.items():
            parts.append(
                f"<tr><td><code>{_e(name)}</code></td><td>{_e(_type_name(field, schemas))}</td>"
                f"<td>{'required' if name in required else 'optional'}</td>"
                f"<td>{_e(field.get('description', ''))}</td></tr>"
            )
        parts.append("</table>")
    elif payload:
        parts.append(f"<p>Payload: {_e(_type_name(payload, schemas))}</p>")
    for example in message.get("examples", ()):
        shown = json.dumps(example.get("payload"), indent=2, ensure_ascii=False)
        parts.append(f"<pre>{_e(shown)}</pre>")
    parts.append("</div>")
    return "\n".join(parts)


def _resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    if "$ref" in schema:
        return schemas.get(schema["$ref"].rsplit("/", 1)[1], {})  # type: ignore[no-any-return]
    return schema


def _type_name(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    """A short human name for a field's schema: ``string``, ``list of Point``, ``"say"``..."""
    if "$ref" in schema:
        return str(schema["$ref"].rsplit("/", 1)[1])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type_name(option, schemas) for option in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array":
        return f"list of {_type_name(schema.get('items', {}), schemas)}"
    if kind == "string" and schema.get("format"):
        return f"string ({schema['format']})"
    return str(kind) if kind else "any JSON value"


def _e(value: object) -> str:
    return html.escape(str(value))
