"""The documentation's samples: every Python block runs, every included file exists.

Each ``.. code-block:: python`` in ``docs/**/*.rst`` is run on its own, in a fresh
namespace whose ``__name__`` is not ``"__main__"`` (so a block may guard a blocking
``web.run_app()`` call). The one exception is a block marked ``:class: other-framework``:
the "before" half of a migration example, which needs Bocadillo or Starlette. The
Sphinx build itself runs in tox's ``docs`` environment.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

import aioendpoints

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(page for page in DOCS.rglob("*.rst") if "_build" not in page.parts)

_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. (?P<name>code-block|literalinclude)::\s*(?P<arg>\S*)")
_OPTION = re.compile(r"^ *:(?P<name>[\w-]+):(?P<value>.*)$")
#: Marks a migration example's "before" half, written for another framework.
OTHER_FRAMEWORK = "other-framework"


@dataclass(frozen=True)
class Block:
    """One directive of an .rst page: where it is, its argument and its body."""

    page: Path
    line: int
    name: str
    argument: str
    options: dict[str, str]
    body: str

    @property
    def where(self) -> str:
        """``section/page.rst:line``, for test ids and failure messages."""
        return f"{self.page.relative_to(DOCS).as_posix()}:{self.line}"


def directives(page: Path) -> list[Block]:
    """The ``code-block`` and ``literalinclude`` directives of ``page``."""
    lines = page.read_text().splitlines()
    blocks = []
    for number, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        body: list[str] = []
        index = number + 1
        options = {}
        while index < len(lines) and (option := _OPTION.match(lines[index])):
            options[option["name"]] = option["value"].strip()
            index += 1
        for text in lines[index:]:
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            body.append(text)
        source = "\n".join(body)
        body_text = _dedent(source).strip("\n")
        blocks.append(Block(page, number + 1, match["name"], match["arg"], options, body_text))
    return blocks


def _dedent(source: str) -> str:
    lines = source.splitlines()
    margins = [len(text) - len(text.lstrip()) for text in lines if text.strip()]
    margin = min(margins, default=0)
    return "\n".join(text[margin:] for text in lines)


BLOCKS = [block for page in PAGES for block in directives(page)]
ALL_PYTHON_BLOCKS = [b for b in BLOCKS if b.name == "code-block" and b.argument == "python"]
PYTHON_BLOCKS = [b for b in ALL_PYTHON_BLOCKS if b.options.get("class") != OTHER_FRAMEWORK]
INCLUDES = [b for b in BLOCKS if b.name == "literalinclude"]


def test_the_docs_have_python_samples() -> None:
    """The extraction finds the pages' Python samples (so the tests below test something)."""
    assert len(PYTHON_BLOCKS) >= 20, [block.where for block in PYTHON_BLOCKS]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.where)
def test_python_sample_runs(block: Block) -> None:
    """The Python sample runs on its own without an error."""
    code = compile(block.body + "\n", block.where, "exec")
    namespace = {"__name__": "docs_sample"}
    try:
        exec(code, namespace)
    except Exception:
        pytest.fail(f"the sample at {block.where} failed:\n{traceback.format_exc()}")


def test_only_migration_examples_are_not_run() -> None:
    """Blocks exempt from running are the "before" halves on the migration page."""
    exempt = [block for block in ALL_PYTHON_BLOCKS if block not in PYTHON_BLOCKS]
    assert exempt, "the migration page shows Bocadillo and Starlette code"
    assert {block.page.name for block in exempt} == {"migrating.rst"}
    assert all(block.options.get("caption") in ("Bocadillo", "Starlette") for block in exempt)


@pytest.mark.parametrize("block", INCLUDES, ids=lambda block: block.where)
def test_included_file_exists(block: Block) -> None:
    """A literalinclude names a file that exists."""
    target = (block.page.parent / block.argument).resolve()
    assert target.is_file(), f"{block.where} includes {block.argument}, which does not exist"


#: The modules users import from; each name in their ``__all__`` is in the reference.
PUBLIC_MODULES = (
    "aioendpoints",
    "aioendpoints.auth",
    "aioendpoints.broadcast",
    "aioendpoints.broadcast.redis",
    "aioendpoints.messages",
    "aioendpoints.pytest_plugin",
    "aioendpoints.testing",
)


def _documented_objects() -> list[object]:
    """What the reference's ``auto*`` directives document, imported."""
    reference = "\n".join(page.read_text() for page in (DOCS / "reference").glob("*.rst"))
    found = []
    for dotted in re.findall(r"^\.\. auto\w+:: ([\w.]+)", reference, re.M):
        module, _, name = dotted.rpartition(".")
        try:
            found.append(importlib.import_module(dotted))
        except ImportError:
            found.append(getattr(importlib.import_module(module), name))
    return found


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_reference(module_name: str) -> None:
    """Each name in a public module's __all__ has an autodoc entry, under some import path."""
    documented = _documented_objects()
    module = importlib.import_module(module_name)
    missing = [
        name
        for name in module.__all__
        if not any(getattr(module, name) is entry for entry in documented)
    ]
    assert not missing, f"{module_name}: {missing}"


def _toctree_entries(page: Path) -> set[str]:
    """The pages ``page``'s toctrees list, as paths relative to docs/ without suffix."""
    entries = set()
    for toctree in page.read_text().split(".. toctree::")[1:]:
        for entry in re.findall(r"^   ([\w/-]+)$", toctree, re.M):
            entries.add((page.parent / entry).relative_to(DOCS).as_posix())
    return entries


def test_every_page_is_in_the_table_of_contents() -> None:
    """Every page is reachable from the index, through the four sections' toctrees."""
    pages = {page.relative_to(DOCS).with_suffix("").as_posix() for page in PAGES}
    reached = {"index"}
    frontier = ["index"]
    while frontier:
        listed = _toctree_entries(DOCS / f"{frontier.pop()}.rst") - reached
        reached |= listed
        frontier.extend(listed)
    assert pages == reached, {"unreachable": pages - reached, "missing": reached - pages}


def test_the_docs_have_four_parts() -> None:
    """The index leads to the tutorial, how-to guides, topics and reference, in that order."""
    entries = re.findall(r"^   ([\w/-]+)$", (DOCS / "index.rst").read_text(), re.M)
    assert entries[:4] == ["tutorial/index", "howto/index", "topics/index", "reference/index"]


def test_the_testing_pages_first_test_passes_without_a_warning(tmp_path: Path) -> None:
    """The how-to's pytest.ini and test_echo.py, saved as they are, pass under pytest."""
    saved = {
        block.options["caption"]: block.body
        for block in directives(DOCS / "howto" / "testing.rst")
        if block.name == "code-block" and "caption" in block.options
    }
    assert set(saved) == {"pytest.ini", "test_echo.py"}, set(saved)
    for name, body in saved.items():
        (tmp_path / name).write_text(body + "\n")
    root = Path(aioendpoints.__file__).resolve().parent.parent
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=tmp_path,
        env={**environment, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=+ 1 passed in [\d.]+s =+", summary), run.stdout


def test_ci_runs_the_readmes_test_command_as_written() -> None:
    """.ci/run's last command is the README's test command, character for character."""
    readme = (DOCS.parent / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^```sh\n(.*?)\n```$", setup, re.M | re.S)
    assert len(commands) == 2, commands
    assert all("\n" not in command for command in commands), commands
    ci_commands = [
        line
        for line in (DOCS.parent / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ci_commands[-1] == commands[1]
    install = (DOCS / "tutorial" / "install.rst").read_text()
    # Both commands make the virtualenv as the install page does.
    making_the_virtualenv = "python3 -m venv --without-pip .venv && python3 -m pip --python"
    assert all(command.startswith(making_the_virtualenv) for command in commands)
    assert f"{making_the_virtualenv} .venv/bin/python install -e ." in install
