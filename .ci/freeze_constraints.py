"""Write constraints.txt: the versions this environment's tests passed on, for kdlab and what it pulls in.

    python .ci/freeze_constraints.py            # rewrite constraints.txt from this environment
    python .ci/freeze_constraints.py --check    # exit 1 if constraints.txt differs from this environment

Lines come from ``pip freeze``, kept to the dependency closure of kdlab[dev]
(its requirements, theirs, and so on, markers evaluated here), so tools that
merely share the environment are not pinned. kdlab itself is left out (it is
installed from the checkout). torch is recorded in a comment, not pinned: a
CPU machine installs the pinned CPU wheel first (README, .ci/run) and a
Kaggle/Colab GPU image keeps its own CUDA build.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "constraints.txt"
NOT_PINNED = {"torch"}
# A pin that has no wheel for a newer Python applies only where it was tested: orjson 3.8.3 has no
# cp312 wheel (Colab runs 3.12) and building it needs a Rust toolchain.
MARKERS = {"orjson": 'python_version < "3.12"'}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str, extras: tuple[str, ...]) -> set[str]:
    """Canonical names of every installed distribution ``root[extras]`` requires, transitively."""
    seen: set[str] = set()
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional requirement whose marker holds but that is not installed
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = (canonical(req.name), tuple(sorted(req.extras)))
            if key not in seen:
                seen.add(key)
                todo.append((req.name, tuple(sorted(req.extras))))
    return {name for name, _ in seen}


def render() -> str:
    names = closure("kdlab", ("dev",))
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    pins, torch = [], None
    for line in frozen:
        if "==" not in line or line.startswith("#"):
            continue
        name, version = line.split("==", 1)
        if canonical(name) == "torch":
            torch = version
        elif canonical(name) in names and canonical(name) not in NOT_PINNED and canonical(name) != "kdlab":
            marker = MARKERS.get(canonical(name))
            pins.append(f"{name}=={version}" + (f"; {marker}" if marker else ""))
    header = [
        "# The versions kdlab's tests passed on (CI: .ci/run installs with -c constraints.txt).",
        f"# Python {sys.version_info.major}.{sys.version_info.minor}; torch {torch} "
        "(not pinned here: install it first, see README).",
        "# Regenerate from a tested environment: python .ci/freeze_constraints.py",
    ]
    return "\n".join(header + sorted(pins, key=str.lower)) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with constraints.txt instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        same = TARGET.exists() and TARGET.read_text() == text
        print(f"{TARGET.name}: {'matches' if same else 'differs from'} this environment")
        return 0 if same else 1
    tmp = TARGET.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(TARGET)
    print(f"wrote {TARGET.name}: {text.count(chr(10)) - 3} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
