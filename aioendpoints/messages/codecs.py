"""Codecs for typed messages: msgspec Structs or pydantic models, decoded in one pass.

A codec decodes a frame straight into its message class (msgspec's typed decoder, or
pydantic's ``validate_json``), encodes messages with their class, and builds the error
reply an invalid message gets. msgspec and pydantic are imported only when a route uses
their classes.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterable
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from ..serialization import default_loads

__all__ = [
    "ERROR_TYPE",
    "MsgspecCodec",
    "PydanticCodec",
    "codec_for",
    "message_classes",
    "message_kind",
    "typed_encoder",
]

#: The ``type`` of the error message an invalid message or a failed request gets.
ERROR_TYPE = "error"

Kind = Literal["msgspec", "pydantic"]

_MSGSPEC_PATH = re.compile(r" - at `(\$[^`]*)`$")


def message_kind(cls: object) -> Kind | None:
    """``"msgspec"`` for a Struct class, ``"pydantic"`` for a model class, else ``None``."""
    if not isinstance(cls, type):
        return None
    # A class of either library means the library is imported already: no import here.
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and issubclass(cls, msgspec.Struct):
        return "msgspec"
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        return "pydantic"
    return None


def message_classes(annotation: object, owner: str) -> tuple[type, ...]:
    """The message classes in ``annotation``: a class, a union or a tuple of classes.

    Raise :class:`TypeError` naming ``owner`` for anything else.
    """
    if isinstance(annotation, tuple | list):
        classes = tuple(annotation)
    elif get_origin(annotation) in (Union, UnionType):
        classes = get_args(annotation)
    else:
        classes = (annotation,)
    for cls in classes:
        if message_kind(cls) is None:
            raise TypeError(
                f"{owner} must be a msgspec.Struct or pydantic.BaseModel class, or a union "
                f"of them, got {getattr(cls, '__qualname__', cls)!r}"
            )
    return tuple(dict.fromkeys(classes))


def _kind_of(classes: Iterable[type], owner: str) -> Kind:
    kinds = {message_kind(cls) for cls in classes}
    if len(kinds) > 1:
        raise TypeError(f"{owner} mixes msgspec Structs and pydantic models: use one of them")
    kind = kinds.pop() if kinds else None
    return kind or ("msgspec" if "msgspec" in sys.modules else "pydantic")


def codec_for(
    *,
    receives: object,
    sends: object,
    handler_sends: tuple[type, ...] = (),
    invalid_messages: str = "reply",
    request_id: str = "id",
    discriminator: str = "type",
) -> MsgspecCodec | PydanticCodec:
    """Check a route's typed-message options and build its codec."""
    receive_classes = () if receives is None else message_classes(receives, "messages")
    send_classes = () if sends is None else message_classes(sends, "send_messages")
    if invalid_messages not in ("reply", "close"):
        raise ValueError(f'invalid_messages must be "reply" or "close", got {invalid_messages!r}')
    for name, value in (("request_id", request_id), ("discriminator", discriminator)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a field name, got {value!r}")
    all_sends = tuple(dict.fromkeys((*send_classes, *handler_sends)))
    kind = _kind_of((*receive_classes, *all_sends), "a route's messages")
    codec_class = MsgspecCodec if kind == "msgspec" else PydanticCodec
    return codec_class(
        receives=receive_classes,
        sends=all_sends,
        close_invalid=invalid_messages == "close",
        request_id=request_id,
        discriminator=discriminator,
    )


class _Codec:
    """What both codecs share: the error replies."""

    def __init__(
        self,
        *,
        receives: tuple[type, ...],
        sends: tuple[type, ...],
        close_invalid: bool,
        request_id: str,
        discriminator: str,
    ) -> None:
        #: The message classes the client sends.
        self.receives = receives
        #: The message classes the server sends (declared, or returned by handlers).
        self.sends = sends
        #: Whether an invalid message closes the connection with 1007.
        self.close_invalid = close_invalid
        #: The field that carries a request's id.
        self.request_id = request_id
        #: The field that tells the message classes apart.
        self.discriminator = discriminator

    def error(self, text: str, request_id: Any, path: str | None = None) -> dict[str, Any]:
        """The error message: ``{"type": "error", "error": text, "path": path, "id": ...}``."""
        message: dict[str, Any] = {"type": ERROR_TYPE, "error": text, "path": path}
        if request_id is not None:
            message[self.request_id] = request_id
        return message

    def invalid(self, data: str | bytes, error: ValueError) -> tuple[Any, str]:
        """The error reply for an invalid message, and a one-line description of it."""
        text, path = self._describe(error)
        description = text if path is None else f"{text} at {path}"
        return self.error(text, self._request_id_in(data), path), description

    def _describe(self, error: ValueError) -> tuple[str, str | None]:
        raise NotImplementedError

    def _request_id_in(self, data: str | bytes) -> Any:
        """The request id of an invalid message, when it is a JSON object that has one."""
        try:
            value = default_loads(data)  # type: ignore[arg-type]
        except ValueError:
            return None
        request_id = value.get(self.request_id) if isinstance(value, dict) else None
        return request_id if isinstance(request_id, str | int) else None


class MsgspecCodec(_Codec):
    """Typed messages as msgspec Structs, told apart by their tag."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        import msgspec

        self._msgspec = msgspec
        encoder = msgspec.json.Encoder()
        self.encode: Callable[[Any], bytes] = encoder.encode
        if self.receives:
            decoder = msgspec_decoder(self.receives, "a route's messages")
            self.decode: Callable[[str | bytes], Any] = decoder.decode
        else:
            self.decode = msgspec.json.decode

    def reply(self, value: Any, request_id: Any) -> Any:
        """``value`` with the request's id added, as the reply to send."""
        if isinstance(value, dict):
            return {**value, self.request_id: request_id}
        msgspec = self._msgspec
        if isinstance(value, msgspec.Struct) and self.request_id in value.__struct_fields__:
            return msgspec.structs.replace(value, **{self.request_id: request_id})
        encoded_id = self.encode(request_id)
        return msgspec.Raw(_with_field(self.encode(value), self.request_id, encoded_id))

    def _describe(self, error: ValueError) -> tuple[str, str | None]:
        text = str(error)
        found = _MSGSPEC_PATH.search(text)
        if found is None:
            return text, None
        return text[: found.start()], found.group(1)


@functools.cache
def msgspec_decoder(classes: tuple[type, ...], owner: str) -> Any:
    """A msgspec JSON decoder for one class, or a tagged union of several."""
    import msgspec

    target: Any = classes[0] if len(classes) == 1 else Union[classes]  # noqa: UP007
    try:
        return msgspec.json.Decoder(target)
    except TypeError:
        names = ", ".join(cls.__name__ for cls in classes)
        raise TypeError(
            f"{owner} cannot tell {names} apart: give each Struct its own tag, as in "
            "class Say(msgspec.Struct, tag='say')"
        ) from None


class PydanticCodec(_Codec):
    """Typed messages as pydantic models, told apart by their discriminator field."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        import pydantic
        import pydantic_core

        self._to_json = pydantic_core.to_json
        self._validation_error = pydantic.ValidationError
        if self.receives:
            adapter = pydantic_adapter(self.receives, self.discriminator, "a route's messages")
            self.decode: Callable[[str | bytes], Any] = adapter.validate_json
        else:
            self.decode = default_loads  # type: ignore[assignment]

    def encode(self, value: Any) -> bytes:
        """Encode a model, or any value pydantic can serialise, as JSON."""
        if type(value) is _Encoded:
            return value.data
        return self._to_json(value)

    def reply(self, value: Any, request_id: Any) -> Any:
        """``value`` with the request's id added, as the reply to send."""
        if isinstance(value, dict):
            return {**value, self.request_id: request_id}
        if self.request_id in getattr(type(value), "model_fields", {}):
            return value.model_copy(update={self.request_id: request_id})
        return _Encoded(_with_field(self.encode(value), self.request_id, self._to_json(request_id)))

    def _describe(self, error: ValueError) -> tuple[str, str | None]:
        if not isinstance(error, self._validation_error):
            return str(error), None
        problems = error.errors(include_url=False)
        first = problems[0]
        location = list(first["loc"])
        if len(self.receives) > 1 and location and isinstance(location[0], str):
            location = location[1:]  # the union member's tag, which is not in the message
        path = "$" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in location
        )
        text = first["msg"]
        if first["type"] == "json_invalid":
            path = ""
        elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = f"$.{self.discriminator}"
        if len(problems) > 1:
            text += f" (and {len(problems) - 1} more)"
        return text, path or None


@functools.cache
def pydantic_adapter(classes: tuple[type, ...], discriminator: str, owner: str) -> Any:
    """A pydantic TypeAdapter for one model, or a union told apart by ``discriminator``."""
    from typing import Annotated

    import pydantic

    if len(classes) == 1:
        return pydantic.TypeAdapter(classes[0])
    union: Any = Union[classes]  # noqa: UP007
    try:
        return pydantic.TypeAdapter(Annotated[union, pydantic.Field(discriminator=discriminator)])
    except pydantic.PydanticUserError as error:
        names = ", ".join(cls.__name__ for cls in classes)
        raise TypeError(
            f"{owner} cannot tell {names} apart: give each model a Literal field "
            f"{discriminator!r}, as in {discriminator}: Literal['say'] = 'say' ({error})"
        ) from None


class _Encoded:
    """JSON encoded already, sent as it is."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _with_field(encoded: bytes, name: str, value: bytes) -> bytes:
    """The JSON object ``encoded`` with one more field in front."""
    if not encoded.startswith(b"{"):
        raise TypeError(f"a reply to a request must encode as a JSON object, got {encoded[:40]!r}")
    field = b'{"' + name.encode() + b'":' + value
    return field + (b"}" if encoded == b"{}" else b"," + encoded[1:])


def typed_encoder(cls: type) -> Callable[[Any], bytes] | None:
    """The JSON encoder for instances of a message class, or ``None`` for other classes."""
    kind = message_kind(cls)
    if kind == "msgspec":
        import msgspec

        return msgspec.json.encode
    if kind == "pydantic":
        import pydantic_core

        return pydantic_core.to_json
    return None


def decoder_for(message_class: object) -> Callable[[str | bytes], Any]:
    """A function that decodes JSON into ``message_class`` (or a union or tuple of classes)."""
    classes = message_classes(message_class, "the message class")
    if _kind_of(classes, "the message classes") == "msgspec":
        return msgspec_decoder(classes, "the message classes").decode  # type: ignore[no-any-return]
    return pydantic_adapter(classes, "type", "the message classes").validate_json  # type: ignore[no-any-return]
