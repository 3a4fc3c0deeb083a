"""Integration fixtures for the monthly report: a year of generated backups in local stores
(January to November written once per session, December per store, with its faults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstop.manifest import Manifest
from backstop.store import open_store
from tests.conftest import KeyPair, Postgres
from tests.integration import year


@pytest.fixture(scope="session")
def base(pg: Postgres, gpg_keys: KeyPair, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return year.template(pg, gpg_keys, tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def months_before(base: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January to November, written once; each store below starts as a copy of it."""
    root = tmp_path_factory.mktemp("year") / "store"
    year.generate(open_store(str(root)), base, end=year.MONTH_START)
    return root


@pytest.fixture(scope="session")
def faulty_store(months_before: Path, base: Manifest,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A year whose December holds every fault of ``year.FAULTS``."""
    return year.december(months_before, base, tmp_path_factory.mktemp("faulty") / "store",
                         year.FAULTS)
