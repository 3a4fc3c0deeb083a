"""Session fixtures: Supabase-like sources and RDS-like targets on PostgreSQL 18, 17 and 15
(Supabase runs 15 and 17), each its own throwaway cluster (see layout.py for what is
imitated and how)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import server_directory
from tests.supabase.layout import Source, Target, build_source, build_target
from tests.supabase.servers import server_bin


@pytest.fixture(scope="session", params=[18, 17, 15], ids=["pg18", "pg17", "pg15"])
def major(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(scope="session")
def supabase(major: int) -> Iterator[Source]:
    """A Supabase-like project database, built once per server major."""
    source = build_source(server_directory(f"supabase{major}"), server_bin(major))
    try:
        yield source
    finally:
        source.cluster.stop()


@pytest.fixture(scope="session")
def rds(major: int) -> Iterator[Target]:
    """An RDS-like server of the same major, restored into as its non-superuser master."""
    target = build_target(server_directory(f"rds{major}"), server_bin(major))
    try:
        yield target
    finally:
        target.cluster.stop()
