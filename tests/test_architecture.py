"""Dependencies point one way (face → sweep → studies → train/probes → models/worlds), read from
the source's import statements, so a new import against the grain fails here."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "iclab"

#: package (or top-level module) -> the iclab packages it may import, besides itself
ALLOWED: dict[str, set[str]] = {
    "errors": set(), "atomic": set(), "rows": set(), "progress": set(), "figures": set(), "limits": set(),
    "config": {"errors", "limits"},
    "worlds": {"errors", "limits"},
    "metrics": {"errors"},
    "tasks": {"errors"},
    "baselines": {"errors", "worlds"},
    "models": {"errors", "limits"},
    "runs": {"errors", "atomic", "rows"},
    "probes": {"errors", "limits", "rows", "models", "worlds", "metrics", "tasks"},
    "train": {"errors", "limits", "rows", "config", "progress", "models", "worlds"},
    "studies": {"errors", "limits", "atomic", "rows", "config", "progress", "figures", "runs", "models", "worlds",
                "metrics", "tasks", "baselines", "probes", "train"},
    "sweep": {"errors", "atomic", "rows", "config", "progress", "runs", "studies"},
}
FACE = {"api", "cli", "__init__", "__main__"}


def _imports(path: Path) -> set[str]:
    """The iclab packages a file imports (``iclab.x.y`` -> ``x``), at any depth in the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "iclab" and len(parts) > 1:
                out.add(parts[1])
    return out


def test_dependencies_point_one_way():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        owner = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if owner in FACE:
            continue
        assert owner in ALLOWED, f"{rel}: add its package to ALLOWED"
        bad = _imports(path) - ALLOWED[owner] - {owner}
        wrong += [f"{rel} imports iclab.{b}" for b in sorted(bad)]
    assert not wrong, "imports against the grain:\n" + "\n".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from iclab.api import run\n")
    assert _imports(f) == {"api"}


def test_worlds_do_not_import_torch():
    """Worlds are pure NumPy, so data generation never waits on torch (DESIGN.md)."""
    for path in sorted((SRC / "worlds").rglob("*.py")):
        tree = ast.parse(path.read_text())
        mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not mods & {"torch", "transformers"}, f"{path.name} imports torch"
