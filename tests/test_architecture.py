"""The README's Architecture section is the package's import graph, and stays so.

Each bullet there of the form ``- `module` → `a`, `b` ...`` names every module of
ours that ``module`` imports (anywhere in it, lazily too; ``TYPE_CHECKING`` blocks
aside), and ``- `a`, `b`: import nothing of ours`` lists the bottom. Every module
of the package is named by one bullet. Also here: no module outside its sink's own
and the grammar compares sink mode names (issue 12's rule).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rerun_logging"
MODE_NAMES = ("off", "memory", "stdout", "save", "connect", "spawn", "serve")


def module_name(path: Path) -> str:
    """``handler``, ``sinks.tcp``, ``format`` (a package by its own name)."""
    parts = path.with_suffix("").relative_to(PACKAGE).parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "rerun_logging"


def all_modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "_sitedir" in path.parts or path.name == "__main__.py":
            continue
        found[module_name(path)] = path
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST) -> list[ast.AST]:
    """Every node under ``node``, ``if TYPE_CHECKING:`` bodies left out."""
    out: list[ast.AST] = []
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            continue
        out.append(child)
        out.extend(_walk(child))
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level:
            base = [p for p in package.split(".") if p and p != "rerun_logging"]
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            stem = ".".join(base + ([node.module] if node.module else []))
            # ``from X import a``: the module X.a if there is one, else X itself
            targets = [f"{stem}.{a.name}".lstrip(".") if f"{stem}.{a.name}".lstrip(".") in modules
                       else stem for a in node.names]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            targets = [n.removeprefix("rerun_logging.") for n in names if n.startswith("rerun_logging.")]
        for target in targets:  # the longest name that is a module of ours
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}.") \
                    and not target.startswith(f"{name}."):
                found.add(target)
    return found


_ARROW = re.compile(r"`([\w.]+)` → (nothing|(?:`[\w.]+`(?:, )?)+)")
"""``- `a` → `b`, `c``` (several per bullet, split by ``;``), or ``- `a` → nothing``."""


def readme_graph() -> tuple[dict[str, set[str]], set[str]]:
    """The bullets of the README's Architecture section: the arrows, and the bottom."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    bullets = re.split(r"\n(?=- )", section)
    arrows: dict[str, set[str]] = {}
    bottom: set[str] = set()
    for bullet in bullets:
        bullet = " ".join(bullet.split())
        for name, targets in _ARROW.findall(bullet):
            arrows[name] = set(re.findall(r"`([\w.]+)`", targets))
        if ": import nothing of ours" in bullet:
            bottom |= set(re.findall(r"`([\w.]+)`", bullet.split(":", 1)[0]))
    return arrows, bottom


def test_the_readme_names_every_import_of_every_module() -> None:
    modules = all_modules()
    arrows, bottom = readme_graph()
    named = set(arrows) | bottom
    assert sorted(set(modules) - named) == [], "modules the Architecture section leaves out"
    assert sorted(named - set(modules)) == [], "names there that are no module of ours"
    assert not set(arrows) & bottom
    for name, path in modules.items():
        actual = imports_of(name, path, modules)
        if name in bottom:
            assert actual == set(), f"{name} is listed as the bottom but imports {sorted(actual)}"
        else:
            assert actual == arrows[name], (
                f"README says {name} → {sorted(arrows[name])}; it imports {sorted(actual)}"
            )


def test_the_scanner_reads_lazy_and_aliased_imports() -> None:
    modules = all_modules()
    assert "viewer.report" in imports_of("instrument.runner", modules["instrument.runner"], modules)
    assert "format" in imports_of("capture", modules["capture"], modules)
    assert "sinks.base" in imports_of("sinks.tcp", modules["sinks.tcp"], modules)
    assert imports_of("format.schema", modules["format.schema"], modules) == set()


_COMPARISON = re.compile(
    r"""(?:==|!=|\bin\b|\bis\b)\s*[(\[{]?\s*["'](?:%s)["']|["'](?:%s)["']\s*(?:==|!=)"""
    % ("|".join(MODE_NAMES), "|".join(MODE_NAMES))
)


def test_no_mode_name_comparison_outside_the_sinks_and_the_grammar() -> None:
    offenders = []
    for name, path in all_modules().items():
        if name.startswith("sinks") or name == "spec":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _COMPARISON.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_comparison_check_catches_the_old_forms() -> None:
    caught = ['s.mode in ("save", "stdout")', 'if spec.mode == "serve":', '"connect" != mode']
    passed = ['mode_of(spec).serves_page', 'getattr(args, "save", None)', 'name = "spawn"']
    assert all(_COMPARISON.search(line) for line in caught)
    assert not any(_COMPARISON.search(line) for line in passed)
