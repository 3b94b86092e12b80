"""Fixtures of the fault tests (helpers in ``fault_helpers.py``)."""

from __future__ import annotations

import os

import pytest
from helpers import one_thread as _one_thread

os.environ.setdefault("ICLAB_NO_PROGRESS", "1")


@pytest.fixture(scope="session", autouse=True)
def _warm():
    """Import what a run imports once, so that a timed command measures iclab's own checks."""
    import iclab.api  # noqa: F401
    from iclab.studies import STUDIES, get_study

    for name in STUDIES:
        get_study(name)


@pytest.fixture
def one_thread():
    """One torch thread: a forked child then computes exactly what its parent would (and an
    OpenMP pool is never forked)."""
    with _one_thread():
        yield

