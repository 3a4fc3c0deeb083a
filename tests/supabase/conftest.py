"""Session fixtures: Supabase-like sources and RDS-like targets on PostgreSQL 18 and 15, each
its own throwaway cluster (see layout.py for what is imitated and how)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supabase.layout import Source, Target, build_source, build_target
from tests.supabase.servers import PG15_BIN, embedded_bin


def _bin(major: int) -> Path:
    if major == 18:
        return embedded_bin()
    if not (PG15_BIN / "postgres").is_file():
        pytest.skip("PostgreSQL 15 server binaries are absent (Debian package postgresql-15)")
    return PG15_BIN


def _root(name: str) -> Path:
    """A directory of our own: pytest's shared temporary root is pruned by other test runs
    on the same machine, which must not happen under a running server."""
    return Path(tempfile.mkdtemp(prefix=f"backstop-{name}-"))


@pytest.fixture(scope="session", params=[18, 15], ids=["pg18", "pg15"])
def major(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(scope="session")
def supabase(major: int) -> Iterator[Source]:
    """A Supabase-like project database, built once per server major."""
    source = build_source(_root(f"supabase{major}"), _bin(major))
    try:
        yield source
    finally:
        source.cluster.stop()


@pytest.fixture(scope="session")
def rds(major: int) -> Iterator[Target]:
    """An RDS-like server of the same major, restored into as its non-superuser master."""
    target = build_target(_root(f"rds{major}"), _bin(major))
    try:
        yield target
    finally:
        target.cluster.stop()
