"""Restore a backup in the mode asked, then verify the target against its manifest.

Nothing touches a target before the object's size and sha256 equal the manifest and it has
decrypted with the given private key (staging.py). A target that already holds tables needs
`confirm` equal to its name and gets a pre-restore backup first; if that fails, nothing is
restored.
Into a database in use, a restore runs in one transaction (all or nothing); into an empty
one it runs in parallel, and a failure says the database is partly restored.

Modes: `full` (everything the backup holds), `tables` (the named tables with everything that
belongs to them, nothing else), `data-only` (rows into the existing schema), `schema-only`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from backstop import (
    archive,
    health,
    names,
    pgrestore,
    reload,
    rules,
    selection,
    signature,
    snapshot,
    targets,
    verify,
)
from backstop import tables as tbl
from backstop.backup import BackupRequest, run_backup
from backstop.connection import Connection
from backstop.errors import ConfigError, DumpError, SourceError
from backstop.manifest import Manifest
from backstop.staging import Fetched, decrypt, fetch
from backstop.store import ObjectStore

log = logging.getLogger(__name__)

RESTORE_MODES = ("full", "tables", "data-only", "schema-only")
SCRIPT_ONLY_BEFORE = 17  # servers older than this get the script form (see pgrestore)
# A full backup's large objects are the database's: restoring its data replaces the set.
UNLINK_ALL = "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata;\n"


@dataclasses.dataclass(frozen=True)
class RestoreRequest:
    mode: str = "full"
    tables: tuple[str, ...] = ()  # as typed; `tables` mode needs them, data/schema-only narrow
    confirm: str | None = None
    jobs: int = min(4, os.cpu_count() or 1)
    # the operator's health checks (health.py), compared with what the backup recorded
    checks: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in RESTORE_MODES:
            raise ConfigError(f"restore mode {self.mode!r} is not one of "
                              f"{', '.join(RESTORE_MODES)}")
        if self.mode == "tables" and not self.tables:
            raise ConfigError("mode 'tables' needs table names (--table)")
        if self.mode == "full" and self.tables:
            raise ConfigError("table names restore only those tables: use mode 'tables' "
                              "(or 'data-only' / 'schema-only' to narrow those)")


@dataclasses.dataclass(frozen=True)
class Outcome:
    report: verify.Report
    pre_restore_backup: str | None


def restore(store: ObjectStore, manifest: Manifest, *, target: Connection,
            request: RestoreRequest, private_key: str, recipient_keys: Sequence[str] = (),
            staging: Path | None = None) -> Outcome:
    """Restore `manifest` into `target` in the mode asked and verify it against the
    manifest."""
    with database_errors(target):
        return _Restore(store, manifest, target, request).run(private_key, recipient_keys,
                                                               staging)


@contextlib.contextmanager
def database_errors(connection: Connection) -> Iterator[None]:
    """A database refusal (rights, a dropped connection) as one scrubbed SourceError line."""
    try:
        yield
    except psycopg.Error as exc:
        raise SourceError(f"{connection.describe()} refused: {connection.scrub(str(exc))}; "
                          "check the role's rights and the server") from None


class _Restore:
    def __init__(self, store: ObjectStore, manifest: Manifest, target: Connection,
                 request: RestoreRequest) -> None:
        self.store, self.manifest, self.target, self.request = store, manifest, target, request
        self.mode = request.mode
        known = manifest.catalog()
        where = f"backup {manifest.id}"
        named = known.named(request.tables, where=where)
        # the tables to restore, partitioned ones with everything below them; their rows
        self.tree = list(dict.fromkeys(t for n in named for t in known.subtree(n)))
        self.chosen = known.resolve(request.tables, where=where) if request.tables else None
        if self.chosen is not None and self.mode != "schema-only":
            holding = {t.table for t in manifest.tables}
            lacking = [t.qualified for t in self.chosen if t not in holding]
            if lacking:
                raise ConfigError(f"backup {manifest.id} holds no rows of {', '.join(lacking)} "
                                  f"(it holds rows of {_listing(holding)}); choose a backup "
                                  "that does, or --mode schema-only")
        self.skipped: list[dict[str, str]] = []  # {"entry", "reason"}
        self.notes: list[str] = []
        self.created_roles: list[str] = []

    def run(self, private_key: str, recipient_keys: Sequence[str],
            staging: Path | None) -> Outcome:
        with self.target.connect(autocommit=True) as conn:
            occupied, present = self._preflight(conn)
        started = time.monotonic()  # the measured RTO includes fetching and decrypting
        with fetch(self.store, self.manifest, private_key, staging) as fetched:
            pre_restore = None
            if occupied:
                pre_restore = run_backup(
                    BackupRequest(logical_name(self.target.dbname), "pre-restore",
                                  f"before restoring {self.manifest.id} into "
                                  f"{self.target.dbname}"),
                    connection=self.target, store=self.store, recipient_keys=recipient_keys).id
            with self.target.connect(autocommit=True) as conn:
                skips, notes = targets.prepare(
                    conn, self.manifest, selection.Archive(fetched.toc), self.created_roles,
                    definitions=self.mode != "data-only", occupied=occupied)
            self.notes += notes
            try:
                scope = self._restore(fetched, occupied, present, private_key, skips)
            except DumpError as exc:
                raise DumpError(self._state(exc, occupied, pre_restore)) from None
            self.skipped += skips.report()
            scope = self._without_skipped(scope, skips)
            restored = time.monotonic()
            if self.request.checks:
                health.prepare_role(self.target)
            with self.target.connect() as conn:
                comparison = verify.compare(conn, self.manifest, scope)
                problems = comparison.problems
                if self._whole_data():
                    with conn.transaction():
                        problems += verify.health_problems(conn, self.manifest,
                                                          self.request.checks)
        report = verify.Report(
            backup_id=self.manifest.id, database=self.manifest.database,
            target=self.target.dbname, mode=self.mode,
            ok=not problems and comparison.ok, tables=comparison.tables, problems=problems,
            restore_seconds=round(restored - started, 3),
            verify_seconds=round(time.monotonic() - restored, 3),
            bytes_restored=int(self.manifest.dump.get("plain_size", 0)),
            verified_at=verify.now_iso(), compared=comparison.compared,
            notes=self.notes + comparison.notes, skipped=self.skipped)
        return Outcome(report, pre_restore)

    def _whole_data(self) -> bool:
        return (self.mode in ("full", "data-only") and self.chosen is None
                and self.manifest.scope.is_full)

    def _state(self, exc: DumpError, occupied: bool, pre_restore: str | None) -> str:
        if occupied:
            state = (f"nothing was changed in {self.target.dbname}: the restore ran in one "
                     "transaction and was rolled back")
        else:
            state = (f"{self.target.dbname} is now partly restored: drop and re-create it "
                     "before trying again")
        before = f"; its earlier state is in backup {pre_restore}" if pre_restore else ""
        return f"{exc}; {state}{before}"

    def _preflight(self, conn: psycopg.Connection[Any]) -> tuple[bool, set[tbl.Table]]:
        """Read-only checks of the target. Returns whether it holds user tables, and which
        of the restore's tables it holds."""
        major = conn.info.server_version // 10000
        source_major = int(self.manifest.source["server_version"].split(".")[0])
        if major < source_major:
            raise ConfigError(
                f"backup {self.manifest.id} comes from PostgreSQL {source_major}; target "
                f"{self.target.describe()} runs {major}: restore into {source_major} or newer")
        targets.check_extensions(
            conn, self.manifest, {t.qualified for t in self.tree} or set(self.manifest.relations)
            or {t.table.qualified for t in self.manifest.tables}, self.target.describe())
        in_target = {r.table for r in tbl.relations(conn, tbl.schemas(conn))
                     if r.kind in ("r", "p")}
        occupied = bool(in_target)
        if occupied and self.request.confirm != self.target.dbname:
            raise ConfigError(f"target {self.target.describe()} already has tables; to "
                              "replace them, confirm with the database name "
                              f"({self.target.dbname!r}); a pre-restore backup of its current "
                              "state is taken first")
        if self.mode == "full" and occupied and not self.manifest.scope.is_full:
            held = [t.table for t in self.manifest.tables]
            known = self.manifest.catalog()  # a partitioned table whose rows are all held too
            whole = [a for a in dict.fromkeys(a for t in held for a in known.ancestors(t))
                     if set(known.leaves(a)) <= set(held)]
            self.chosen, self.tree = held, whole + held
            self.notes.append("a backup of some tables restores, into a database in use, "
                              "those tables only")
            self.mode = "tables"
        wanted = set(self.tree or [t.table for t in self.manifest.tables])
        if self.mode == "data-only":
            missing = sorted(wanted - in_target)
            if missing:
                raise ConfigError(f"{self.target.describe()} has no table "
                                  f"{_listing(missing)} to load rows into; restore the schema "
                                  "first (--mode schema-only) or use --mode tables")
        if self.mode == "schema-only" and occupied and self.chosen is not None:
            raise ConfigError("--mode schema-only with --table restores into an empty database "
                              "only; use --mode tables to replace tables in a database in use")
        self._check_columns(conn, wanted & in_target)
        self._create_roles(conn)
        return occupied, wanted & in_target

    def _check_columns(self, conn: psycopg.Connection[Any], kept: set[tbl.Table]) -> None:
        """Tables whose rows are replaced in place must have the backup's columns."""
        if not kept or self.mode not in ("tables", "data-only") or not self.manifest.schema:
            return
        recorded = self.manifest.schema
        with conn.transaction():
            snapshot.pin(conn)
            actual = signature.collect(conn, sorted({t.schema for t in kept}),
                                       not_of=signature.not_of(recorded))
        expected = signature.belonging_to(recorded["objects"], kept, kind="column ")
        found = signature.belonging_to(actual, kept, kind="column ")
        differ = signature.differences(expected, found, set(expected) | set(found),
                                       same_major=True)
        if differ:
            raise ConfigError(f"the target's tables differ from the backup's ({differ[0]}"
                              f"{'' if len(differ) == 1 else f' and {len(differ) - 1} more'}):"
                              " restore into an empty database, or bring the table to the "
                              "backup's definition first")

    def _create_roles(self, conn: psycopg.Connection[Any]) -> None:
        """Roles the backup's privileges and policies name, created NOLOGIN where missing."""
        existing = {name for (name,) in conn.execute(
            "SELECT rolname FROM pg_catalog.pg_roles").fetchall()}
        missing = [r["name"] for r in self.manifest.roles if r["name"] not in existing]
        for name in missing:
            try:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
            except psycopg.errors.InsufficientPrivilege:
                raise ConfigError(f"target {self.target.describe()} lacks role(s) "
                                  f"{', '.join(missing)} that the backup's privileges and "
                                  "policies name, and this role may not create them: create "
                                  "them (NOLOGIN is enough) or restore as a role with "
                                  "CREATEROLE") from None
        if missing:
            self.notes.append(f"created role(s) {', '.join(missing)} (NOLOGIN, no password): "
                              "the backup's privileges and policies name them")
        self.created_roles = missing
        self.notes += targets.grant_memberships(conn, self.manifest, missing)

    def _without_skipped(self, scope: verify.Scope, skips: rules.Skips) -> verify.Scope:
        """Verification does not expect what the rules left out; the report names it."""
        objects, tables = skips.left_out(self.manifest.schema.get("objects", {}))
        return dataclasses.replace(scope, left_out=objects, left_out_tables=tables)

    def _restore(self, fetched: Fetched, occupied: bool, present: set[tbl.Table],
                 private_key: str, skips: rules.Skips) -> verify.Scope:
        entries = skips.archive
        old = self._major() < SCRIPT_ONLY_BEFORE

        def feed(pipe: IO[bytes]) -> None:
            decrypt(self.store, self.manifest, private_key, pipe)

        run = pgrestore.Runner(self.target, fetched.path, feed, self.request.jobs, old,
                               skips.keep)
        partitions = self.manifest.catalog().partitions
        if self.mode in ("full", "schema-only") and self.chosen is None:
            data = self.mode == "full"
            picked = entries.everything(data=data, schema=True)
            if data and not self.manifest.scope.is_full:
                picked = self._without_dangling_keys(entries, picked)
            # what the target cannot hold is neither created nor dropped
            clean = entries.drops(skips.keep(picked)) + (UNLINK_ALL if data else "")
            run.whole(picked, clean=clean if occupied else None)
            return verify.Scope(data=data, whole_database=not occupied,
                                keys_added_after_rows=True)
        if self.mode == "data-only":
            return self._data_only(entries, run)
        chosen = self.tree
        if not occupied:
            # A partition comes with the definitions of the partitioned tables above it (and
            # nothing else of theirs), so it is attached and equal to the backup's.
            known = self.manifest.catalog()
            above = [a for a in dict.fromkeys(a for t in chosen for a in known.ancestors(t))
                     if a not in chosen]
            if above:
                self.notes.append("the definitions of " + ", ".join(a.qualified for a in above)
                                  + " came too (not their rows), to hold the tables below them")
            selected = entries.select(chosen + above, partitions=partitions,
                                      with_data=self.mode == "tables", with_schema=True,
                                      prerequisites=True)
            trees = {known.root(t) for t in chosen}
            for link in selected.links:
                constrained, referenced = entries.foreign_key_ends(link) \
                    if link.desc == "FK CONSTRAINT" else (None, None)
                if constrained and known.root(constrained) in trees:
                    self.skipped.append({"entry": rules.name(link), "reason": (
                        f"references {referenced and referenced.qualified}, which was not "
                        "restored")})
            run.whole(selected.entries)
        else:
            self._tables_in_use(entries, run, chosen, present, partitions)
        return verify.Scope(tables=tuple(chosen), data=self.mode == "tables",
                            whole_database=False, keys_added_after_rows=True)

    def _without_dangling_keys(self, entries: selection.Archive,
                               picked: list[archive.Entry]) -> list[archive.Entry]:
        """A backup of some tables' rows cannot hold a foreign key from those rows to a
        table whose rows it lacks: such keys are left out, and named."""
        held = {t.table for t in self.manifest.tables}
        known = self.manifest.catalog()
        trees = {known.root(t) for t in held}  # a partitioned table's key holds for each part
        kept = []
        for entry in picked:
            constrained, referenced = (entries.foreign_key_ends(entry)
                                       if entry.desc == "FK CONSTRAINT" else (None, None))
            if constrained and known.root(constrained) in trees and referenced not in held:
                self.skipped.append({"entry": rules.name(entry), "reason": (
                    f"references {referenced and referenced.qualified}, whose rows this backup "
                    "does not hold")})
            else:
                kept.append(entry)
        return kept

    def _data_only(self, entries: selection.Archive, run: pgrestore.Runner) -> verify.Scope:
        whole = self.chosen is None and self.manifest.scope.is_full
        chosen = self.chosen or [t.table for t in self.manifest.tables]
        known = self.manifest.catalog()
        above = list(dict.fromkeys(a for t in chosen for a in known.ancestors(t)))
        # The rows of `tree` are restored, with the sequences they own; a partitioned table's
        # sequence serves all its partitions, so it is restored only with all of them.
        tree = self.tree or chosen + (above if whole else [])
        picked = entries.select(tree, partitions={}, with_data=True, with_schema=False,
                                prerequisites=False).entries
        if whole:  # every row held: other sequences, large objects, materialized views
            picked += [e for e in entries.entries if selection.is_data(e) and e not in picked
                       and e.desc != "TABLE DATA" and (e.desc != "SEQUENCE SET" or names.qualified(
                           e.namespace or "", e.tag) in self.manifest.sequences)]
        with self.target.connect(autocommit=True) as conn:
            before = UNLINK_ALL if whole else ""
            # foreign keys to a partitioned table above the rows stand in their way too
            plan = reload.plan(conn, list(dict.fromkeys(tree + above)), emptied=chosen)
        run.script(picked, preamble=plan.preamble + before, postamble=plan.postamble)
        return verify.Scope(tables=None if whole else tuple(tree), data=True, schema=False,
                            whole_database=False, keys_added_after_rows=True)

    def _tables_in_use(self, entries: selection.Archive, run: pgrestore.Runner,
                       chosen: list[tbl.Table], present: set[tbl.Table],
                       partitions: dict[tbl.Table, tbl.Table]) -> None:
        """Into a database in use: tables it lacks are created; tables it has keep their
        place (and what depends on them) and get the backup's rows and their own objects."""
        kept = [t for t in chosen if t in present]
        new = [t for t in chosen if t not in present]
        created = entries.select(new, partitions=partitions, with_data=True, with_schema=True,
                                 prerequisites=False) if new else None
        refilled = entries.select(kept, partitions=partitions, with_data=True,
                                  with_schema=True, prerequisites=False)
        guarded = [e for e in refilled.entries if e.desc in reload.GUARDED]
        links = [*(created.links if created else []), *refilled.links]
        with self.target.connect(autocommit=True) as conn:
            reachable = {r.table for r in tbl.relations(conn, tbl.schemas(conn))} | set(chosen)
            usable = []  # a restored table's own foreign keys to other tables
            for link in links:
                ends = entries.foreign_key_ends(link) if link.desc == "FK CONSTRAINT" else None
                if not ends or ends[0] not in chosen:
                    continue  # another table's key: the target's own was set aside and kept
                if ends[1] in reachable:
                    usable.append(link)
                else:
                    self.skipped.append({"entry": rules.name(link), "reason": (
                        f"references {ends[1] and ends[1].qualified}, which is neither "
                        "restored nor in the target")})
            plan = reload.plan(conn, kept, emptied=[t for t in kept if t in (self.chosen or [])],
                               guarded=guarded, links=usable)
        data = [e for e in refilled.entries if selection.is_data(e)]
        attached = [e for e in (created.links if created else [])  # new partitions' parents
                    if e.desc in ("TABLE ATTACH", "INDEX ATTACH") and all(
                        entries.table_of(d) in reachable for d in e.deps
                        if entries.table_of(d) is not None)]
        run.script([*(created.entries if created else []), *attached, *data],
                   preamble=plan.preamble, postamble=plan.postamble)

    def _major(self) -> int:
        with self.target.connect(autocommit=True) as conn:
            return conn.info.server_version // 10000


def _listing(tables: Sequence[tbl.Table] | set[tbl.Table]) -> str:
    return ", ".join(sorted(t.qualified for t in tables)) or "no table"


def logical_name(dbname: str) -> str:
    """A database's name as a backup's logical name (lower case, letters, digits, - and _)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", dbname.lower()).strip("-_") or "database"
    return name[:63]
