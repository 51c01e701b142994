"""``python -m bench.typed_dispatch``: the cost of dispatching one JSON message by its type.

Five ways to take a text frame to the code that handles it, on the same messages (three
types, with an int, a str, a float list and a nested object among their fields):

* ``orjson-if``: ``orjson.loads`` and hand-written ``if data["type"] == ...`` dispatch,
  with the field checks such code needs to be as safe as the typed versions;
* ``orjson-if-on-receive``: the same in an ``on_receive`` coroutine, as a JSON endpoint
  runs it (to compare with ``aioendpoints``);
* ``orjson-if-unchecked``: the same without the checks (for reference: it lets a wrong
  field type through to the handler);
* ``msgspec``: msgspec's typed decoder into a tagged union, then a dict lookup by class;
* ``pydantic``: pydantic's ``validate_json`` on a discriminated union, then the lookup;
* ``aioendpoints``: what an endpoint with ``@on_message`` handlers runs per message: the
  route's codec, then ``Router.handle`` (a coroutine, driven here without an event loop).

Each figure is per message. Wall clock: the best of several timed runs (it wanders with the
machine's load). ``--callgrind``: instructions counted by callgrind, which do not: each
variant runs twice under valgrind, with a short and a long series, and the difference is
divided by the extra messages, so start-up and imports cancel out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import orjson
import pydantic

__all__ = ["VARIANTS", "main"]


# The messages, as msgspec Structs and as pydantic models ------------------------------------


class Point(msgspec.Struct):
    x: float
    y: float


class Say(msgspec.Struct, tag="say"):
    text: str
    room: str


class Move(msgspec.Struct, tag="move"):
    to: Point
    speed: int


class Draw(msgspec.Struct, tag="draw"):
    points: list[float]
    colour: str
    width: int


class PointModel(pydantic.BaseModel):
    x: float
    y: float


class SayModel(pydantic.BaseModel):
    type: Literal["say"] = "say"
    text: str
    room: str


class MoveModel(pydantic.BaseModel):
    type: Literal["move"] = "move"
    to: PointModel
    speed: int


class DrawModel(pydantic.BaseModel):
    type: Literal["draw"] = "draw"
    points: list[float]
    colour: str
    width: int


MESSAGES = [
    orjson.dumps({"type": "say", "text": "Hello, everyone in the room!", "room": "lobby"}),
    orjson.dumps({"type": "move", "to": {"x": 12.5, "y": -3.25}, "speed": 4}),
    orjson.dumps(
        {"type": "draw", "points": [0.0, 1.5, 3.0, 4.5, 6.0, 7.5], "colour": "red", "width": 2}
    ),
]

handled: list[Any] = []
_keep = handled.append


# The dispatchers --------------------------------------------------------------------------


def checked_dispatch(data: Any) -> None:
    """Hand-written dispatch on data["type"], with the checks it needs to be safe."""
    if not isinstance(data, dict):
        raise ValueError("expected an object")
    kind = data.get("type")
    if kind == "say":
        text, room = data.get("text"), data.get("room")
        if not isinstance(text, str) or not isinstance(room, str):
            raise ValueError("bad say")
        _keep(data)
    elif kind == "move":
        to, speed = data.get("to"), data.get("speed")
        if (
            not isinstance(to, dict)
            or not isinstance(to.get("x"), int | float)
            or not isinstance(to.get("y"), int | float)
            or not isinstance(speed, int)
        ):
            raise ValueError("bad move")
        _keep(data)
    elif kind == "draw":
        points, colour, width = data.get("points"), data.get("colour"), data.get("width")
        if (
            not isinstance(points, list)
            or not all(isinstance(point, int | float) for point in points)
            or not isinstance(colour, str)
            or not isinstance(width, int)
        ):
            raise ValueError("bad draw")
        _keep(data)
    else:
        raise ValueError(f"unknown type {kind!r}")


def orjson_if() -> Callable[[bytes], None]:
    """orjson, then if/elif on data["type"], with the checks hand-written code needs."""
    loads = orjson.loads

    def dispatch(raw: bytes) -> None:
        checked_dispatch(loads(raw))

    return dispatch


def orjson_if_on_receive() -> Callable[[bytes], None]:
    """orjson-if as a JSON endpoint runs it: in an on_receive coroutine (no event loop)."""
    loads = orjson.loads

    async def on_receive(websocket: object, data: Any) -> None:
        checked_dispatch(data)

    return _driving(lambda raw: on_receive(None, loads(raw)))


def _driving(start: Callable[[bytes], Coroutine[Any, Any, None]]) -> Callable[[bytes], None]:
    """Run the coroutine ``start(raw)`` to its end; it must not wait for anything."""

    def dispatch(raw: bytes) -> None:
        running = start(raw)
        try:
            running.send(None)
        except StopIteration:
            return
        raise RuntimeError("the handler waited for something")

    return dispatch


def orjson_if_unchecked() -> Callable[[bytes], None]:
    """orjson, then if/elif on data["type"], trusting the fields."""
    loads = orjson.loads

    def dispatch(raw: bytes) -> None:
        data = loads(raw)
        kind = data["type"]
        if kind == "say" or kind == "move" or kind == "draw":
            _keep(data)
        else:
            raise ValueError(f"unknown type {kind!r}")

    return dispatch


def by_class(decode: Callable[[bytes], Any], classes: tuple[type, ...]) -> Callable[[bytes], None]:
    handlers = dict.fromkeys(classes, _keep)

    def dispatch(raw: bytes) -> None:
        message = decode(raw)
        handlers[type(message)](message)

    return dispatch


def msgspec_typed() -> Callable[[bytes], None]:
    """msgspec's typed decoder into the tagged union, then the handler by class."""
    decoder = msgspec.json.Decoder(Say | Move | Draw)
    return by_class(decoder.decode, (Say, Move, Draw))


def pydantic_typed() -> Callable[[bytes], None]:
    """pydantic's validate_json on the discriminated union, then the handler by class."""
    models = (SayModel, MoveModel, DrawModel)
    union: Any = SayModel | MoveModel | DrawModel
    adapter = pydantic.TypeAdapter(Annotated[union, pydantic.Field(discriminator="type")])
    return by_class(adapter.validate_json, models)


def aioendpoints_typed() -> Callable[[bytes], None]:
    """The route's codec and Router.handle of an endpoint with @on_message handlers."""
    from aioendpoints import WebSocket, WebSocketEndpoint, on_message
    from aioendpoints.messages.codecs import codec_for

    class Endpoint(WebSocketEndpoint):
        @on_message
        async def say(self, ws: WebSocket, message: Say) -> None:
            _keep(message)

        @on_message
        async def move(self, ws: WebSocket, message: Move) -> None:
            _keep(message)

        @on_message
        async def draw(self, ws: WebSocket, message: Draw) -> None:
            _keep(message)

    router = Endpoint.message_router
    assert router is not None
    codec = codec_for(receives=router.receives, sends=None)

    class Connection:
        message_codec = codec

    decode, handle, endpoint, websocket = codec.decode, router.handle, object(), Connection()
    return _driving(lambda raw: handle(endpoint, websocket, decode(raw)))


VARIANTS: dict[str, Callable[[], Callable[[bytes], None]]] = {
    "orjson-if": orjson_if,
    "orjson-if-on-receive": orjson_if_on_receive,
    "orjson-if-unchecked": orjson_if_unchecked,
    "msgspec": msgspec_typed,
    "pydantic": pydantic_typed,
    "aioendpoints": aioendpoints_typed,
}


def run(variant: str, count: int) -> None:
    """Dispatch ``count`` messages (the three kinds in turn) with ``variant``."""
    dispatch = VARIANTS[variant]()
    messages = MESSAGES
    for index in range(count):
        dispatch(messages[index % 3])
    handled.clear()


def wall_clock(variant: str, count: int, repeats: int) -> float:
    """Nanoseconds per message: the best of ``repeats`` timed runs of ``count`` messages."""
    dispatch = VARIANTS[variant]()
    messages = MESSAGES
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for index in range(count):
            dispatch(messages[index % 3])
        best = min(best, (time.perf_counter_ns() - started) / count)
        handled.clear()
    return best


def instructions(variant: str, short: int, long: int) -> float:
    """Instructions per message, counted by callgrind: (long run - short run) / extra."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--callgrind needs valgrind (apt-get install valgrind)")
    totals = []
    with tempfile.TemporaryDirectory() as folder:
        for count in (short, long):
            out = Path(folder) / f"{variant}-{count}.out"
            command = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}"]
            command += [sys.executable, "-m", "bench.typed_dispatch", "--run", variant]
            command += ["--count", str(count)]
            subprocess.run(command, check=True, capture_output=True, timeout=1800)
            totals.append(_total(out))
    return (totals[1] - totals[0]) / (long - short)


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {dump}")


def main(argv: list[str] | None = None) -> None:
    """Print each variant's cost per message, and its ratio to ``orjson-if``."""
    parser = argparse.ArgumentParser(prog="python -m bench.typed_dispatch", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few messages: a smoke test")
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--run", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run(args.run, args.count)
        return
    if args.callgrind:
        short, long = (100, 600) if args.quick else (2000, 12000)
        figures = {name: instructions(name, short, long) for name in VARIANTS}
        unit = "instructions"
    else:
        count, repeats = (300, 2) if args.quick else (30000, 7)
        figures = {name: wall_clock(name, count, repeats) for name in VARIANTS}
        unit = "ns"
    base = figures["orjson-if"]
    print(f"{'variant':<22}{unit + ' per message':>26}{'vs orjson-if':>16}")
    for name, value in figures.items():
        print(f"{name:<22}{value:>26,.0f}{value / base:>15.2f}x")
    print(
        f"(Python {sys.version.split()[0]}, msgspec {msgspec.__version__}, "
        f"orjson {orjson.__version__}, pydantic {pydantic.VERSION}, {os.cpu_count()} CPUs)"
    )
    if args.json:
        args.json.write_text(json.dumps({"unit": unit, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
