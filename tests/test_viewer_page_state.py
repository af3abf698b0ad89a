"""The web page's `view` state: each field is written by its owner module only.

``rerun_logging/viewer/static/state.js`` opens with a table of the fields of ``view``,
each with the one module that writes it and the functions it changes it through.
These tests read that table and the page's modules (plain text, no browser) and fail
when a module writes a field it does not own, or when the table and ``view`` disagree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

STATIC = Path(__file__).resolve().parent.parent / "rerun_logging" / "viewer" / "static"

# Strings and comments, removed before looking for writes (the page has no template
# literals with `${}` and no regex literal holding a quote or `//`).
_NOISE = re.compile(
    r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|`(?:\\.|[^`\\])*`|//[^\n]*|/\*.*?\*/', re.S
)
_VIEW = r"(?<![\w$.])view\.([A-Za-z_$][\w$]*)"
_PATH = r"(?:\??\.[A-Za-z_$][\w$]*|\[[^\]\n]*\])*"  # .a, [p] after the field
_ASSIGN_OP = r"(?:\*\*|<<|>>>?|&&|\|\||\?\?|[-+*/%&|^])?=(?![=>])"
_MUTATORS = "push|pop|shift|unshift|splice|sort|reverse|fill|copyWithin|set|add|delete|clear|grow"
_WRITES = [
    re.compile(_VIEW + _PATH + r"\s*" + _ASSIGN_OP),  # view.f = ..., view.f.n += ..., view.f[i] = ...
    re.compile(_VIEW + _PATH + r"\s*(?:\+\+|--)"),  # view.f++
    re.compile(r"(?:\+\+|--)\s*" + _VIEW),  # ++view.f
    re.compile(_VIEW + _PATH + r"\.(?:" + _MUTATORS + r")\s*\("),  # view.f.push(...)
]
_ALIASES = re.compile(r"\bview\s+as\b|\bObject\.(?:assign|defineProperty|defineProperties)\(\s*view\b")


class Owner(NamedTuple):
    module: str
    functions: tuple[str, ...]


def strip_noise(source: str) -> str:
    """`source` with comments removed and strings emptied (line numbers kept)."""

    def blank(m: re.Match[str]) -> str:
        text = m.group(0)
        kept = text[0] * 2 if text[0] in "\"'`" else ""
        return kept + "\n" * text.count("\n")

    return _NOISE.sub(blank, source)


def writes(source: str) -> list[tuple[str, int]]:
    """Every write to a field of `view` in JS `source`: (field, line number)."""
    code = strip_noise(source)
    found = set()
    for pattern in _WRITES:
        for m in pattern.finditer(code):
            found.add((m.group(1), code.count("\n", 0, m.start()) + 1))
    return sorted(found, key=lambda w: (w[1], w[0]))


def owners() -> dict[str, Owner]:
    """The ownership table at the top of state.js: field -> owner."""
    table: dict[str, Owner] = {}
    for line in (STATIC / "state.js").read_text().splitlines():
        if not line.startswith("//"):
            break
        m = re.fullmatch(r"//\s+(\w+)\s+(\w+\.js)\s+(\w+(?:, \w+)*)", line)
        if m:
            field, module, functions = m.groups()
            assert field not in table, f"{field} has two rows in state.js's table"
            table[field] = Owner(module, tuple(functions.split(", ")))
    return table


def view_fields() -> list[str]:
    """The fields of the `view` literal in state.js."""
    source = (STATIC / "state.js").read_text()
    m = re.search(r"export const view = Object\.seal\(\{\n(.*?)\n\}\);", source, re.S)
    assert m, "state.js: `export const view = Object.seal({ ... });` not found"
    return re.findall(r"^  (\w+)\b", m.group(1), re.M)


def modules() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(STATIC.glob("*.js"))}


def test_every_field_of_view_has_one_owner_in_the_table() -> None:
    fields = view_fields()
    assert len(fields) == len(set(fields))
    assert sorted(owners()) == sorted(fields)


def test_each_owner_defines_the_functions_the_table_names() -> None:
    sources = modules()
    for field, owner in owners().items():
        assert owner.module in sources, f"{field}: no module {owner.module}"
        for name in owner.functions:
            assert re.search(rf"\bfunction {name}\(", sources[owner.module]), (
                f"{field}: {owner.module} has no function {name}"
            )


def test_only_its_owner_writes_a_field_of_view() -> None:
    table = owners()
    wrong = []
    for name, source in modules().items():
        for field, line in writes(source):
            owner = table[field].module if field in table else "nobody (not a field of view)"
            if owner != name:
                wrong.append(f"{name}:{line}: writes view.{field}, owned by {owner}")
        if _ALIASES.search(strip_noise(source)):
            wrong.append(f"{name}: renames `view` or writes it through Object.*")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "line, field",
    [
        ("view.selected = 3;", "selected"),
        ("if (x) view.selected=-1;", "selected"),
        ("view.newCount += n;", "newCount"),
        ("view.follow ||= true;", "follow"),
        ("view.renderVersion++;", "renderVersion"),
        ("++view.renderVersion;", "renderVersion"),
        ("view.extraCols.push(key);", "extraCols"),
        ("view.timeRows.clear();", "timeRows"),
        ("view.rows.n = 0;", "rows"),
        ("view.rows.a[p] = i;", "rows"),
        ("const a = 1; view.base = new IntVec(8); // view.rows = x", "base"),
    ],
)
def test_the_check_sees_a_write(line: str, field: str) -> None:
    assert writes(line) == [(field, 1)]


@pytest.mark.parametrize(
    "line",
    [
        "if (view.selected === -1) x = 1;",
        "const ok = view.newCount >= 3 && view.follow <= 2 || view.ready != x;",
        "const n = view.rows.n, p = view.rows.a[k];",
        "const a = view.rows.view().slice().sort();",
        "rows.view().slice().sort(); other.view.selected = 1;",
        "// view.selected = 1 in a comment",
        'const s = "view.selected = 1";',
        "/* view.rows.push(1) */ f(view.rows.a.subarray(0, 3));",
        "const f = (view) => view;",
    ],
)
def test_the_check_ignores_reads(line: str) -> None:
    assert writes(line) == []


def test_the_check_reports_the_line() -> None:
    assert writes('a();\n// x\nconst s = "a\\"b";\n  view.colors = null;\n') == [("colors", 4)]
