"""Shared fixtures: services, logging and the environment the suite needs."""

from __future__ import annotations

import os

import pytest

#: Set by .ci/run: a test that would skip for want of a service fails instead.
REQUIRE_SERVICES = os.environ.get("AIOENDPOINTS_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    """Skip the calling test for want of a service, or fail it when CI requires services."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (AIOENDPOINTS_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)
