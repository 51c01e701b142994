"""The how-to's samples, served and connected to: each token source does what the page says."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from aiohttp import WSMsgType, WSServerHandshakeError

from tests.test_docs import DOCS, directives

PAGE = DOCS / "howto" / "authentication.rst"


def sample(marker: str) -> dict[str, Any]:
    """Run the page's one Python sample that contains ``marker``; return its namespace."""
    blocks = [
        block for block in directives(PAGE) if block.argument == "python" and marker in block.body
    ]
    assert len(blocks) == 1, [block.where for block in blocks]
    namespace: dict[str, Any] = {"__name__": "docs_sample"}
    exec(compile(blocks[0].body, blocks[0].where, "exec"), namespace)
    return namespace


async def refused_status(client: Any, path: str, **handshake: Any) -> int:
    with pytest.raises(WSServerHandshakeError) as refusal:
        await client.ws_connect(path, **handshake)
    return refusal.value.status


async def test_bearer_sample(aiohttp_client: Any) -> None:
    """The header sample: a signed JWT connects; none, or a forged one, gets 401."""
    namespace = sample("TokenAuth(verify, BearerToken())")
    client = await aiohttp_client(namespace["app"])
    claims = {"sub": "alice", "exp": time.time() + 60}
    token = jwt.encode(claims, namespace["SIGNING_KEY"], algorithm="HS256")
    async with client.ws_connect("/feed", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert await ws.receive_str() == "hello alice"
    assert await refused_status(client, "/feed") == 401
    forged = jwt.encode(claims, "x" * 32, algorithm="HS256")
    assert (
        await refused_status(client, "/feed", headers={"Authorization": f"Bearer {forged}"}) == 401
    )


async def test_cookie_sample(aiohttp_client: Any) -> None:
    """The cookie sample: the login's signed cookie connects; a tampered one gets 401."""
    namespace = sample('CookieToken("session")')
    client = await aiohttp_client(namespace["app"])
    login = await client.post("/login", data={"user": "alice"})
    cookie = login.cookies["session"]
    assert (cookie["httponly"], cookie["secure"], cookie["samesite"]) == (True, True, "Lax")
    value = cookie.value
    async with client.ws_connect("/notifications", headers={"Cookie": f"session={value}"}) as ws:
        assert await ws.receive_str() == "hello alice"
    tampered = "mallory" + value[value.index(".") :]
    assert (
        await refused_status(client, "/notifications", headers={"Cookie": f"session={tampered}"})
        == 401
    )


async def test_query_sample(aiohttp_client: Any) -> None:
    """The query sample: ?access_token=<key> connects; a wrong key gets 401."""
    client = await aiohttp_client(sample('QueryToken("access_token")')["app"])
    async with client.ws_connect("/feed?access_token=k-7f3a9c") as ws:
        assert await ws.receive_str() == "hello dashboard"
    assert await refused_status(client, "/feed?access_token=k-7f3a9d") == 401


async def test_subprotocol_sample(aiohttp_client: Any) -> None:
    """The subprotocol sample: the real subprotocol is selected, the token is not."""
    client = await aiohttp_client(sample('SubprotocolToken("bearer.")')["app"])
    async with client.ws_connect("/feed", protocols=("feed.v1", "bearer.k-7f3a9c")) as ws:
        assert ws.protocol == "feed.v1"
        assert await ws.receive_str() == "hello dashboard, speaking feed.v1"
    assert await refused_status(client, "/feed", protocols=("feed.v1",)) == 401


async def test_group_permission_sample(aiohttp_client: Any) -> None:
    """The group sample: staff enter staff rooms, others get the error and 4403."""
    client = await aiohttp_client(sample("may_enter")["app"])
    async with client.ws_connect("/rooms/staff:ops", headers={"X-User": "root"}) as ws:
        await ws.send_json("hi")
        assert await ws.receive_json() == {"from": "root", "text": "hi"}
    async with client.ws_connect("/rooms/staff:ops", headers={"X-User": "bob"}) as ws:
        assert await ws.receive_json() == {"error": "you may not enter staff:ops"}
        closing = await ws.receive()
        assert (closing.type, closing.data) == (WSMsgType.CLOSE, 4403)
