"""Restore rules: which archive entries a target cannot hold, each skip named with its reason.

The rules are for a target that is plain PostgreSQL or RDS, restored into by a role that is
not a superuser (RDS's master user). Each was observed with stock pg_restore on the
Supabase-like test database (tests/supabase/test_restore_rules.py repeats the experiment).
An entry that needs a skipped one is skipped too, and named with what it needs: nothing the
target cannot hold reaches pg_restore, and nothing is left out without saying so.

Verification must not expect what a restore left out on purpose: `Skips.left_out` finds the
skipped objects among those the backup recorded.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import psycopg

from backstop.archive import Entry
from backstop.selection import Archive
from backstop.signature import KINDS
from backstop.tables import Table


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the rules need to know about the backup and the target."""

    superuser: bool  # the restoring role
    available_extensions: frozenset[str]  # offered by the target server
    # roles whose default privileges the restoring role may set (its own, those it has the
    # privileges of, those the restore created and granted to it)
    default_privilege_roles: frozenset[str]
    foreign_extensions: frozenset[str] = frozenset()  # on the target, owned by another role
    existing_schemas: frozenset[str] = frozenset()  # in the target database before the restore
    # schemas whose objects the target will hold: the archive's and the target's own
    schemas: frozenset[str] = frozenset()
    # from the manifest: extension -> those of its member objects the archive names
    extension_members: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    kinds: tuple[str, ...]  # the entries' desc
    reason: str
    applies: Callable[[Entry, Facts], bool]
    present: bool = False  # the target has the object already: what needs it still restores


def name(entry: Entry) -> str:
    """An entry as `pg_restore --list` names it: `TRIGGER public quotes quote_webhook`."""
    return f"{entry.desc} {entry.namespace or '-'} {entry.tag}"


def object_of(entry: Entry) -> str:
    """`schema.name` of the object an entry creates or grants on, or a schema's name, as
    EXTENSION_MEMBERS (profiles.py) names extension members."""
    tag = entry.tag.split(" ", 1)[-1] if entry.desc in ("ACL", "COMMENT") else entry.tag
    tag = tag.split("(", 1)[0].strip('"')
    return tag if entry.namespace is None else f"{entry.namespace}.{tag}"


def _extension_of(entry: Entry) -> str:
    return entry.tag.removeprefix("EXTENSION ").strip('"')


def _lacking_extension_object(entry: Entry, facts: Facts) -> bool:
    if entry.namespace is None and (entry.desc == "EXTENSION"
                                    or entry.tag.startswith("EXTENSION ")):
        return _extension_of(entry) not in facts.available_extensions
    return any(object_of(entry) in members for ext, members in facts.extension_members.items()
               if ext not in facts.available_extensions)


def _publishes_everything(entry: Entry, facts: Facts) -> bool:
    return not facts.superuser and (
        entry.desc == "PUBLICATION TABLES IN SCHEMA"
        or re.search(r"\bFOR (ALL TABLES|TABLES IN SCHEMA)\b", entry.defn or "") is not None)


def _function_schema_missing(entry: Entry, facts: Facts) -> bool:
    called = re.search(r'EXECUTE (?:FUNCTION|PROCEDURE) ("(?:[^"]|"")+"|\w+)\.',
                       entry.defn or "")
    return called is not None and called.group(1).strip('"') not in facts.schemas


RULES: tuple[Rule, ...] = (
    Rule("existing-schema", ("SCHEMA",),
         "the target database has it already (every database has `public`; pg_dump writes "
         "CREATE SCHEMA public when the schema is named)",
         lambda entry, facts: entry.tag in facts.existing_schemas
         and "CREATE SCHEMA" in (entry.defn or ""), present=True),
    Rule("event-trigger", ("EVENT TRIGGER",),
         "only a superuser may create an event trigger (RDS's master user is not one); "
         "Supabase's react to DDL for PostgREST, pg_graphql, pg_net and pg_cron",
         lambda entry, facts: not facts.superuser),
    Rule("publication", ("PUBLICATION", "PUBLICATION TABLES IN SCHEMA"),
         "only a superuser may publish all tables or a whole schema",
         _publishes_everything),
    Rule("security-label", ("SECURITY LABEL",),
         "a label needs its provider (pgsodium, sepgsql) loaded into the target server, which "
         "no catalog shows and RDS never has: labelled columns keep the values they hold",
         lambda entry, facts: True),
    Rule("extension-missing", ("EXTENSION", "COMMENT", "ACL", "TABLE DATA"),
         "belongs to an extension the target does not offer",
         _lacking_extension_object),
    Rule("extension-not-owned", ("COMMENT",),
         "the extension already exists on the target, owned by another role: only its owner "
         "may comment on it",
         lambda entry, facts: not facts.superuser and entry.tag.startswith("EXTENSION ")
         and _extension_of(entry) in facts.foreign_extensions),
    Rule("default-privileges", ("DEFAULT ACL",),
         "sets default privileges for a role the restoring role is not a member of",
         lambda entry, facts: not facts.superuser
         and entry.owner not in facts.default_privilege_roles),
    Rule("trigger-function-missing", ("TRIGGER",),
         "calls a function in a schema neither the backup nor the target has (a Supabase "
         "Database Webhook calls supabase_functions.http_request)",
         _function_schema_missing),
)


def skipped(entry: Entry, facts: Facts) -> Rule | None:
    """The rule by which the target cannot hold `entry`, or None when it can."""
    return next((rule for rule in RULES
                 if entry.desc in rule.kinds and rule.applies(entry, facts)), None)


def read_facts(conn: psycopg.Connection[Any], archive: Archive,
               extensions: Mapping[str, Mapping[str, Any]], *, occupied: bool = False
               ) -> Facts:
    """The rules' facts, read from the target once the restore's roles exist. Into an
    `occupied` target a whole restore drops and re-creates each schema (pg_restore --clean),
    and a restore of some tables or rows creates none."""
    row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
                       ).fetchone()

    def names(query: str) -> frozenset[str]:
        return frozenset(n for (n,) in conn.execute(query).fetchall())

    present = names("SELECT nspname FROM pg_catalog.pg_namespace")
    return Facts(
        superuser=bool(row and row[0]),
        available_extensions=names("SELECT name FROM pg_catalog.pg_available_extensions"),
        default_privilege_roles=names("SELECT rolname FROM pg_catalog.pg_roles "
                                      "WHERE pg_catalog.pg_has_role(current_user, oid, 'USAGE')"),
        foreign_extensions=names("SELECT extname FROM pg_catalog.pg_extension "
                                 "WHERE extowner <> (SELECT oid FROM pg_catalog.pg_roles "
                                 "WHERE rolname = current_user)"),
        existing_schemas=frozenset() if occupied else present,
        schemas=present | {e.tag for e in archive.entries if e.desc == "SCHEMA"},
        extension_members={ext: frozenset(item.get("members", ()))
                           for ext, item in extensions.items()})


def archived_members(members: Mapping[str, Collection[str]], entries: Iterable[Entry]
                     ) -> dict[str, list[str]]:
    """Of each extension's member objects, those the archive's entries name (grants on them,
    a configuration table's rows): what the restore must leave out with the extension. The
    manifest records these, not every member (PostGIS alone has thousands)."""
    named = {object_of(e) for e in entries}
    return {ext: sorted(found) for ext, objects in members.items()
            if (found := named & set(objects))}


class Skips:
    """The rules applied to an archive: every entry list a restore runs passes `keep`, which
    drops what the target cannot hold and remembers each drop with its reason."""

    def __init__(self, archive: Archive, facts: Facts) -> None:
        self.archive = archive
        self.verdicts: dict[int, str] = {}
        # skipped, and so not on the target: what needs it is skipped, and never expected
        self.absent: set[int] = set()
        absent = self.absent
        for entry in archive.entries:
            rule = skipped(entry, facts)
            if rule is not None:
                self.verdicts[entry.dump_id] = rule.reason
                if not rule.present:
                    absent.add(entry.dump_id)
        changed = True
        while changed:  # archives list dependencies first, so this settles in one pass
            changed = False
            for entry in archive.entries:
                need = next((d for d in entry.deps if d in absent), None)
                if need is not None and entry.dump_id not in absent:
                    self.verdicts.setdefault(
                        entry.dump_id, f"needs {name(archive.by_id[need])}, which is skipped")
                    absent.add(entry.dump_id)
                    changed = True
        self.skipped: dict[int, Entry] = {}

    def keep(self, entries: Sequence[Entry]) -> list[Entry]:
        kept = []
        for entry in entries:
            if entry.dump_id in self.verdicts:
                self.skipped[entry.dump_id] = entry
            else:
                kept.append(entry)
        return kept

    def report(self) -> list[dict[str, str]]:
        return [{"entry": name(e), "reason": self.verdicts[i]} for i, e in self.skipped.items()]

    def left_out(self, objects: Mapping[str, Mapping[str, Any]]
                 ) -> tuple[frozenset[str], frozenset[Table]]:
        """The recorded schema objects (signature keys) and the tables whose rows the
        skipped entries would have restored."""
        keys: set[str] = set()
        tables: set[Table] = set()
        by_identity: dict[tuple[str, str], list[str]] = {}
        for key in objects:
            kind = next((k for k in KINDS if key.startswith(k + " ")), "")
            by_identity.setdefault((kind, _plain(key[len(kind) + 1:])), []).append(key)
        for entry in self.skipped.values():
            if entry.dump_id not in self.absent:
                continue  # the target has it already (`public`): compared as usual
            if entry.desc in ("TABLE", "TABLE DATA", "FOREIGN TABLE"):
                tables.add(Table(entry.namespace or "", entry.tag))
            if entry.desc not in _SIGNATURE_KINDS:
                continue
            kind, identity = _SIGNATURE_KINDS[entry.desc], self._identity(entry)
            keys.update(by_identity.get((kind, identity), ()))
            if kind in ("table", "view", "materialized view"):  # and what belongs to it
                keys.update(k for k, item in objects.items()
                            if _plain(item.get("table") or "") == identity
                            or _plain(k).startswith(f"column{identity}."))
        return frozenset(keys), frozenset(tables)

    def _identity(self, entry: Entry) -> str:
        """An entry's object as the signature names it, without quotes or spaces (a name
        that differs from another only in those is never expected, and said to be skipped)."""
        if entry.namespace is None:
            return _plain(entry.tag)
        tag = entry.tag
        owner = self.archive.owner(entry)
        if entry.desc in _OF_TABLE:  # "table name": split where the table's name ends
            cut = len(owner.name) if owner and tag.startswith(owner.name + " ") else \
                tag.find(" ")
            tag = f"{tag[:cut]}.{tag[cut + 1:]}"
        return _plain(f"{entry.namespace}.{tag}")


def _plain(text: str) -> str:
    return text.replace('"', "").replace(" ", "")


_SIGNATURE_KINDS = {
    "SCHEMA": "schema", "TABLE": "table", "FOREIGN TABLE": "table", "VIEW": "view",
    "MATERIALIZED VIEW": "materialized view", "CONSTRAINT": "constraint",
    "CHECK CONSTRAINT": "constraint", "FK CONSTRAINT": "constraint", "INDEX": "index",
    "TRIGGER": "trigger", "POLICY": "policy", "RULE": "rule", "SEQUENCE": "sequence",
    "FUNCTION": "function", "PROCEDURE": "function", "AGGREGATE": "function", "TYPE": "type",
    "DOMAIN": "type"}
_OF_TABLE = {"CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "POLICY", "RULE"}
