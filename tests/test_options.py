"""Route options: one flat, frozen object, checked at registration, with did-you-mean errors."""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

import pytest

from aioendpoints import RateLimit, WebSocket, WebSocketEndpoint, WebSocketOptions
from aioendpoints.options import _CHECKS, RouteOptions
from aioendpoints.origins import OriginPolicy


async def view(ws: WebSocket) -> None:
    await ws.accept()


class Room(LookupError):
    pass


def test_every_documented_option_is_checked() -> None:
    """The keyword options users can pass and the options the checker knows are the same."""
    fields = {field.name for field in dataclasses.fields(RouteOptions)}
    accepted = set(get_type_hints(WebSocketOptions))
    assert accepted == set(_CHECKS)
    # value_type resolves into receive_type and send_type, the typed-message options into
    # the route's codec.
    message_options = {"messages", "send_messages", "invalid_messages", "request_id"}
    resolved = accepted - {"value_type", "discriminator", *message_options} | {"codec"}
    assert resolved == fields


def test_options_are_flat_and_frozen() -> None:
    """Every setting is read off the options object directly, which cannot be changed."""
    options = RouteOptions.from_options(
        {
            "idle_timeout": 30,
            "rate_limit": (5, 10),
            "close_codes": {LookupError: (4004, "no such room")},
            "allowed_origins": ["https://example.com"],
            "max_connections": 3,
        }
    )
    assert options.idle_timeout == 30.0
    assert options.rate_limit == RateLimit(5.0, 10)
    assert options.close_for(Room()) == (4004, "no such room")
    assert isinstance(options.allowed_origins, OriginPolicy)
    assert options.counter() is not None
    assert not hasattr(options, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.idle_timeout = 1.0  # type: ignore[misc]


def test_misspelt_option_suggests_the_right_name() -> None:
    """An unknown option is a TypeError that names it and the option meant."""
    with pytest.raises(TypeError, match=r"'idle_timout' \(did you mean idle_timeout\?\)"):
        RouteOptions.from_options({"idle_timout": 5})


def test_unknown_option_without_a_near_name_is_named() -> None:
    """An option that resembles none is named, without a suggestion."""
    with pytest.raises(TypeError, match=r"option\(s\): 'zzz'$"):
        RouteOptions.from_options({"zzz": 5})


def test_encoding_on_a_route_suggests_value_type() -> None:
    """Starlette's ``encoding`` given as a route option points to ``value_type``."""
    with pytest.raises(TypeError, match=r"'encoding' \(did you mean value_type"):
        RouteOptions.from_options({"encoding": "json"})


def test_endpoint_encoding_is_the_default_value_type() -> None:
    """An endpoint's ``encoding`` is the route's value type unless an option says otherwise."""

    class Echo(WebSocketEndpoint):
        encoding = "json"

    options = RouteOptions.from_options({}, default_value_type=Echo.encoding)
    assert (options.receive_type, options.send_type) == ("json", "json")
    options = RouteOptions.from_options({"send_type": "text"}, default_value_type="json")
    assert (options.receive_type, options.send_type) == ("json", "text")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("close_timeout", None),
        ("max_connections_per_client", -2),
        ("allowed_origins", "https://example.com"),
        ("rate_limit", 5),
    ],
)
def test_bad_value_names_the_option(option: str, value: Any) -> None:
    """A bad value raises an error that names its option."""
    with pytest.raises((TypeError, ValueError), match=option):
        RouteOptions.from_options({option: value})
