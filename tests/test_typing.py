"""User code of the typed-message API type-checks under mypy --strict, and mistakes do not."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent / "typing"

mypy_api = pytest.importorskip("mypy.api")


def mypy(path: Path) -> tuple[str, int]:
    stdout, stderr, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir=/dev/null", str(path)]
    )
    return stdout + stderr, status


@pytest.mark.slow
def test_typed_usage_type_checks() -> None:
    """Endpoints, views, options, test helpers and asyncapi(), as a user writes them: clean."""
    output, status = mypy(HERE / "typed_usage.py")
    assert status == 0, output


@pytest.mark.slow
def test_typed_mistakes_are_reported() -> None:
    """A wrong return type, a misspelt field and a non-async handler are each reported."""
    output, status = mypy(HERE / "typed_misuse.py")
    assert status == 1, output
    assert 'typed_misuse.py:16: error: Argument 1 to "receive_message"' in output
    assert 'typed_misuse.py:21: error: "Said" has no attribute "txt"' in output
    assert 'typed_misuse.py:25: error: Value of type variable "HandlerT"' in output
