"""kdlab pin on a copy of conf/, against a fake Hub (HfApi.repo_info and hf_hub_download replaced). No network."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import yaml

from kdlab import cli
from kdlab.pin import PinError, find_hub_entries, hydra_package, pin

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_kdlabPinTestSecret0123456789abcdef"  # in the environment
OTHER_TOKEN = "hf_kdlabPinOtherSecret0123456789abcdef"  # e.g. from the token file
REPO_TYPES = {  # every Hub repository conf/ names, with its type
    "earino/ecbs5200-week6-teacher-logits": "dataset",
    "earino/ecbs5200-week6-vanilla-baseline": "model",
    "earino/ecbs5200-week6-distilled-student": "model",
    "earino/ecbs5200-week6-grid-results": "dataset",
    "determined-ai/consumer_complaints_medium": "dataset",
    "answerdotai/ModernBERT-base": "model",
}
GRID = [(1, 70), (1, 90), (4, 70), (4, 90), (8, 70), (8, 90)]


def commit_of(repo_id: str) -> str:
    """The commit the fake Hub's `main` names for ``repo_id``."""
    return hashlib.sha1(f"main of {repo_id}".encode()).hexdigest()


def content_of(repo_id: str, filename: str) -> bytes:
    return f"{repo_id}/{filename} at {commit_of(repo_id)}\n".encode()


def digest_of(repo_id: str, filename: str) -> str:
    return hashlib.sha256(content_of(repo_id, filename)).hexdigest()


@pytest.fixture
def conf(tmp_path) -> Path:
    """A copy of the repository's conf/ (the tests edit it)."""
    return Path(shutil.copytree(REPO / "conf", tmp_path / "conf"))


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """Fake Hub: ``state.calls`` records every call; ``fail_resolve`` / ``fail_download`` name a repo / file
    whose call raises an error whose text holds the access token."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    state = SimpleNamespace(calls=[], fail_resolve=None, fail_download=None, cache=tmp_path / "hf-cache")

    class FakeApi:
        def repo_info(self, repo_id, repo_type=None, revision=None, **kwargs):
            state.calls.append(("repo_info", repo_id, repo_type, revision))
            if repo_id == state.fail_resolve or REPO_TYPES.get(repo_id) != repo_type:
                raise ConnectionError(f"404 for https://huggingface.co/api/{repo_type}s/{repo_id} "
                                      f"(Authorization: Bearer {TOKEN})")
            return SimpleNamespace(sha=commit_of(repo_id))

    def fake_download(repo_id, filename, repo_type=None, revision=None, **kwargs):
        state.calls.append(("hf_hub_download", repo_id, filename, repo_type, revision))
        assert revision == commit_of(repo_id), "downloads must name the resolved commit"
        if filename == state.fail_download:
            raise PermissionError(f"401 Unauthorized for {repo_id}/{filename} with token {OTHER_TOKEN}")
        path = state.cache / repo_id / revision / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content_of(repo_id, filename))
        return str(path)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    return state


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run(conf: Path, *options: str) -> int:
    return cli.main(["pin", "--conf", str(conf), *options])


def calls(hub, name):
    return [c for c in hub.calls if c[0] == name]


TEACHER = "earino/ecbs5200-week6-teacher-logits"
TEACHER_FILES = {"train_test_raw": "train_test_logits_qwen3_32b_canonical_raw.npz",
                 "train_test_final": "train_test_logits_qwen3_32b_canonical_final.npz",
                 "val_final": "val_logits_canonical_final.npz", "metadata": "metadata.json"}
ARMS = {"vanilla": "earino/ecbs5200-week6-vanilla-baseline", "kd": "earino/ecbs5200-week6-distilled-student"}
SWEEP = "earino/ecbs5200-week6-grid-results"


# --------------------------------------------------------------------------- #
# The repository's conf/
# --------------------------------------------------------------------------- #
def test_pin_rewrites_only_the_unpinned_values(conf, hub, capsys):
    before = snapshot(conf)
    assert run(conf) == 0
    after = snapshot(conf)
    out = capsys.readouterr().out.splitlines()

    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"profile/audit.yaml", "teacher/published.yaml"}
    assert set(after) == set(before)  # no stray temporary files
    for name in changed:
        old, new = before[name].decode().splitlines(), after[name].decode().splitlines()
        assert len(old) == len(new)
        differing = [(o, n) for o, n in zip(old, new) if o != n]
        # each changed line is the old one with `main` -> a commit or `null` -> a digest, its comment kept
        for o, n in differing:
            assert (re.sub(r"revision: [0-9a-f]{40}\b", "revision: main", n) == o
                    or re.sub(r"sha256: [0-9a-f]{64}\b", "sha256: null", n) == o), (o, n)
        n_artifacts = {"profile/audit.yaml": 8, "teacher/published.yaml": 4}[name]
        assert len(differing) == 2 * n_artifacts
    assert "# not pinned yet" in after["teacher/published.yaml"].decode()  # comments are kept as they were

    assert len(out) == 4 + 8 + 1
    teacher_line = (f"{conf}/teacher/published.yaml: teacher.published.val_final: revision main -> "
                    f"{commit_of(TEACHER)}, sha256 null -> {digest_of(TEACHER, TEACHER_FILES['val_final'])}")
    assert teacher_line in out
    assert any(line.startswith(f"{conf}/profile/audit.yaml: published.sweep[5].file: revision main -> ")
               for line in out)
    assert out[-1] == f"kdlab pin: pinned 12 artifacts in 2 files; review and commit them (git diff {conf})"
    # one resolution per repository: every file of a repository gets the same commit
    assert sorted(c[1] for c in calls(hub, "repo_info")) == sorted([TEACHER, SWEEP, *ARMS.values()])
    assert len(calls(hub, "hf_hub_download")) == 12

    from kdlab.compose import compose
    from kdlab.config import config_from_mapping

    cfg = config_from_mapping(compose(conf, ["profile=audit"]))
    for key, filename in TEACHER_FILES.items():
        artifact = getattr(cfg.teacher.published, key)
        assert (artifact.revision, artifact.sha256) == (commit_of(TEACHER), digest_of(TEACHER, filename))
    for arm, repo_id in ARMS.items():
        artifact = cfg.published.arms[arm]
        assert (artifact.revision, artifact.sha256) == (commit_of(repo_id), digest_of(repo_id, "val_predictions.npz"))
    for cell, (t, a) in zip(cfg.published.sweep, GRID):
        assert (cell.kd_temperature, cell.alpha) == (t, a / 100)
        filename = f"grid_Td{t}_a{a}_val_predictions.npz"
        assert (cell.file.filename, cell.file.revision, cell.file.sha256) == \
               (filename, commit_of(SWEEP), digest_of(SWEEP, filename))
    # URL artifacts and the already pinned dataset are as they were
    hub_train = cfg.data.hub_train
    assert (hub_train.revision, hub_train.sha256) == ("4783de6e089f8ef1dccb26e9f46d491ec0273c83", None)
    assert "/a7b7c44d3d9dbab9dae693c6d25a09fcac3efe5e/" in cfg.data.course_files.label_list.url


def test_a_second_run_changes_nothing(conf, hub, capsys):
    assert run(conf) == 0
    pinned = snapshot(conf)
    hub.calls.clear()
    capsys.readouterr()
    assert run(conf) == 0
    assert snapshot(conf) == pinned
    assert hub.calls == []  # commits need no resolving, digests no download
    assert capsys.readouterr().out == f"kdlab pin: every Hub artifact in {conf} is pinned; nothing to change\n"


def test_dry_run_writes_nothing(conf, hub, capsys):
    before = snapshot(conf)
    assert run(conf, "--dry-run") == 0
    assert snapshot(conf) == before
    out = capsys.readouterr().out.splitlines()
    assert f"{conf}/profile/audit.yaml: published.arms.kd: revision main -> {commit_of(ARMS['kd'])}, " \
           f"sha256 null -> {digest_of(ARMS['kd'], 'val_predictions.npz')}" in out
    assert out[-1] == "kdlab pin: dry run: 12 artifacts in 2 files would change; nothing was written"


def test_only_revisions_downloads_nothing(conf, hub, capsys):
    assert run(conf, "--only-revisions") == 0
    assert calls(hub, "hf_hub_download") == []
    cfg_files = {name: yaml.safe_load(text) for name, text in snapshot(conf).items()}
    teacher = cfg_files["teacher/published.yaml"]["published"]
    assert all((a["revision"], a["sha256"]) == (commit_of(TEACHER), None) for a in teacher.values())
    out = capsys.readouterr().out.splitlines()
    assert f"{conf}/teacher/published.yaml: teacher.published.metadata: revision main -> {commit_of(TEACHER)}" in out
    assert out[-1] == ("kdlab pin: 12 artifacts still have no sha256; run kdlab pin without --only-revisions "
                       "to record them")


@pytest.mark.parametrize("failure", ["download", "resolve"])
def test_a_failure_on_one_artifact_leaves_every_file_untouched(conf, hub, capsys, failure):
    # the teacher's files are resolved last (conf/teacher/ sorts after conf/profile/), so audit.yaml
    # was fully resolved when the error came: it must not have been written either
    if failure == "download":
        hub.fail_download = "metadata.json"
    else:
        hub.fail_resolve = TEACHER
    before = snapshot(conf)
    assert run(conf) == 1
    assert snapshot(conf) == before
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert TOKEN not in err and OTHER_TOKEN not in err
    err = err.splitlines()[-1]  # after the progress lines
    assert err.startswith("kdlab: error: ") and err.endswith("nothing was written")
    if failure == "download":
        assert f"{conf}/teacher/published.yaml: teacher.published.metadata: could not download metadata.json from " \
               f"dataset {TEACHER}@{commit_of(TEACHER)} (PermissionError: 401 Unauthorized for " \
               f"{TEACHER}/metadata.json with token hf_***); " in err
        assert "--only-revisions" in err
    else:
        assert f"{conf}/teacher/published.yaml: teacher.published.train_test_raw: could not resolve revision " \
               f"'main' of dataset {TEACHER} (ConnectionError: 404 for https://huggingface.co/api/datasets/{TEACHER} " \
               "(Authorization: Bearer ***)); " in err
    assert "hf auth login" in err


def test_globs_get_their_revision_pinned_but_no_sha256(conf, hub, capsys):
    hub_yaml = conf / "data" / "hub.yaml"
    text = hub_yaml.read_text()
    assert text.count("revision: 4783de6e089f8ef1dccb26e9f46d491ec0273c83") == 2
    hub_yaml.write_text(text.replace("revision: 4783de6e089f8ef1dccb26e9f46d491ec0273c83", "revision: main"))
    assert run(conf) == 0
    dataset = "determined-ai/consumer_complaints_medium"
    assert hub_yaml.read_text() == text.replace("4783de6e089f8ef1dccb26e9f46d491ec0273c83", commit_of(dataset))
    assert not any(c[1] == dataset for c in calls(hub, "hf_hub_download"))
    assert f"{conf}/data/hub.yaml: data.hub_train: revision main -> {commit_of(dataset)}" in \
           capsys.readouterr().out.splitlines()


# --------------------------------------------------------------------------- #
# YAML details, on small files
# --------------------------------------------------------------------------- #
def test_other_value_spellings_and_a_backbone(tmp_path, hub):
    conf = tmp_path / "conf"
    (conf / "student").mkdir(parents=True)
    text = ("# a backbone (no filename: a model repository) and artifacts written in other styles\n"
            "source: hub\n"
            "repo_id: answerdotai/ModernBERT-base\n"
            "revision: \"main\"   # quoted\n"
            "files:\n"
            "  - {repo_id: earino/ecbs5200-week6-grid-results, filename: a.npz, revision: ~, sha256: null}\n"
            "  - repo_id: earino/ecbs5200-week6-grid-results\n"
            "    filename: b.npz\n"
            "    revision:\n"
            "    sha256:\n"
            "    local: null\n"
            "  - url: https://raw.githubusercontent.com/o/r/0123456789012345678901234567890123456789/c.json\n"
            "    sha256: null\n")
    (conf / "student" / "modernbert.yaml").write_text(text)
    lines = []
    pin(conf, out=lines.append, progress=lambda _: None)
    new = (conf / "student" / "modernbert.yaml").read_text()
    model, grid = commit_of("answerdotai/ModernBERT-base"), commit_of(SWEEP)
    assert new == (text.replace('"main"', model)
                   .replace("revision: ~, sha256: null", f"revision: {grid}, sha256: {digest_of(SWEEP, 'a.npz')}")
                   .replace("    revision:\n    sha256:\n",
                            f"    revision: {grid}\n    sha256: {digest_of(SWEEP, 'b.npz')}\n"))
    assert lines[0] == f"{conf}/student/modernbert.yaml: student: revision main -> {model}"
    assert lines[1].startswith(f"{conf}/student/modernbert.yaml: student.files[0]: revision null -> {grid}, "
                               "sha256 null -> ")
    assert ("repo_info", "answerdotai/ModernBERT-base", "model", "main") in hub.calls


def test_a_commit_that_reads_as_a_number_is_quoted(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text("w:\n  repo_id: o/r\n  revision: main\n")
    numeric = "1234567890" * 3 + "1234e56789"
    fake_api = SimpleNamespace(repo_info=lambda *args, **kwargs: SimpleNamespace(sha=numeric))
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: fake_api)
    pin(conf, out=lambda _: None)
    assert (conf / "config.yaml").read_text() == f'w:\n  repo_id: o/r\n  revision: "{numeric}"\n'
    assert yaml.safe_load((conf / "config.yaml").read_text())["w"]["revision"] == numeric


@pytest.mark.parametrize("text, problem", [
    ("x:\n  repo_id: o/r\n  filename: f.npz\n  revision: main\n",
     "x: has no `sha256:` key; add `sha256: null` and run kdlab pin again."),
    ("x:\n  repo_id: o/r\n  filename: f.npz\n  revision: &branch main\n  sha256: null\n",
     "x.revision: a value with an anchor or a tag cannot be pinned in place; write it out plainly."),
], ids=["no sha256 key", "an anchor"])
def test_entries_that_cannot_be_pinned_in_place_are_refused_before_any_hub_call(tmp_path, hub, text, problem):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(text)
    with pytest.raises(PinError) as info:
        pin(conf, out=lambda _: None)
    assert str(info.value) == f"{conf}/config.yaml: {problem} nothing was written"
    assert hub.calls == [] and (conf / "config.yaml").read_text() == text


def test_where_hydra_puts_a_files_keys():
    assert hydra_package(Path("teacher/published.yaml"), "# The study's teacher\nsource: published\n") == ("teacher",)
    assert hydra_package(Path("profile/audit.yaml"), "# @package _global_\n# CPU + internet\nprofile: audit\n") == ()
    assert hydra_package(Path("config.yaml"), "seed: 42\n") == ()
    assert hydra_package(Path("a/b.yaml"), "# @package _group_.x\n") == ("a", "x")
    entries = find_hub_entries((REPO / "conf/profile/audit.yaml").read_text(), "audit.yaml", ())
    assert [e.where for e in entries] == ["published.arms.vanilla", "published.arms.kd"] + \
                                        [f"published.sweep[{i}].file" for i in range(6)]
