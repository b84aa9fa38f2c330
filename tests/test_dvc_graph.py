"""What DVC records is what ran: dvc.yaml's deps cover each stage's code, each stage reads only the
params it lists, the sweep's stage names are the run folders kdlab reads, and remote inputs are pinned."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from kdlab.analyses import ANALYSES
from kdlab.config import config_from_mapping
from kdlab.paths import Layout
from kdlab.stages.common import STUDY_KEYS
from kdlab.tracked import ALL, UntrackedParamError, restrict, stage_params

from conftest import REPO, composed
from import_closure import SRC, closure

DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = DVC_YAML["stages"]
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def module_of(cmd: str) -> str:
    match = re.match(r"(?:python -m|\$\{optim\.launcher\}) (kdlab\.stages\.\w+)", cmd)
    assert match, (f"dvc.yaml: stage command {cmd!r} is neither `python -m kdlab.stages.<stage>` nor "
                   "`${optim.launcher} kdlab.stages.<stage>`")
    return match.group(1)


def test_a_launcher_in_a_command_is_a_param_the_stage_tracks():
    """DVC interpolates `${optim.launcher}` into the training commands; kdlab.tracked needs every
    interpolated param listed, and the default must keep the command `python -m ...`."""
    from kdlab.config import DEFAULT_LAUNCHER

    users = [name for name, spec in STAGES.items() if "${optim.launcher}" in spec.get("do", spec)["cmd"]]
    assert sorted(users) == ["sweep", "train"]
    for name in users:
        assert "optim" in STAGES[name].get("do", STAGES[name])["params"], name
    assert DEFAULT_LAUNCHER == "python -m"
    for raw in (composed("profile=train"), composed("profile=demo"), composed("profile=audit")):
        assert raw["optim"]["launcher"] == DEFAULT_LAUNCHER


def stage_variants() -> list[tuple[str, dict, list[str], dict]]:
    """(stage name, definition, the roots of its import closure, dynamic imports) per stage and variant."""
    variants = []
    for name, spec in STAGES.items():
        body = spec.get("do", spec)
        module = module_of(body["cmd"])
        if name == "analyze":
            for item in spec["foreach"]:
                variants.append((f"analyze@{item}", body, [module, f"kdlab.analyses.{item}"],
                                 {"kdlab.analyses": [f"kdlab.analyses.{item}"]}, {"item": item}))
        elif name == "report":  # renders every analysis
            variants.append((name, body, [module], {"kdlab.analyses": [f"kdlab.analyses.{a}" for a in ANALYSES]}, {}))
        else:
            variants.append((name, body, [module], {"kdlab.analyses": []}, {}))
    return variants


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("variant", stage_variants(), ids=lambda v: v[0])
def test_deps_cover_the_import_closure_of_each_stage(variant):
    """Editing any file a stage's code can import or read must rerun that stage (`dvc repro` would
    otherwise say "up to date" over stale results)."""
    name, body, roots, dynamic, subst = variant
    deps = [d.replace("${item}", subst.get("item", "${item}")) for d in body["deps"]]
    needed = sorted(str(p.relative_to(SRC.parent)) for p in closure(roots, dynamic))
    missing = [p for p in needed if not covered(p, deps)]
    assert not missing, f"dvc.yaml: stage {name} imports or reads {missing} but does not list them in deps"
    stray = [d for d in deps if d.startswith("src/") and not (REPO / d).exists()]
    assert not stray, f"dvc.yaml: stage {name} lists deps that do not exist: {stray}"


def test_study_tracks_the_keys_the_later_stages_read():
    assert STAGES["study"]["params"] == list(STUDY_KEYS)
    for name in ("calibrate", "evaluate", "analyze", "report"):
        body = STAGES[name].get("do", STAGES[name])
        assert "params" not in body and covered("results/study.json", body["deps"]), name


def test_dvc_expands_the_sweep_into_the_run_folders_kdlab_reads():
    from dvc.repo import Repo

    cfg = config_from_mapping(yaml.safe_load((REPO / "params.yaml").read_text()))
    with Repo(str(REPO)) as repo:
        expanded = {s.addressing: [str(Path(o.def_path)) for o in s.outs]
                    for s in repo.index.stages if s.addressing.startswith("sweep@")}
    cells = [c.name for c in cfg.sweep.cells()]
    assert sorted(expanded) == sorted(cells)
    for cell in cells:
        assert expanded[cell] == [str(Layout().run(cell))], cell


def test_each_train_stage_lists_the_params_its_arm_reads():
    card = ["evaluation.ece_bins", "evaluation.thresholds", "evaluation.calibration_fold_seed",
            "evaluation.calibration_fold_size"]  # the model card
    assert stage_params(REPO, "train@kd") == ["seed", "arm_source", "data.max_length", "student", "optim",
                                              "arms.kd", "published"] + card
    assert stage_params(REPO, "sweep@4-0.7") == ["seed", "arm_source", "data.max_length", "student", "optim",
                                                 "published"] + card
    assert stage_params(REPO, "study") == list(STUDY_KEYS)
    assert stage_params(REPO, "no-such-stage") is None
    assert stage_params(REPO / "src", "train@kd") is None  # no dvc.yaml there


# --------------------------------------------------------------------------- #
# The view a stage gets
# --------------------------------------------------------------------------- #
@pytest.fixture
def cfg():
    return config_from_mapping(composed("profile=demo"))


def test_a_stage_reads_what_it_lists(cfg):
    view = restrict(cfg, ["seed", "arm_source", "data.max_length", "student", "optim", "arms.kd", "published"],
                    "train@kd")
    assert view.arm("kd") == cfg.arm("kd") and view.arm("sweep@1-0.7") == cfg.arm("sweep@1-0.7")
    assert view.optim is cfg.optim and view.data.max_length == 64 and view.source_file == "params.yaml"
    assert [a.name for a in view.arms] == ["kd"]  # the other arms are not this stage's business
    assert view.published is None


@pytest.mark.parametrize("read", [lambda v: v.data.source, lambda v: v.teacher, lambda v: v.arm("vanilla"),
                                  lambda v: v.arm_names, lambda v: v.evaluation.ece_bins, lambda v: v.profile],
                         ids=["data.source", "teacher", "another arm", "arm_names (needs sweep)",
                              "evaluation", "profile"])
def test_reading_an_unlisted_param_stops_the_stage(cfg, read):
    view = restrict(cfg, ["seed", "arm_source", "data.max_length", "student", "optim", "arms.kd"], "train@kd")
    with pytest.raises((UntrackedParamError, Exception)) as info:
        read(view)
    assert isinstance(info.value, UntrackedParamError) or "not among" in str(info.value) \
        or "unknown arm" in str(info.value), info.value
    if isinstance(info.value, UntrackedParamError):
        assert "stage train@kd read params.yaml `" in str(info.value) and "add `" in str(info.value)


def test_a_stage_that_tracks_everything_gets_the_config_itself(cfg):
    assert restrict(cfg, [ALL], "study") is cfg and restrict(cfg, None, "anything") is cfg
    with pytest.raises(AttributeError):
        restrict(cfg, ["seed"], "x").seed = 3


def test_study_keys_give_the_later_stages_all_they_read(cfg):
    view = restrict(cfg, list(STUDY_KEYS), "evaluate")
    assert view.arm_names == cfg.arm_names and view.evaluation == cfg.evaluation
    assert view.arm(cfg.baseline_arm) == cfg.arm(cfg.baseline_arm)
    with pytest.raises(UntrackedParamError):
        view.optim


# --------------------------------------------------------------------------- #
# Remote inputs are pinned
# --------------------------------------------------------------------------- #
def hub_artifacts(node, where=""):
    if isinstance(node, dict):
        if "repo_id" in node and "revision" in node:
            yield where, node
        for key, value in node.items():
            yield from hub_artifacts(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from hub_artifacts(value, f"{where}[{i}]")


# The published files' Hub commits cannot be resolved without internet; `kdlab pin` resolves them.
# This list may only shrink (issue 8): each entry is a file's params path in conf/.
AWAITING_PIN = {
    "teacher/published.yaml": {"published.train_test_raw", "published.train_test_final", "published.val_final",
                               "published.metadata"},
    "profile/audit.yaml": {"published.arms.vanilla", "published.arms.kd"} |
                          {f"published.sweep[{i}].file" for i in range(6)},
}


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO / "conf").as_posix() for p in (REPO / "conf").rglob("*.yaml")))
def test_conf_names_commits_not_branches(path):
    data = yaml.safe_load((REPO / "conf" / path).read_text())
    branches = {where for where, art in hub_artifacts(data) if not COMMIT.match(str(art["revision"]))}
    assert branches <= AWAITING_PIN.get(path, set()), \
        f"conf/{path}: {sorted(branches - AWAITING_PIN.get(path, set()))} name a branch, not a commit: pin them"
    urls = [u for u in re.findall(r"https://\S+", (REPO / "conf" / path).read_text()) if "githubusercontent" in u]
    assert all(re.search(r"/[0-9a-f]{40}/", u) for u in urls), f"conf/{path}: a raw URL without a commit: {urls}"


# --------------------------------------------------------------------------- #
# The README's DAG diagram
# --------------------------------------------------------------------------- #
def family(stage: str) -> str:
    return stage.split("@")[0]


def readme_mermaid_edges() -> set[tuple[str, str]]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```mermaid\n(.*?)```", text, re.S).group(1)
    edges = set()
    for line in block.splitlines()[1:]:
        line = re.sub(r"\[[^\]]*\]", "", line)  # node labels
        groups = [[n.strip() for n in part.split("&")] for part in line.split("-->")]
        for left, right in zip(groups, groups[1:]):
            edges |= {(a, b) for a in left for b in right}
    return edges


def test_the_readme_dag_is_dvcs_dag_per_stage_family():
    """Every edge of the README's diagram is a real dependency, and every real dependency is drawn,
    directly or through a path (the diagram leaves out edges its paths already imply)."""
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        graph = repo.index.graph  # an edge (a, b): stage a depends on stage b
        real = {(family(b.addressing), family(a.addressing)) for a, b in graph.edges}
    drawn = readme_mermaid_edges()
    assert drawn <= real, drawn - real
    reach = {a: {b for x, b in drawn if x == a} for a, _ in drawn | real}
    changed = True
    while changed:
        changed = False
        for a in reach:
            extra = set().union(*(reach.get(b, set()) for b in reach[a])) - reach[a]
            if extra:
                reach[a] |= extra
                changed = True
    missing = {(a, b) for a, b in real if b not in reach.get(a, set())}
    assert not missing, f"README's DAG does not show these dependencies: {missing}"


def test_a_view_survives_pickling(cfg):
    """The report draws in worker processes, which receive the configuration pickled."""
    import pickle

    view = restrict(cfg, ["arms.kd", "optim"], "train@kd")
    again = pickle.loads(pickle.dumps(view))
    assert again.arm("kd") == cfg.arm("kd") and again.optim == cfg.optim
    with pytest.raises(UntrackedParamError):
        again.seed
