"""The files a stage's code can read: its module's import closure inside ``kdlab``, package data included.

Imports anywhere in a module count (the stages import heavy libraries inside functions); a
``from kdlab import x`` counts ``kdlab/x.py`` when that is a module. Every package ``__init__``
on the way is executed, so it counts too. A string literal naming a file that lies in the
package (e.g. ``"taxonomy.json"``) counts that file. Dynamic imports (``importlib``) are the
one thing an AST cannot follow: :data:`DYNAMIC` says, for each module that makes one, which
modules it can load for a given stage, and the closure refuses any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "kdlab"


def module_file(name: str) -> Path | None:
    """``kdlab.a.b`` -> src/kdlab/a/b.py or src/kdlab/a/b/__init__.py (None if neither exists)."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(path: Path) -> tuple[set[str], bool]:
    """(kdlab modules ``path`` imports anywhere, whether it calls importlib.import_module)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    dynamic = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "kdlab"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "kdlab":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module":
            dynamic = True
    return found, dynamic


def data_files(path: Path) -> set[Path]:
    """Files of the package (not .py) whose name appears as a string literal in ``path``."""
    names = {c.value for c in ast.walk(ast.parse(path.read_text())) if isinstance(c, ast.Constant)
             and isinstance(c.value, str)}
    return {f for f in PACKAGE.rglob("*") if f.is_file() and f.suffix != ".py" and "__pycache__" not in f.parts
            and f.name in names}


def closure(roots: list[str], dynamic: dict[str, list[str]]) -> set[Path]:
    """Every file the modules ``roots`` can import or read; ``dynamic`` maps a module that imports
    dynamically to the modules it may load (a module missing there is an error)."""
    todo, seen, files = list(roots), set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        if path is None:
            continue  # an attribute imported from a package, e.g. `from kdlab.config import Config`
        files.add(path)
        files |= data_files(path)
        found, makes_dynamic = imported_modules(path)
        if makes_dynamic:
            if name not in dynamic:
                raise AssertionError(f"{path} imports modules dynamically: say which in import_closure.DYNAMIC")
            found |= set(dynamic[name])
        todo += [m for m in found | set(_package_inits(name)) if m not in seen]
    return files


def missing_deps(dvc_yaml: Path) -> dict[str, list[str]]:
    """For each stage of dvc.yaml, the files of its import closure its deps do not cover (a developer aid:
    ``python tests/import_closure.py`` prints them; tests/test_dvc_graph.py fails on them)."""
    import yaml

    from kdlab.analyses import ANALYSES

    out = {}
    for name, spec in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        body = spec.get("do", spec)
        module = next(w for w in body["cmd"].split() if w.startswith("kdlab.stages."))
        items = spec["foreach"] if name == "analyze" else [None]
        for item in items:
            roots = [module] + ([f"kdlab.analyses.{item}"] if item else [])
            dynamic = {"kdlab.analyses": [f"kdlab.analyses.{a}" for a in ANALYSES] if name == "report" else
                       [f"kdlab.analyses.{item}"] if item else []}
            deps = [d.replace("${item}", item) if item else d for d in body["deps"]]
            need = sorted(str(p.relative_to(SRC.parent)) for p in closure(roots, dynamic))
            gone = [p for p in need if not any(p == d or p.startswith(d.rstrip("/") + "/") for d in deps)]
            if gone:
                out[name] = sorted(set(out.get(name, [])) | set(gone))
    return out


if __name__ == "__main__":
    for stage, files in missing_deps(SRC.parent / "dvc.yaml").items():
        print(stage, files)
