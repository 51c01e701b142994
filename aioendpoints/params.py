"""Route parameters: converting the URL's strings by the view's annotations."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from aiohttp import web

__all__ = ["ParamConverters", "check_path_params", "converters_for", "convert_params"]

Converter = Callable[[str], Any]
ParamConverters = Mapping[str, Converter | None]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# "{name}" and "{name:regex}" in aiohttp paths; a regex's own "{3}" starts with a digit.
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)")


def _to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _converter(name: str, annotation: Any) -> Converter | None:
    if annotation in (inspect.Parameter.empty, str, Any):
        return None
    if annotation is bool:
        return _to_bool
    if isinstance(annotation, type):
        return annotation  # int, float, uuid.UUID, ...: anything built from a string
    raise TypeError(
        f"route parameter {name!r} has an annotation that cannot convert a string: {annotation!r}"
    )


def converters_for(view: Callable[..., Any]) -> tuple[dict[str, Converter | None], bool]:
    """Check a function view's signature; map each keyword parameter to its converter.

    Returns the converters and whether the view takes ``**kwargs``.
    """
    parameters = list(inspect.signature(view).parameters.values())
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(
            f"WebSocket view {view.__qualname__}() must take the WebSocket as its first argument"
        )
    try:
        hints = typing.get_type_hints(view)
    except (NameError, TypeError):
        hints = {}
    converters: dict[str, Converter | None] = {}
    takes_any = False
    for parameter in parameters[1:]:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            takes_any = True
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        elif parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(
                f"WebSocket view {view.__qualname__}() takes route parameter "
                f"{parameter.name!r} positionally only; route parameters come by keyword"
            )
        else:
            annotation = hints.get(parameter.name, parameter.annotation)
            converters[parameter.name] = _converter(parameter.name, annotation)
    return converters, takes_any


def check_path_params(
    path: str, view: Callable[..., Any], converters: ParamConverters, takes_any: bool
) -> None:
    """Raise :class:`TypeError` if ``view`` cannot take the parameters of ``path``."""
    names = set(_PATH_PARAM.findall(path))
    if not takes_any:
        missing = sorted(names - set(converters))
        if missing:
            raise TypeError(
                f"WebSocket view {view.__qualname__}() does not take route parameter(s) "
                f"{', '.join(map(repr, missing))} of {path!r}"
            )
    signature = inspect.signature(view)
    required = {
        name for name in converters if signature.parameters[name].default is inspect.Parameter.empty
    }
    unfilled = sorted(required - names)
    if unfilled:
        raise TypeError(
            f"WebSocket view {view.__qualname__}() requires {', '.join(map(repr, unfilled))}, "
            f"which {path!r} does not provide"
        )


#: The parameters of a route without any, shared by its connections.
NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


def convert_params(
    match_info: Mapping[str, str], converters: Mapping[str, Converter | None], takes_any: bool
) -> Mapping[str, Any]:
    """Convert the matched route parameters; an invalid one is HTTP 400, before any upgrade."""
    if not match_info:
        return NO_PARAMS
    params: dict[str, Any] = {}
    for name, raw in match_info.items():
        if name in converters:
            converter = converters[name]
            if converter is None:
                params[name] = raw
                continue
            try:
                params[name] = converter(raw)
            except Exception:
                # Whatever the converter raises (decimal.InvalidOperation is no ValueError):
                # the client sent a bad URL, not a server fault.
                raise web.HTTPBadRequest(
                    text=f"Invalid route parameter {name!r}: {raw!r} is not a valid "
                    f"{getattr(converter, '__name__', 'value').removeprefix('_to_')}"
                ) from None
        elif takes_any:
            params[name] = raw
    return params
