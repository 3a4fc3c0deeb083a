"""Which entries of an archive a restore runs: the `pg_restore -L` list for each mode.

A table's own entries are those that depend on it (its rows, indexes, constraints, triggers,
policies, privileges, comments, defaults, owned sequences and their values), transitively.
An entry that also depends on a table outside the selection (a foreign key to it, a
partition's attachment to its parent) is not the selected table's to restore: the restore
either re-creates it against the target's table or reports it by name. Into an empty
database a selection also brings what its entries need (schemas, types, functions, sequences
they use), never another table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from backstop.archive import Entry, Toc
from backstop.errors import ConfigError
from backstop.tables import Table

SPECIAL = {"ENCODING", "STDSTRINGS", "SEARCHPATH", "DATABASE", "DATABASE PROPERTIES"}
DATA = {"TABLE DATA", "SEQUENCE SET", "BLOB", "BLOB METADATA", "BLOBS", "BLOB COMMENTS",
        "MATERIALIZED VIEW DATA"}
TABLES = {"TABLE", "FOREIGN TABLE"}
OWNED = {"TABLE DATA", "INDEX", "CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "TRIGGER",
         "POLICY", "ROW SECURITY", "DEFAULT", "COMMENT", "ACL", "SECURITY LABEL", "SEQUENCE",
         "SEQUENCE OWNED BY", "SEQUENCE SET", "TABLE ATTACH", "INDEX ATTACH", "RULE",
         "STATISTICS", "STATISTICS DATA"}
LINKS = {"FK CONSTRAINT", "TABLE ATTACH", "INDEX ATTACH"}  # tie a table to another table


def is_data(entry: Entry) -> bool:
    return entry.desc in DATA or (entry.desc in ("ACL", "COMMENT")
                                  and entry.tag.startswith("LARGE OBJECT "))


@dataclasses.dataclass(frozen=True)
class Selection:
    entries: list[Entry]  # to restore, in archive order
    links: list[Entry]  # foreign keys and attachments to tables outside the selection
    tables: dict[Table, Entry]  # the selected tables' TABLE entries


class Archive:
    """An archive's entries, indexed for selection."""

    def __init__(self, toc: Toc) -> None:
        self.entries = [e for e in toc.entries if e.desc not in SPECIAL]
        self.by_id = {e.dump_id: e for e in self.entries}
        self.dependents: dict[int, list[Entry]] = {}
        for entry in self.entries:
            for dep in entry.deps:
                self.dependents.setdefault(dep, []).append(entry)
        self.table_entries = {Table(e.namespace or "", e.tag): e for e in self.entries
                              if e.desc in TABLES}

    def owner(self, entry: Entry) -> Table | None:
        """The table an entry belongs to through its dependencies (an index's, a
        constraint's), if any."""
        for dep in entry.deps:
            found = self.by_id.get(dep)
            if found is not None and found.desc in TABLES:
                return Table(found.namespace or "", found.tag)
        return None

    def table_of(self, dump_id: int) -> Table | None:
        """The table a TABLE entry creates, by its dump id (None for any other entry)."""
        entry = self.by_id.get(dump_id)
        return Table(entry.namespace or "", entry.tag) if entry and entry.desc in TABLES else None

    def foreign_key_ends(self, entry: Entry) -> tuple[Table | None, Table | None]:
        """(the constrained table, the referenced table) of an FK CONSTRAINT entry: it
        depends on both tables and on the referenced table's key."""
        tables = {Table(self.by_id[d].namespace or "", self.by_id[d].tag) for d in entry.deps
                  if d in self.by_id and self.by_id[d].desc in TABLES}
        keys = {self.owner(self.by_id[d]) for d in entry.deps
                if d in self.by_id and self.by_id[d].desc in ("CONSTRAINT", "INDEX")}
        referenced = next(iter(keys), None)
        constrained = next(iter(tables - keys), referenced)  # itself, when self-referencing
        return constrained, referenced

    def everything(self, *, data: bool, schema: bool) -> list[Entry]:
        return [e for e in self.entries if (data if is_data(e) else schema)]

    def large_object_oids(self) -> list[int]:
        """The large objects the archive creates (one BLOB entry each up to pg_dump 16,
        grouped in BLOB METADATA entries from 17)."""
        oids: list[int] = []
        for entry in self.entries:
            if entry.desc == "BLOB":
                oids.append(int(entry.tag))
            elif entry.desc == "BLOB METADATA" and entry.defn:
                oids.extend(int(line) for line in entry.defn.split())
        return oids

    def select(self, tables: Iterable[Table], *, partitions: dict[Table, Table],
               with_data: bool, with_schema: bool, prerequisites: bool) -> Selection:
        """The entries that restore `tables` (their definitions and/or rows), plus, with
        `prerequisites`, what they need that is not a table."""
        chosen = {}
        for table in tables:
            if table not in self.table_entries:
                raise ConfigError(f"table {table.qualified} has no definition in the archive")
            chosen[table] = self.table_entries[table]
        roots = {e.dump_id for e in chosen.values()}
        owned, links = self._owned(roots)
        picked = {i for i in owned if (with_data if is_data(self.by_id[i]) else with_schema)}
        if prerequisites and with_schema:
            picked |= self._prerequisites(picked, roots, chosen, partitions)
        return Selection([e for e in self.entries if e.dump_id in picked],
                         [e for e in links if with_schema], chosen)

    def _owned(self, roots: set[int]) -> tuple[set[int], list[Entry]]:
        """The roots and every entry that depends on them, transitively, except entries that
        also depend on a table outside the roots (returned separately as links)."""
        outside = {e.dump_id for e in self.table_entries.values()} - roots
        owned, links, todo = set(roots), [], list(roots)
        while todo:
            for entry in self.dependents.get(todo.pop(), []):
                if entry.dump_id in owned or entry.desc not in OWNED:
                    continue
                if outside & set(entry.deps):
                    if entry.desc in LINKS and entry not in links:
                        links.append(entry)
                    continue
                owned.add(entry.dump_id)
                todo.append(entry.dump_id)
        for entry in [self.by_id[i] for i in owned if self.by_id[i].desc == "SEQUENCE OWNED BY"]:
            for sequence in entry.deps:  # a serial column's sequence, and what hangs off it
                if sequence not in owned and self.by_id[sequence].desc == "SEQUENCE":
                    more, _ = self._owned({sequence})
                    owned |= more
        return owned, links

    def _prerequisites(self, picked: set[int], roots: set[int], chosen: dict[Table, Entry],
                       partitions: dict[Table, Table]) -> set[int]:
        """What the picked entries need, transitively, short of another table: schemas,
        types, functions, sequences, with their privileges and comments."""
        partition_parents = {self.table_entries[p].dump_id for t, p in partitions.items()
                             if t in chosen and p in self.table_entries}
        needed: set[int] = set()
        todo = [d for i in picked for d in self.by_id[i].deps]
        while todo:
            dep = todo.pop()
            if dep in needed or dep in picked or dep not in self.by_id:
                continue
            entry = self.by_id[dep]
            if entry.desc in TABLES:
                if dep in partition_parents:
                    continue  # a partition restores on its own; its attachment is a link
                names = ", ".join(t.qualified for t in chosen)
                raise ConfigError(f"{names} need(s) table {entry.namespace}.{entry.tag} "
                                  "(it inherits from it or uses its type); select it too")
            if entry.desc in OWNED or is_data(entry):
                continue  # another table's own entries are never a prerequisite
            needed.add(dep)
            todo.extend(entry.deps)
        for i in list(needed):  # their privileges and comments
            needed |= {e.dump_id for e in self.dependents.get(i, [])
                       if e.desc in ("ACL", "COMMENT") and set(e.deps) <= needed | picked}
        return needed
