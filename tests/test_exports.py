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


def test_root_exports_every_public_module_name() -> None:
    """Every name in a module's __all__ is re-exported by the package, and nothing else."""
    from_modules: set[str] = set()
    for module_info in pkgutil.walk_packages(aioendpoints.__path__, "aioendpoints."):
        module = importlib.import_module(module_info.name)
        if module_info.name.count(".") == 1 and module_info.name != "aioendpoints.testing":
            from_modules.update(getattr(module, "__all__", ()))
    internal = {
        "Handler", "View", "check_view", "RouteOptions", "ValueType", "check_value_type",
        "JSONDumps", "JSONLoads", "default_dumps", "default_loads", "ParamConverters",
        "check_path_params", "converters_for", "convert_params", "http_error",
        "is_sendable_close_code",
    }  # fmt: skip
    assert set(aioendpoints.__all__) == from_modules - internal
