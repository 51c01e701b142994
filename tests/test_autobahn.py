"""Protocol conformance: the Autobahn|Testsuite fuzzing-client cases, run by ``kosoku``.

``kosoku`` drives the Autobahn case files against an aioendpoints echo endpoint on a
loopback port. The normal run covers groups 1-7, 9, 10 and the first cases of 12 and 13
(permessage-deflate) in well under a minute; ``AIOENDPOINTS_AUTOBAHN=all`` (the
``tox -e autobahn`` env) runs every case, which takes about ten minutes on two cores.

Every case must pass, except aiohttp's own known gaps in :data:`KNOWN_GAPS`: those are
excluded from their group and each has its own strict-xfail test, so a fixed gap shows up.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import service_missing
from tests.echo_app import make_echo_app

ServerFactory = Callable[..., Awaitable[TestServer]]

# kosoku's vendored Autobahn case 12.x.x reads its test data with an open() it never closes.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <_io.FileIO name='[^']*kosoku:"
        "pytest.PytestUnraisableExceptionWarning"
    ),
    # One selection of cases is one test: longer than setup.cfg's per-test timeout allows
    # on a loaded machine (group 9's 16 MiB messages, the deflate groups of the full run).
    pytest.mark.timeout(1200),
]

#: Set to ``all`` to run every Autobahn case instead of the CI selection.
RUN_ALL = os.environ.get("AIOENDPOINTS_AUTOBAHN") == "all"
#: Cases run in parallel; two matches the CI machine's cores.
CONCURRENCY = 2
#: Group 9 sends messages of up to 16 MiB, so the echo route must accept them.
AUTOBAHN_MAX_MESSAGE_SIZE = 16 * 1024 * 1024 + 1024

_FIRST_DEFLATE_CASES = [f"{group}.1.{case}" for group in (12, 13) for case in range(1, 9)]
#: Case selections, one test each: case ids or ``*`` globs, as kosoku takes them.
CI_SELECTIONS: dict[str, list[str]] = {
    **{f"group-{group}": [f"{group}.*"] for group in (1, 2, 3, 4, 5, 6, 7, 9, 10)},
    "first-deflate-cases": _FIRST_DEFLATE_CASES,
}
ALL_SELECTIONS: dict[str, list[str]] = {
    **{f"group-{group}": [f"{group}.*"] for group in (1, 2, 3, 4, 5, 6, 7, 9, 10)},
    # permessage-deflate: 12.1-12.5 and 13.1-13.7, 18 cases each.
    **{f"group-12.{sub}": [f"12.{sub}.*"] for sub in range(1, 6)},
    **{f"group-13.{sub}": [f"13.{sub}.*"] for sub in range(1, 8)},
}

#: aiohttp's own known gaps: case id -> why it fails, with the upstream reference. Empty:
#: case 7.9.5 (close code 1006 from the peer), which aiohttp <= 3.14.5 answers with 1000
#: (fixed upstream by https://github.com/aio-libs/aiohttp/pull/13536), passes because
#: aioendpoints fails such connections with 1002 itself.
KNOWN_GAPS: dict[str, str] = {}

_PASSING_BEHAVIOURS = {"OK", "NON-STRICT", "INFORMATIONAL"}
_PASSING_CLOSES = {"OK", "INFORMATIONAL"}


async def run_cases(server: TestServer, cases: list[str], exclude: list[str]) -> list[Any]:
    """Run the selected Autobahn cases against ``server``'s echo route; return every result."""
    try:
        import kosoku
    except ImportError:
        service_missing("the Autobahn runner kosoku is not installed (pip install kosoku)")
        raise
    url = f"ws://127.0.0.1:{server.port}/echo"
    try:
        results: list[Any] = await kosoku.run_fuzzingclient(
            url, cases, exclude or None, concurrency=CONCURRENCY
        )
    except kosoku.FailureError as failure:
        results = failure.results
    return results


def failures(results: list[Any]) -> list[str]:
    """One line for each result that is not a pass in Autobahn's terms."""
    return [
        f"{result.case_id}: {result.behavior.value}/{result.behavior_close.value} "
        f"({result.description.strip()[:80]})"
        for result in results
        if result.behavior.value not in _PASSING_BEHAVIOURS
        or result.behavior_close.value not in _PASSING_CLOSES
    ]


@pytest.fixture
async def server(aiohttp_server: ServerFactory) -> TestServer:
    """The echo application, accepting the largest messages the cases send."""
    return await aiohttp_server(make_echo_app(max_msg_size=AUTOBAHN_MAX_MESSAGE_SIZE))


@pytest.mark.parametrize(
    "cases",
    list((ALL_SELECTIONS if RUN_ALL else CI_SELECTIONS).values()),
    ids=list(ALL_SELECTIONS if RUN_ALL else CI_SELECTIONS),
)
async def test_autobahn_cases_pass(server: TestServer, cases: list[str]) -> None:
    """Every selected Autobahn case passes, apart from aiohttp's known gaps."""
    results = await run_cases(server, cases, exclude=list(KNOWN_GAPS))
    assert results, f"kosoku ran no case for {cases}"
    assert failures(results) == []


if KNOWN_GAPS:

    @pytest.mark.parametrize(
        "case_id",
        [
            pytest.param(case_id, marks=pytest.mark.xfail(strict=True, reason=reason))
            for case_id, reason in KNOWN_GAPS.items()
        ],
    )
    async def test_known_gap(server: TestServer, case_id: str) -> None:
        """aiohttp's known gap still fails; a fixed one turns this xfail into an error."""
        results = await run_cases(server, [case_id], exclude=[])
        assert [result.case_id for result in results] == [case_id]
        assert failures(results) == []
