"""The package root re-exports exactly the public names of its modules."""

from __future__ import annotations

import importlib
import pkgutil

import aioendpoints


def test_every_exported_name_exists_and_is_documented() -> None:
    """Each name in aioendpoints.__all__ exists and carries a docstring."""
    for name in aioendpoints.__all__:
        value = getattr(aioendpoints, name)
        if callable(value) and not isinstance(value, int):
            assert value.__doc__, f"{name} has no docstring"


def test_root_exports_only_public_module_names() -> None:
    """Each root export comes from a module's __all__, once, as the same object."""
    from_modules: dict[str, object] = {}
    for module_info in pkgutil.walk_packages(aioendpoints.__path__, "aioendpoints."):
        module = importlib.import_module(module_info.name)
        for name in getattr(module, "__all__", ()):
            from_modules.setdefault(name, getattr(module, name))
    assert len(set(aioendpoints.__all__)) == len(aioendpoints.__all__)
    for name in aioendpoints.__all__:
        assert name in from_modules, f"{name} is in no module's __all__"
        assert getattr(aioendpoints, name) is from_modules[name]
