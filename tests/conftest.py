"""Shared fixtures: params.yaml, the reference course files, and the demo DAG run once per session."""

from __future__ import annotations

import copy
import os
import shutil
import signal
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


class DemoBuild:
    """The demo DAG (`dvc exp run -S profile=demo` in a fresh copy of the repository), started in the
    background as soon as the tests are collected: the tests that need it run last (see
    pytest_collection_modifyitems), so the others use the time it trains. Two cores are then shared by
    two processes; the outputs do not depend on it (the lock test compares them byte for byte)."""

    def __init__(self, root: Path):
        self.repo = copy_repo(root / "repo")
        self.log = root / "dvc-exp-run.log"
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0"}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(["dvc", "exp", "run", "-S", "profile=demo"], cwd=self.repo, env=env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self) -> Path:
        if self.process.wait() != 0:
            raise AssertionError(f"dvc exp run -S profile=demo failed ({self.process.returncode}):\n"
                                 f"{self.log.read_text()[-6000:]}")
        return self.repo

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


_DEMO: list[DemoBuild] = []


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: build the demo only when a selected test needs it
def pytest_collection_modifyitems(session, config, items):
    """Tests that use the demo DAG's outputs run after all others, and the DAG starts building now."""
    needs = {id(item) for item in items if "demo_repo" in getattr(item, "fixturenames", ())}
    items[:] = [i for i in items if id(i) not in needs] + [i for i in items if id(i) in needs]
    if needs and not os.environ.get("KDLAB_DEMO_REPO") and not config.option.collectonly:
        _DEMO.append(DemoBuild(config._tmp_path_factory.mktemp("kdlab-demo")))


def pytest_sessionfinish(session, exitstatus):
    for build in _DEMO:  # an interrupted or -x session leaves no training behind
        build.stop()


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory) -> Path:
    """A temporary copy of the repository after `dvc exp run -S profile=demo` (the whole demo DAG)."""
    reuse = os.environ.get("KDLAB_DEMO_REPO")  # developers: a demo repo this fixture built earlier
    if reuse:
        return Path(reuse)
    if not _DEMO:  # collected by another route (e.g. a plugin reordering): build it here
        _DEMO.append(DemoBuild(tmp_path_factory.mktemp("kdlab-demo")))
    return _DEMO[0].wait()
