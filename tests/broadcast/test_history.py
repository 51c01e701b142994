"""History, positions and recovery on join, the same suite over ``memory://`` and Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

import aioendpoints
from aioendpoints import History, Position, Recovery, WebSocket, WebSocketRoutes

from .chat_app import make_app
from .conftest import HISTORY, RECEIVE_TIMEOUT, HistoryChat, receive_json

# Positions and settings ------------------------------------------------------------------


def test_position_text_round_trips() -> None:
    """``Position.parse(str(position))`` gives the same position back."""
    position = Position("3f2a-b_9", 41)
    assert str(position) == "3f2a-b_9:41"
    assert Position.parse(str(position)) == position


@pytest.mark.parametrize(
    "text", ["", "abc", ":3", "abc:", "abc:-1", "abc:1.5", "a b:1", "abc:x", "abc:٣", "é:1"]
)
def test_malformed_position_text_raises_value_error(text: str) -> None:
    """Text that is not ``<epoch>:<offset>`` raises ValueError."""
    with pytest.raises(ValueError, match="position"):
        Position.parse(text)


@pytest.mark.parametrize(
    ("size", "ttl"), [(0, 10), (-1, 10), (1.5, 10), (10, 0), (10, -1), (True, 1)]
)
def test_history_refuses_bad_settings(size: Any, ttl: Any) -> None:
    """A non-positive or non-integer size, or a non-positive ttl, is refused at once."""
    with pytest.raises(ValueError, match="History"):
        History(size, ttl)


# Delivery and recovery -------------------------------------------------------------------


async def test_members_of_history_groups_get_positioned_frames(
    history_chat: HistoryChat, group: str
) -> None:
    """Each message arrives as {"group", "epoch", "offset", "data"}, offsets counting by 1."""
    member = await history_chat.connect()
    joined = await history_chat.join(member, group)
    assert joined["recovered"] is False
    start = Position.parse(joined["position"])
    for n in range(3):
        await history_chat.publish(group, {"n": n})
    for n in range(3):
        frame = await receive_json(member)
        assert frame == {
            "group": group,
            "epoch": start.epoch,
            "offset": start.offset + n + 1,
            "data": {"n": n},
        }


async def test_rejoin_since_a_position_replays_what_was_missed_then_live(
    history_chat: HistoryChat, group: str
) -> None:
    """A member back with its last position gets every missed message once, then live ones."""
    member = await history_chat.connect()
    await history_chat.join(member, group)
    await history_chat.publish(group, "first")
    last = await receive_json(member)
    await member.close()
    for n in range(5):
        await history_chat.publish(group, {"missed": n})
    member = await history_chat.connect()
    joined = await history_chat.join(member, group, since=f"{last['epoch']}:{last['offset']}")
    assert joined["recovered"] is True
    assert joined["position"] == f"{last['epoch']}:{last['offset'] + 5}"
    replayed = joined["replayed"]
    assert [frame["data"] for frame in replayed] == [{"missed": n} for n in range(5)]
    assert [frame["offset"] for frame in replayed] == [last["offset"] + n for n in range(1, 6)]
    await history_chat.publish(group, "live")
    frame = await receive_json(member)
    assert (frame["offset"], frame["data"]) == (last["offset"] + 6, "live")


async def test_rejoin_at_the_latest_position_is_recovered_with_nothing_to_replay(
    history_chat: HistoryChat, group: str
) -> None:
    """Nothing was missed: recovered, and the next frame is the next live message."""
    member = await history_chat.connect()
    joined = await history_chat.join(member, group)
    await member.close()
    member = await history_chat.connect()
    again = await history_chat.join(member, group, since=joined["position"])
    assert again == {**joined, "recovered": True}
    await history_chat.publish(group, "next")
    assert (await receive_json(member))["data"] == "next"


async def test_join_without_since_gets_live_messages_only(
    history_chat: HistoryChat, group: str
) -> None:
    """Without ``since`` nothing is replayed; recovered is False; the position is the latest."""
    await history_chat.publish(group, "old")
    member = await history_chat.connect()
    joined = await history_chat.join(member, group)
    assert joined["recovered"] is False
    assert Position.parse(joined["position"]).offset >= 1
    await history_chat.publish(group, "new")
    frame = await receive_json(member)
    assert frame["data"] == "new"
    assert frame["offset"] == Position.parse(joined["position"]).offset + 1


async def test_since_from_another_epoch_is_not_recovered(
    history_chat: HistoryChat, group: str
) -> None:
    """A position from a lost history gives recovered=False and no replay."""
    await history_chat.publish(group, "kept")
    member = await history_chat.connect()
    joined = await history_chat.join(member, group, since="someotherepoch:1")
    assert joined["recovered"] is False
    await history_chat.publish(group, "live")
    assert (await receive_json(member))["data"] == "live"


async def test_since_beyond_the_latest_offset_is_not_recovered(
    history_chat: HistoryChat, group: str
) -> None:
    """A position ahead of the group (a bogus client) is not recovered."""
    member = await history_chat.connect()
    joined = await history_chat.join(member, group)
    epoch = Position.parse(joined["position"]).epoch
    other = await history_chat.connect()
    assert (await history_chat.join(other, group, since=f"{epoch}:999"))["recovered"] is False


async def test_since_older_than_the_kept_messages_is_not_recovered(
    broadcast_url: str, aiohttp_client: Any, group: str
) -> None:
    """When messages after ``since`` were trimmed away, recovered is False, nothing replayed."""
    client = await aiohttp_client(make_app(broadcast_url, History(size=3, ttl=600)))
    chat = HistoryChat(client, client)
    member = await chat.connect()
    start = (await chat.join(member, group))["position"]
    await member.close()
    for n in range(5):
        await chat.publish(group, {"n": n})
    member = await chat.connect()
    joined = await chat.join(member, group, since=start)
    assert joined["recovered"] is False
    await chat.publish(group, "live")
    assert (await receive_json(member))["data"] == "live"
    kept = await aioendpoints.history(client.app, group)
    assert [message for _, message in kept] == [{"n": 3}, {"n": 4}, "live"]


async def test_expired_messages_are_not_recovered(
    broadcast_url: str, aiohttp_client: Any, group: str
) -> None:
    """Messages older than ``ttl`` are gone from the history: no recovery over them."""
    client = await aiohttp_client(make_app(broadcast_url, History(size=100, ttl=0.2)))
    chat = HistoryChat(client, client)
    member = await chat.connect()
    start = (await chat.join(member, group))["position"]
    await member.close()
    await chat.publish(group, "expires")
    await asyncio.sleep(0.5)
    assert await aioendpoints.history(client.app, group) == []
    member = await chat.connect()
    assert (await chat.join(member, group, since=start))["recovered"] is False


async def test_history_returns_kept_messages_with_their_positions(
    history_chat: HistoryChat, group: str
) -> None:
    """``aioendpoints.history()`` lists (Position, message) pairs, oldest first, after since."""
    for n in range(4):
        await history_chat.publish(group, {"n": n})
    kept = await aioendpoints.history(history_chat.members.app, group)
    assert [message for _, message in kept] == [{"n": n} for n in range(4)]
    offsets = [position.offset for position, _ in kept]
    assert offsets == list(range(offsets[0], offsets[0] + 4))
    after = await aioendpoints.history(history_chat.members.app, group, since=kept[1][0])
    assert after == kept[2:]
    assert (
        await aioendpoints.history(history_chat.members.app, group, since=str(kept[1][0]))
        == kept[2:]
    )


async def test_publish_returns_the_position(history_chat: HistoryChat, group: str) -> None:
    """``publish()`` to a group with history returns the message's position."""
    first = await aioendpoints.publish(history_chat.publisher.app, group, "a")
    second = await aioendpoints.publish(history_chat.publisher.app, group, "b")
    assert first is not None
    assert second is not None
    assert (second.epoch, second.offset) == (first.epoch, first.offset + 1)


async def test_exclude_skips_the_publisher_in_history_groups(
    history_chat: HistoryChat, group: str
) -> None:
    """``exclude=ws`` works for groups with history too."""
    publisher = await history_chat.connect()
    other = await history_chat.connect()
    await history_chat.join(publisher, group)
    await history_chat.join(other, group)
    await publisher.send_json({"publish": "one", "group": group, "exclude_self": True})
    await publisher.send_json({"publish": "two", "group": group})
    assert [(await receive_json(other))["data"] for _ in range(2)] == ["one", "two"]
    assert (await receive_json(publisher))["data"] == "two"


async def test_many_groups_per_connection(history_chat: HistoryChat, group: str) -> None:
    """One connection in 50 history groups gets each group's messages with its own offsets."""
    member = await history_chat.connect()
    groups = [f"{group}:{n}" for n in range(50)]
    positions = {name: (await history_chat.join(member, name))["position"] for name in groups}
    await member.close()
    for name in groups:
        await history_chat.publish(name, name)
    member = await history_chat.connect()
    for name in groups:
        joined = await history_chat.join(member, name, since=positions[name])
        assert joined["recovered"] is True
        assert [(frame["group"], frame["data"]) for frame in joined["replayed"]] == [(name, name)]


# Settings per group, and what history groups refuse ---------------------------------------


async def test_history_settings_per_group(aiohttp_client: Any, group: str) -> None:
    """A function gives some groups history and others none; those send plain messages."""
    routes = WebSocketRoutes()
    recoveries: list[Recovery | None] = []

    @routes.websocket_route("/ws")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        recoveries.append(await ws.join("kept:" + group))
        recoveries.append(await ws.join("plain:" + group))
        await ws.send("ready")
        await ws.receive()

    app = web.Application()
    aioendpoints.setup(app, history=lambda name: HISTORY if name.startswith("kept:") else None)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws")
    assert await ws.receive_str(timeout=RECEIVE_TIMEOUT) == "ready"
    assert isinstance(recoveries[0], Recovery)
    assert recoveries[1] is None
    await aioendpoints.publish(app, "plain:" + group, {"plain": True})
    assert await receive_json(ws) == {"plain": True}
    await aioendpoints.publish(app, "kept:" + group, {"kept": True})
    assert (await receive_json(ws))["data"] == {"kept": True}
    with pytest.raises(ValueError, match="keeps no history"):
        await aioendpoints.history(app, "plain:" + group)
    await ws.close()


async def test_bytes_cannot_be_published_to_a_history_group(aiohttp_client: Any) -> None:
    """Bytes have no JSON form: publishing them to a group with history raises TypeError."""
    app = web.Application()
    aioendpoints.setup(app, history=HISTORY)
    await aiohttp_client(app)
    with pytest.raises(TypeError, match="base64"):
        await aioendpoints.publish(app, "room", b"\x00\x01")
    assert await aioendpoints.history(app, "room") == []


async def test_since_on_a_group_without_history_raises(aiohttp_client: Any) -> None:
    """Asking to recover a group that keeps nothing is a mistake, said plainly."""
    routes = WebSocketRoutes()
    errors: list[BaseException] = []

    @routes.websocket_route("/ws")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.join("room", since="abc:1")
        except ValueError as error:
            errors.append(error)
        await ws.close()

    app = web.Application()
    aioendpoints.setup(app)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws")
    await ws.receive(timeout=RECEIVE_TIMEOUT)
    assert "keeps no history" in str(errors[0])


def test_history_given_twice_is_refused() -> None:
    """History on both setup() and the Broadcast is ambiguous: refused."""
    with pytest.raises(ValueError, match="not both"):
        aioendpoints.setup(
            web.Application(),
            broadcast=aioendpoints.Broadcast(history=HISTORY),
            history=HISTORY,
        )
