"""Typed messages: msgspec Structs or pydantic models, dispatched by type, and described
in an AsyncAPI document.

Importing this package imports neither msgspec nor pydantic; a route that uses their
classes does.
"""

from .codecs import ERROR_TYPE
from .dispatch import MessageRejected, on_message
from .document import asyncapi

__all__ = ["ERROR_TYPE", "MessageRejected", "asyncapi", "on_message"]
