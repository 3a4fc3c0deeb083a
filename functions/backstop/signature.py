"""The schema signature: a normalized description of every object a backup covers, one short
digest per object, so a restore can be proved to bring back the schema exactly.

Each object is described by names, never OIDs: deparsed definitions (pg_get_*def), types as
text, privileges as (grantee, privilege) pairs with the owner's own left out (restores run
with --no-owner, so owners differ by design), comments. The privileges of the role that took
the backup are left out too (version 2): restored as that same role, as `backstop verify`
does on the source's server, the objects become its own, and what the source granted it
merges into its ownership. The queries run with search_path
pinned to pg_catalog so every name they print is schema-qualified. Objects that belong to an
extension are the extension's, not the backup's, and are left out.

Compared kinds are listed in KINDS; ownership, default privileges, event triggers,
publications, statistics objects, operators and casts are not compared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import psycopg

from backstop.tables import Table

VERSION = 2  # 1: every privilege but the owner's
KINDS = ("schema", "table", "view", "materialized view", "column", "constraint", "index",
         "trigger", "policy", "rule", "sequence", "function", "type")


def _acl(acl: str, owner: str, kind: str) -> str:
    """Privileges as sorted `grantee=privilege` pairs, the owner's own left out (an owner
    differs after a --no-owner restore); NULL means the default privileges."""
    return (f"(SELECT string_agg(coalesce(r.rolname, 'PUBLIC') || '=' || a.privilege_type"
            f" || CASE WHEN a.is_grantable THEN '*' ELSE '' END, ','"
            f" ORDER BY coalesce(r.rolname, 'PUBLIC'), a.privilege_type)"
            f" FROM pg_catalog.aclexplode(coalesce({acl}, pg_catalog.acldefault('{kind}', "
            f"{owner}))) a LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee"
            f" WHERE a.grantee <> {owner}"
            f" AND coalesce(r.rolname, '') <> ALL(%(not_of)s::pg_catalog.text[]))")


def _not_extension_member(catalog: str, oid: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = "
            f"'{catalog}'::pg_catalog.regclass AND d.objid = {oid} AND d.deptype = 'e')")


IN_SCOPE = "n.nspname = ANY(%(schemas)s)"


def _of_relation(column: str) -> str:
    """Join an object's row (its relation in `column`) to an in-scope, non-extension table."""
    return (f"JOIN pg_catalog.pg_class c ON c.oid = {column} JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE {IN_SCOPE} AND "
            + _not_extension_member("pg_class", "c.oid"))


RELATION = ("FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
            f"c.relnamespace WHERE {IN_SCOPE} AND " + _not_extension_member("pg_class", "c.oid"))

# Each query returns (kind, identity, table it belongs to or NULL, description); views add a
# description that does not depend on how the server deparses queries (it changed in
# PostgreSQL 16), compared when the two servers' majors differ; foreign keys add the table
# they reference.
QUERIES = {
    "schema": f"""
        SELECT 'schema', pg_catalog.quote_ident(n.nspname), NULL,
               concat_ws(' | ', {_acl('n.nspacl', 'n.nspowner', 'n')},
                         pg_catalog.obj_description(n.oid, 'pg_namespace'))
        FROM pg_catalog.pg_namespace n WHERE {IN_SCOPE}""",
    "relation": f"""
        SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                              ELSE 'table' END,
               c.oid::pg_catalog.regclass::text,
               CASE WHEN c.relkind IN ('r', 'p', 'f') THEN c.oid::pg_catalog.regclass::text END,
               concat_ws(' | ', c.relkind, c.relpersistence, c.relrowsecurity,
                 c.relforcerowsecurity, c.relreplident,
                 (SELECT string_agg(o, ',' ORDER BY o) FROM unnest(c.reloptions) o),
                 CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
                 pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                 (SELECT string_agg(i.inhparent::pg_catalog.regclass::text, ','
                                    ORDER BY i.inhseqno)
                  FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid),
                 CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END,
                 {_acl('c.relacl', 'c.relowner', 'r')},
                 pg_catalog.obj_description(c.oid, 'pg_class')),
               CASE WHEN c.relkind IN ('v', 'm') THEN concat_ws(' | ', c.relkind,
                 {_acl('c.relacl', 'c.relowner', 'r')},
                 pg_catalog.obj_description(c.oid, 'pg_class'),
                 (SELECT string_agg(DISTINCT d.refobjid::pg_catalog.regclass::text, ',')
                  FROM pg_catalog.pg_rewrite w JOIN pg_catalog.pg_depend d
                    ON d.classid = 'pg_rewrite'::pg_catalog.regclass AND d.objid = w.oid
                   AND d.refclassid = 'pg_class'::pg_catalog.regclass AND d.refobjid <> c.oid
                  WHERE w.ev_class = c.oid)) END
        {RELATION} AND c.relkind IN ('r', 'p', 'f', 'v', 'm')""",
    "column": f"""
        SELECT 'column', c.oid::pg_catalog.regclass::text || '.' ||
                         pg_catalog.quote_ident(a.attname),
               CASE WHEN c.relkind IN ('r', 'p', 'f') THEN c.oid::pg_catalog.regclass::text END,
               concat_ws(' | ',
                 row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                 pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                 pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
                 CASE WHEN a.attcollation <> t.typcollation THEN
                   (SELECT pg_catalog.quote_ident(cn.nspname) || '.' ||
                           pg_catalog.quote_ident(co.collname)
                    FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn
                      ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END,
                 {_acl('a.attacl', 'c.relowner', 'c')},
                 pg_catalog.col_description(c.oid, a.attnum))
        FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        WHERE {IN_SCOPE} AND a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
          AND {_not_extension_member('pg_class', 'c.oid')}""",
    "constraint": f"""
        SELECT 'constraint',
               coalesce(c.oid::pg_catalog.regclass::text, k.contypid::pg_catalog.regtype::text)
                 || '.' || pg_catalog.quote_ident(k.conname),
               c.oid::pg_catalog.regclass::text,
               concat_ws(' | ', k.contype, pg_catalog.pg_get_constraintdef(k.oid),
                         k.convalidated,
                         pg_catalog.obj_description(k.oid, 'pg_constraint')),
               NULL, CASE WHEN k.contype = 'f' THEN k.confrelid::pg_catalog.regclass::text END
        FROM pg_catalog.pg_constraint k
        JOIN pg_catalog.pg_namespace n ON n.oid = k.connamespace
        LEFT JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
        WHERE {IN_SCOPE} AND k.contype <> 'n'
          AND {_not_extension_member('pg_constraint', 'k.oid')}
          AND (c.oid IS NULL OR {_not_extension_member('pg_class', 'c.oid')})""",
    "index": f"""
        SELECT 'index', c.oid::pg_catalog.regclass::text, x.indrelid::pg_catalog.regclass::text,
               concat_ws(' | ', pg_catalog.pg_get_indexdef(x.indexrelid), x.indisclustered,
                         x.indisreplident, pg_catalog.obj_description(c.oid, 'pg_class'))
        FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE {IN_SCOPE} AND {_not_extension_member('pg_class', 'x.indrelid')}""",
    "trigger": f"""
        SELECT 'trigger', c.oid::pg_catalog.regclass::text || '.' ||
                          pg_catalog.quote_ident(g.tgname),
               c.oid::pg_catalog.regclass::text,
               concat_ws(' | ', pg_catalog.pg_get_triggerdef(g.oid), g.tgenabled,
                         pg_catalog.obj_description(g.oid, 'pg_trigger'))
        FROM pg_catalog.pg_trigger g {_of_relation('g.tgrelid')}
          AND NOT g.tgisinternal""",
    "policy": f"""
        SELECT 'policy', c.oid::pg_catalog.regclass::text || '.' ||
                         pg_catalog.quote_ident(p.polname),
               c.oid::pg_catalog.regclass::text,
               concat_ws(' | ', p.polcmd, p.polpermissive,
                 (SELECT string_agg(coalesce(r.rolname, 'PUBLIC'), ',' ORDER BY 1)
                  FROM unnest(p.polroles) pr LEFT JOIN pg_catalog.pg_roles r ON r.oid = pr),
                 pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                 pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
                 pg_catalog.obj_description(p.oid, 'pg_policy'))
        FROM pg_catalog.pg_policy p {_of_relation('p.polrelid')}""",
    "rule": f"""
        SELECT 'rule', c.oid::pg_catalog.regclass::text || '.' ||
                       pg_catalog.quote_ident(w.rulename),
               c.oid::pg_catalog.regclass::text,
               concat_ws(' | ', pg_catalog.pg_get_ruledef(w.oid), w.ev_enabled,
                         pg_catalog.obj_description(w.oid, 'pg_rewrite'))
        FROM pg_catalog.pg_rewrite w {_of_relation('w.ev_class')}
          AND w.rulename <> '_RETURN'""",
    "sequence": f"""
        SELECT 'sequence', c.oid::pg_catalog.regclass::text,
               (SELECT d.refobjid::pg_catalog.regclass::text FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_class'::pg_catalog.regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::pg_catalog.regclass
                  AND d.deptype IN ('a', 'i') LIMIT 1),
               concat_ws(' | ', s.seqtypid::pg_catalog.regtype, s.seqstart, s.seqincrement,
                 s.seqmax, s.seqmin, s.seqcache, s.seqcycle, c.relpersistence,
                 (SELECT d.refobjid::pg_catalog.regclass::text || '.' ||
                         pg_catalog.quote_ident(a.attname)
                  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attribute a
                    ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                  WHERE d.classid = 'pg_class'::pg_catalog.regclass AND d.objid = c.oid
                    AND d.refclassid = 'pg_class'::pg_catalog.regclass
                    AND d.deptype IN ('a', 'i') LIMIT 1),
                 {_acl('c.relacl', 'c.relowner', 's')},
                 pg_catalog.obj_description(c.oid, 'pg_class'))
        FROM pg_catalog.pg_sequence s {_of_relation('s.seqrelid')}""",
    "function": f"""
        SELECT 'function', p.oid::pg_catalog.regprocedure::text, NULL,
               concat_ws(' | ', p.prokind,
                 CASE WHEN p.prokind = 'a' THEN
                   (SELECT concat_ws(',', a.aggkind, a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
                                     a.aggtranstype::pg_catalog.regtype, a.agginitval,
                                     a.aggsortop::pg_catalog.regoperator)
                    FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid)
                 ELSE pg_catalog.pg_get_functiondef(p.oid) END,
                 {_acl('p.proacl', 'p.proowner', 'f')},
                 pg_catalog.obj_description(p.oid, 'pg_proc'))
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE {IN_SCOPE} AND {_not_extension_member('pg_proc', 'p.oid')}""",
    "type": f"""
        SELECT 'type', t.oid::pg_catalog.regtype::text, NULL,
               concat_ws(' | ', t.typtype,
                 CASE t.typtype
                   WHEN 'e' THEN (SELECT string_agg(pg_catalog.quote_literal(e.enumlabel), ','
                                                    ORDER BY e.enumsortorder)
                                  FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)
                   WHEN 'd' THEN concat_ws(',',
                                   pg_catalog.format_type(t.typbasetype, t.typtypmod),
                                   t.typnotnull, t.typdefault)
                   WHEN 'c' THEN (SELECT string_agg(pg_catalog.quote_ident(a.attname) || ' ' ||
                                    pg_catalog.format_type(a.atttypid, a.atttypmod), ','
                                    ORDER BY a.attnum)
                                  FROM pg_catalog.pg_attribute a
                                  WHERE a.attrelid = t.typrelid AND a.attnum > 0
                                    AND NOT a.attisdropped)
                   WHEN 'r' THEN (SELECT concat_ws(',', r.rngsubtype::pg_catalog.regtype,
                                                   r.rngcollation, r.rngsubopc,
                                                   r.rngcanonical, r.rngsubdiff)
                                  FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid)
                 END,
                 {_acl('t.typacl', 't.typowner', 'T')},
                 pg_catalog.obj_description(t.oid, 'pg_type'))
        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE {IN_SCOPE} AND t.typtype IN ('e', 'd', 'c', 'r')
          AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_catalog.pg_class
                                    WHERE oid = t.typrelid) = 'c')
          AND {_not_extension_member('pg_type', 't.oid')}""",
}


def collect(conn: psycopg.Connection[Any], schemas: Sequence[str], *,
            not_of: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """`kind identity` -> {"digest", "table": the table it belongs to or None, for views
    "portable", for foreign keys "references"}, for every object in `schemas`, privileges of
    the `not_of` roles left out. Run with search_path pinned to pg_catalog."""
    objects: dict[str, dict[str, Any]] = {}
    for query in QUERIES.values():
        for kind, identity, table, description, *extra in conn.execute(
                query, {"schemas": list(schemas), "not_of": list(not_of)}).fetchall():
            item = {"digest": _digest(description), "table": table}
            portable, references = [*extra, None, None][:2]
            if portable is not None:
                item["portable"] = _digest(portable)
            if references is not None:
                item["references"] = references
            objects[f"{kind} {identity}"] = item
    return objects


def not_of(recorded: dict[str, Any]) -> list[str]:
    """The roles a recorded signature left the privileges of out (besides owners)."""
    return [recorded["role"]] if recorded.get("role") else []


def belonging_to(objects: dict[str, dict[str, Any]], tables: Collection[Table] | None, *,
                 kind: str = "") -> dict[str, dict[str, Any]]:
    """The objects of one kind ("" for all) that belong to `tables` (None: every object)."""
    return {key: item for key, item in objects.items() if key.startswith(kind) and (
        tables is None or (item.get("table") is not None
                           and Table.parse(item["table"]) in tables))}


def _digest(description: str | None) -> str:
    return hashlib.sha256((description or "").encode()).hexdigest()[:16]


def differences(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]],
                keys: Iterable[str], *, same_major: bool) -> list[str]:
    """One line per object of `keys` that is missing, extra or different in `actual`."""
    field = "digest" if same_major else "portable"
    problems = []
    for key in sorted(keys):
        if key not in actual:
            problems.append(f"{key}: missing")
        elif key not in expected:
            problems.append(f"{key}: not in the backup")
        elif actual[key].get(field, actual[key]["digest"]) != \
                expected[key].get(field, expected[key]["digest"]):
            problems.append(f"{key}: differs from the backup")
    return problems
