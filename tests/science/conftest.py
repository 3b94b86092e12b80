"""The science checks' seed: 0 in CI; ``make seeds`` runs every check at seeds 0, 1 and 2
(``ICLAB_SCIENCE_SEED``) and writes the table of ``docs/seeds.md``."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def science_seed() -> int:
    return int(os.environ.get("ICLAB_SCIENCE_SEED", "0"))
