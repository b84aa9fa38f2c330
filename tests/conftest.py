"""Shared fixtures: params.yaml, the reference course files, and the demo DAG run once per session."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COURSE_DATA = Path(__file__).resolve().parents[2] / "shared" / "course-data"
_COMPOSED: dict[tuple[str, ...], dict] = {}


def composed(*overrides: str) -> dict:
    """params.yaml as `dvc exp run -S <override> ...` would compose it from conf/ (a fresh copy)."""
    if overrides not in _COMPOSED:
        from kdlab.compose import compose

        _COMPOSED[overrides] = compose(REPO / "conf", overrides)
    return copy.deepcopy(_COMPOSED[overrides])


@pytest.fixture
def params_raw() -> dict:
    """The train profile's params mapping, the paper recipe (a fresh copy: tests may edit it freely)."""
    return composed("profile=train")


@pytest.fixture
def course_data() -> Path:
    """The reference course files (../shared/course-data); skip when they are not there."""
    if not (COURSE_DATA / "label_list.json").is_file():
        pytest.skip(f"reference course files not found in {COURSE_DATA}")
    return COURSE_DATA


@pytest.fixture(scope="session")
def good_repos(tmp_path_factory):
    """The good tiny repositories the bad-input cases break copies of (tests/bad_inputs.py)."""
    from bad_inputs import GoodRepos

    return GoodRepos(tmp_path_factory.mktemp("good-repos"))


# what a clone holds that the pipeline reads (the committed dvc.lock and headline metrics included)
COPY = ["src", "conf", "params.yaml", "dvc.yaml", "dvc.lock", "metrics/headline", "reports/paper.tex",
        "pyproject.toml", ".gitignore", ".dvcignore"]


def run(cmd: list[str], cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command in ``cwd`` with analytics off (and ``env`` added); on failure show the tail of its output."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0", **(env or {})}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def copy_repo(dest: Path) -> Path:
    """The repository's tracked inputs in a fresh git + DVC repo at ``dest``."""
    for item in COPY:
        src = REPO / item
        if not src.exists():
            continue
        target = dest / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, target)
    run(["git", "init", "-q"], dest)
    run(["git", "config", "user.email", "ci@example.invalid"], dest)
    run(["git", "config", "user.name", "kdlab ci"], dest)
    run(["dvc", "init", "-q"], dest)
    shutil.copy2(REPO / ".dvc" / "config", dest / ".dvc" / "config")  # hydra.enabled: params.yaml from conf/
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "copy"], dest)
    return dest


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory) -> Path:
    """A temporary copy of the repository after `dvc exp run -S profile=demo` (the whole demo DAG)."""
    reuse = os.environ.get("KDLAB_DEMO_REPO")  # developers: a demo repo this fixture built earlier
    if reuse:
        return Path(reuse)
    repo = copy_repo(tmp_path_factory.mktemp("kdlab-demo"))
    run(["dvc", "exp", "run", "-S", "profile=demo"], repo)
    return repo
