"""DVC's own view of the demo run: the lock a clone writes is the committed one, an edit reruns only the
stages that read it, `dvc exp show` / `dvc metrics show` show the values that ran, and the README's queued
sweep runs. Uses the session's demo repository (``demo_repo``); marked ``e2e``."""

from __future__ import annotations

import json
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run

pytestmark = pytest.mark.e2e


def lock_entries(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["stages"]


def test_the_committed_lock_is_what_a_fresh_clone_writes(demo_repo):
    """Every stage's command, dependency hashes, params and output hashes, as `dvc exp run -S profile=demo`
    writes them in a fresh copy, equal the committed dvc.lock: anyone can reproduce it."""
    built, committed = lock_entries(demo_repo / "dvc.lock"), lock_entries(REPO / "dvc.lock")
    assert sorted(built) == sorted(committed), set(built) ^ set(committed)
    differ = {name: [k for k in ("cmd", "deps", "params", "outs") if built[name].get(k) != committed[name].get(k)]
              for name in built if built[name] != committed[name]}
    assert not differ, f"stages whose lock entry differs from the committed dvc.lock: {differ}"


def test_the_committed_headline_metrics_are_the_demo_runs(demo_repo):
    for path in sorted((REPO / "metrics" / "headline").glob("*.json")):
        assert (demo_repo / "metrics" / "headline" / path.name).read_text() == path.read_text(), path.name


@contextmanager
def edited_params(repo: Path, edit):
    path = repo / "params.yaml"
    before = path.read_text()
    raw = yaml.safe_load(before)
    edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        yield
    finally:
        path.write_text(before)


def changed_stages(repo: Path) -> set[str]:
    return set(json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}"))


@pytest.mark.parametrize("key, value, expected", [
    (("optim", "log_every"), 7, {f"train@{a}" for a in ("vanilla", "kd")} | {"sweep@4-0.7"}),
    (("evaluation", "bootstrap", "resamples"), 999, {"study"}),
    (("arms", "kd", "alpha"), 0.5, {"train@kd", "study"}),
    (("teacher", "trained", "optim", "log_every"), 7, {"teacher"}),
], ids=["optim", "evaluation", "one arm", "teacher"])
def test_an_edit_reruns_only_the_stages_that_read_it(demo_repo, key, value, expected):
    """`dvc status` right after an edit: the stages that list the value, none other (the stages after
    `study` rerun only if results/study.json changes)."""
    def edit(raw):
        node = raw
        for k in key[:-1]:
            node = node[k]
        node[key[-1]] = value

    with edited_params(demo_repo, edit):
        changed = changed_stages(demo_repo)
    assert expected <= changed, (expected - changed, changed)
    readers = {"optim": r"^(train|sweep)@", "evaluation": r"^study$", "arms": r"^(train@kd|study)$",
               "teacher": r"^teacher$"}[key[0]]
    assert all(re.match(readers, name) for name in changed), changed


def test_an_audit_only_value_changes_nothing_in_a_demo_run(demo_repo):
    """The audit profile's values are not in the demo's params.yaml at all: editing them (conf/profile/audit.yaml)
    and recomposing the demo's params gives the same file, so nothing reruns."""
    from kdlab.compose import write_params

    conf = demo_repo / "conf"
    audit = conf / "profile" / "audit.yaml"
    before = audit.read_text()
    try:
        audit.write_text(before.replace("need_train_logits: false", "need_train_logits: true"))
        write_params(conf, demo_repo / "params.yaml", ["profile=demo"])
        assert not changed_stages(demo_repo)
    finally:
        audit.write_text(before)


def test_exp_show_reports_the_values_that_ran(demo_repo):
    shown = json.loads(run(["dvc", "exp", "show", "--json", "--no-fetch"], demo_repo).stdout)
    rows = [row for rev in shown for row in [rev] + [e for exps in (rev.get("experiments") or []) for e in
                                                     exps.get("revs", [])]]
    params = [r["data"]["params"]["params.yaml"]["data"] for r in rows if r.get("data", {}).get("params")]
    demo = [p for p in params if p["profile"] == "demo"]
    assert demo, params
    for p in demo:
        assert p["optim"]["learning_rate"] == 0.002 and p["student"]["source"] == "tiny"
        assert p["data"]["source"] == "synthetic"


def test_metrics_show_is_a_small_table(demo_repo):
    text = run(["dvc", "metrics", "show"], demo_repo).stdout
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].split()[0] == "Path" and len(lines) == 1 + 17, text  # the teacher, 10 arms, 6 sweep cells
    assert max(map(len, lines)) <= 120, max(map(len, lines))
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], demo_repo).stdout)
    files = next(iter(shown.values()))["data"]
    assert all(path.startswith("metrics/headline/") for path in files), list(files)
    assert all(len(entry["data"]) <= 8 for entry in files.values())


def readme_block(title: str) -> list[str]:
    """The shell commands of the README code block that follows the line containing ``title``."""
    text = (REPO / "README.md").read_text()
    start = text.index(title)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_queued_sweep_runs_on_the_demo(demo_repo, tmp_path):
    """The README's queued example, run as written in a copy of the demo repository: every experiment
    it queues succeeds, and `dvc exp show` then lists them."""
    repo = tmp_path / "repo"
    shutil.copytree(demo_repo, repo, symlinks=True)
    commands = readme_block("Queue a sweep")
    queued = [c for c in commands if c.startswith("dvc exp run --queue")]
    assert queued and any(c.startswith("dvc queue start") for c in commands), commands
    for command in commands:
        if command.startswith("dvc exp show"):
            continue
        run(["bash", "-c", command], repo)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], repo).stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(5)
    assert "Failed" not in status and status.count("Success") == 2, status
    # every `dvc exp show` line of the README (its views and this example) fits 120 columns, nothing elided
    views = [c for c in readme_block("- **Views.**") + commands if c.startswith("dvc exp show")]
    assert len(views) == 3, views
    too_wide = []
    for command in views:
        shown = run(["bash", "-c", command], repo, env={"COLUMNS": "120"}).stdout
        lines = [line for line in shown.splitlines() if line.strip()]
        if "\u2026" in shown or max(map(len, lines)) > 120:
            too_wide.append(f"{command}\n{shown}")
    assert not too_wide, "\n".join(too_wide)
    assert "arms.kd.alpha" in run(["bash", "-c", views[-1]], repo, env={"COLUMNS": "120"}).stdout
