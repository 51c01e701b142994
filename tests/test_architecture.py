"""The core does not know its features: it imports none of them, not even for typing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aioendpoints

PACKAGE = Path(aioendpoints.__file__).parent
CORE = ("websocket.py", "endpoints.py", "handlers.py", "routing.py", "endings.py", "group_hub.py")
FEATURES = ("broadcast", "auth", "messages", "metrics", "tracing", "application")


def imported_modules(path: Path) -> set[str]:
    """The package modules that ``path`` imports, relative ones resolved (``.x`` -> ``x``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names.add(node.module)
            elif node.level == 1:
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("aioendpoints."):
                names.add(node.module.removeprefix("aioendpoints."))
        elif isinstance(node, ast.Import):
            names.update(
                alias.name.removeprefix("aioendpoints.")
                for alias in node.names
                if alias.name.startswith("aioendpoints.")
            )
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_feature(module: str) -> None:
    """websocket, endpoints, handlers and routing reach features through hooks only."""
    features = {
        name for name in imported_modules(PACKAGE / module) if name.split(".")[0] in FEATURES
    }
    assert not features, f"{module} imports feature module(s) {sorted(features)}"


def test_the_check_sees_imports() -> None:
    """The import reader finds the feature imports that application.py does make."""
    assert "broadcast.groups" in imported_modules(PACKAGE / "application.py")
