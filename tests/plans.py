"""The plan PostgreSQL keeps for a prepared statement (its generic plan), to pin how hot statements
find their rows whatever the statistics of the moment say."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from django.db import transaction
from psycopg import sql

from config.db import bulk_cursor

_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?b(::[\w\[\]]+)?")


def generic_plan(statement: str, params: Mapping | Sequence) -> dict:
    """EXPLAIN (FORMAT JSON) of `statement` (written for config.db.bulk_cursor: %b or %(name)b
    placeholders) as a prepared statement's generic plan, with these parameters. Runs in a transaction
    (or savepoint) rolled back at the end."""
    found = _PLACEHOLDER.findall(statement)  # (name or "", cast or "") per placeholder
    named = isinstance(params, Mapping)
    names = list(dict.fromkeys(name for name, _cast in found)) if named else list(range(len(found)))
    casts: dict = {}
    for index, (name, cast) in enumerate(found):
        casts.setdefault(name if named else index, cast)
    counter = iter(range(1, len(found) + 1))
    numbered = _PLACEHOLDER.sub(
        lambda match: f"${names.index(match[1]) + 1 if named else next(counter)}{match[2] or ''}", statement
    )
    with transaction.atomic(), bulk_cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE generic_plan_probe AS {numbered}")
        values = ", ".join(f"{sql.Literal(params[name]).as_string(cursor)}{casts[name]}" for name in names)
        cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE generic_plan_probe({values})")
        [[[explained]]] = cursor.fetchall()
        cursor.execute("DEALLOCATE generic_plan_probe")
        transaction.set_rollback(True)
    return explained["Plan"]


def table_scans(plan: dict) -> list[tuple[str, str, str]]:
    """(node type, table, index condition) of every read of a table in a plan (writes left out)."""
    found = []
    if "Relation Name" in plan and plan["Node Type"] != "ModifyTable":
        found.append((plan["Node Type"], plan["Relation Name"], plan.get("Index Cond", "")))
    for child in plan.get("Plans", []):
        found += table_scans(child)
    return found
