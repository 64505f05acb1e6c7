"""Rules written back as TOML in the shipped format (`execdb rules export`), read by tomllib.

Only what a rule table holds is needed: strings, whole numbers and lists of strings. Patterns
are written as literal strings ('...') where they can be, so that `\\d+` reads as in the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_BARE_KEY_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def _string(value: str) -> str:
    literal_ok = "'" not in value and all(c == "\t" or " " <= c != "\x7f" for c in value)
    if literal_ok:
        return f"'{value}'"
    # A JSON string is a TOML basic string: the same escapes, \uXXXX included.
    return json.dumps(value, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        if len(value) <= 1:
            return "[" + ", ".join(_value(v) for v in value) + "]"
        return "[\n" + "".join(f"    {_value(v)},\n" for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(name: str) -> str:
    if name and set(name) <= _BARE_KEY_SAFE:
        return name
    return json.dumps(name)


def dump_rules(rules: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """`["rule.id"]` tables, one per rule, in the order given (the id quoted whole, as the
    shipped file does: a dotted key would be nested tables)."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    for rule_id, table in rules.items():
        if out:
            out.append("")
        out.append(f"[{json.dumps(rule_id)}]")
        out.extend(f"{_key(k)} = {_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"
