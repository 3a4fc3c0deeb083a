"""Table names as people type them: `quotes`, `public.quotes`, `other."we.ird"`.

The syntax is psql's and pg_dump's: a dot separates schema and table, double quotes keep
dots, commas, capitals and quotes (`""`) inside a name, and unquoted parts fold to lower case.
`qualified()` prints a name back in the same syntax, so every name round-trips.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from backstop.errors import ConfigError

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def quote(part: str) -> str:
    return part if _PLAIN.fullmatch(part) else '"' + part.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}"


def split_list(text: str) -> list[str]:
    """`a, "b,c", d` -> ['a', '"b,c"', 'd']: commas outside quotes separate names."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise ConfigError(f"table list {text!r} has an unclosed double quote")
    items.append("".join(current).strip())
    return [item for item in items if item]


def parse(text: str) -> tuple[str | None, str]:
    """`name` or `schema.name` -> (schema or None, name), quotes removed, unquoted parts
    folded to lower case."""
    parts = list(_parts(text))
    if len(parts) not in (1, 2) or not all(parts):
        raise ConfigError(f"table name {text!r} is not `table` or `schema.table`; quote a name "
                          'that holds a dot: schema."my.table"')
    return (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _parts(text: str) -> Iterator[str]:
    position, length = 0, len(text.strip())
    text = text.strip()
    while position <= length:
        if position < length and text[position] == '"':
            end, part = position + 1, []
            while True:
                close = text.find('"', end)
                if close < 0:
                    raise ConfigError(f"table name {text!r} has an unclosed double quote")
                part.append(text[end:close])
                if text[close + 1:close + 2] == '"':  # "" is a quote inside the name
                    part.append('"')
                    end = close + 2
                    continue
                break
            yield "".join(part)
            position = close + 1
        else:
            dot = text.find(".", position)
            dot = length if dot < 0 else dot
            yield text[position:dot].strip().lower()
            position = dot
        if position < length and text[position] != ".":
            raise ConfigError(f"table name {text!r}: expected a dot after a quoted name")
        position += 1
