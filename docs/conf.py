"""Sphinx configuration for the aioendpoints documentation."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aioendpoints  # noqa: E402 - importable only once the path above is set

project = "aioendpoints"
author = "The aioendpoints authors"
copyright = "2026, the aioendpoints authors"
release = aioendpoints.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "alabaster"
html_theme_options = {
    "description": "Friendly WebSocket views and endpoints for aiohttp",
    "fixed_sidebar": True,
}
pygments_style = "sphinx"
