"""``kdlab plan``: what `dvc repro` would train, and how long each training should take on this device.

DVC says which stages would run (a stage whose inputs changed, and every stage downstream of one);
for each training stage among them (train@<arm>, sweep@<T_d>-<alpha>, a teacher kdlab trains) the
plan gives rows, optimizer steps and a time, from the best source there is:

1. a resume checkpoint of the stage whose inputs are unchanged: its own seconds per step (kdlab.checkpoint);
2. logs/<stage>.json of an earlier run of any training stage with the same speed key (device, backbone,
   batch size, sequence length, precision, processes): its examples per second;
3. ``--bench FILE``: the kdlab row of ``benchmarks/train_throughput.py --json FILE`` run on this device;
4. for ModernBERT-base on a Tesla T4: the course's figure, about 80 minutes per arm of 79,278 rows.

It also names checkpoints left over by stages that will not run (DVC restored their outputs from its
cache), which only take disk space.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from kdlab import io
from kdlab.checkpoint import checkpoint_folder, differences, latest
from kdlab.config import Config, load_config, stage_of
from kdlab.errors import KdlabError
from kdlab.paths import Layout
from kdlab.progress import duration, speed_key

COURSE_T4_MINUTES, COURSE_ROWS = 80.0, 79_278  # the course's measured T4 arm (3 epochs of train+test)


@dataclass(frozen=True)
class Training:
    """One training stage that would run: its size and the speed key its time depends on."""

    stage: str
    rows: int
    epochs: int
    steps: int
    key: dict


@dataclass(frozen=True)
class Estimate:
    seconds: float | None
    source: str


def split_sizes(cfg: Config, layout: Layout) -> tuple[int, int] | None:
    """(train, test) rows: the prepared data card, else the counts params expect (None if unknown)."""
    if layout.data_card.is_file():
        sizes = io.read_json(layout.data_card)["split_sizes"]
        return sizes["train"], sizes["test"]
    if cfg.data.synthetic is not None:
        return cfg.data.synthetic.n_train, cfg.data.synthetic.n_test
    if cfg.data.expected is not None and cfg.data.expected.train and cfg.data.expected.test:
        return cfg.data.expected.train, cfg.data.expected.test
    return None


def processes_of(launcher: str) -> int:
    found = re.search(r"--num_processes[ =](\d+)", launcher)
    return int(found.group(1)) if found else 1


def training_of(stage: str, cfg: Config, sizes: tuple[int, int] | None) -> Training | None:
    """The size of ``stage`` if it trains (None for every other stage); 0 rows when the data size is unknown."""
    if stage == "teacher" and cfg.teacher.own is not None:
        spec = cfg.teacher.own
        rows = round(sum(sizes) * (1 - spec.calibration_fraction)) if sizes else 0
        backbone = spec.backbone if cfg.teacher.source == "trained" else spec.model  # lora: the Qwen3 + LoRA spec
        optim, processes = spec.optim, 1
    elif (stage.startswith("train@") or stage.startswith("sweep@")) and cfg.arm_source == "train":
        arm = cfg.arm(stage.split("@", 1)[1] if stage.startswith("train@") else stage)
        rows = (sizes[0] + (sizes[1] if arm.train_splits == "train+test" else 0)) if sizes else 0
        optim, backbone, processes = cfg.optim, cfg.student, processes_of(cfg.optim.launcher)
    else:
        return None
    if optim.max_train_samples:
        rows = min(rows, optim.max_train_samples)
    steps = optim.epochs * math.ceil(rows / optim.batch_size / processes)
    return Training(stage, rows, optim.epochs, steps, speed_key(backbone, optim, cfg.data.max_length, processes))


def measured_speeds(layout: Layout, device: str) -> dict[str, tuple[float, dict]]:
    """stage -> (examples/s, speed key) of earlier runs on ``device`` (logs/<stage>.json)."""
    found = {}
    for path in sorted(layout.logs.glob("*.json")) if layout.logs.is_dir() else []:
        try:
            facts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if facts.get("examples_per_s") and facts.get("device_name") == device and "speed_key" in facts:
            found[path.stem] = (facts["examples_per_s"], facts["speed_key"])
    return found


def estimate(training: Training, device: str, speeds: dict, bench: dict | None, fingerprint: dict | None,
             root: Path = Path(".")) -> Estimate:
    """Seconds of training ``training`` still needs on ``device``, and where the figure comes from."""
    folder = root / checkpoint_folder(training.stage)
    step_dir = latest(folder)
    if step_dir is not None and (step_dir / "state.json").is_file():
        saved = json.loads((step_dir / "state.json").read_text())
        done = saved["position"]["step"]
        if fingerprint is not None and differences(saved["fingerprint"], fingerprint):
            return Estimate(None, f"a checkpoint at step {done:,} written for other inputs: the stage will refuse "
                                  f"it; delete {folder}")
        if done and saved["seconds"]:
            left = (training.steps - done) * saved["seconds"] / done
            return Estimate(left, f"resumes at step {done:,} ({saved['seconds'] / done:.2f} s per step so far)")
    same = [(stage, rate) for stage, (rate, key) in speeds.items() if key == training.key]
    if same:
        stage, rate = next(((s, r) for s, r in same if s == training.stage), same[0])
        return Estimate(training.rows * training.epochs / rate,
                        f"measured: {rate:,.1f} examples/s in logs/{stage}.json")
    if bench is not None and "rank" not in training.key["backbone"]:  # the benchmark trains a ModernBERT, no LoRA
        rate = bench["examples_per_s"]
        return Estimate(training.rows * training.epochs / rate,
                        f"benchmark: {rate:,.1f} examples/s (benchmarks/train_throughput.py)")
    repo_id = training.key["backbone"].get("repo_id") or ""
    if "T4" in device and repo_id.endswith("ModernBERT-base") and training.key["processes"] == 1:
        seconds = COURSE_T4_MINUTES * 60 * training.rows * training.epochs / (COURSE_ROWS * 3)
        return Estimate(seconds, "estimate: the course's T4 figure (about 80 min per arm of 79,278 rows)")
    if "rank" in training.key["backbone"]:
        return Estimate(None, "unknown: no LoRA teacher of this size has trained on this device yet "
                              "(docs/lora_teacher.md estimates one per GPU class)")
    return Estimate(None, "unknown: nothing with this model has trained on this device yet (or pass --bench)")


def stages_to_run(root: Path) -> tuple[list[str], dict[str, dict]]:
    """(stages `dvc repro` would run, in dvc.yaml's order; fingerprints of the training stages among them)."""
    import networkx as nx
    from dvc.repo import Repo

    from kdlab.fingerprint import fingerprint_of

    with Repo(str(root)) as repo:
        stages = list(repo.index.stages)  # dvc.yaml's order
        named = {s.addressing: s for s in stages}  # status() keys stages by their address from the cwd
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        run = {named[address] for address in repo.status()}
        for stage in list(run):
            run |= nx.ancestors(graph, stage)
        order = [s.name for s in stages if s in run]
        prints = {s.name: fingerprint_of(s) for s in stages
                  if s in run and (s.name == "teacher" or s.name.startswith(("train@", "sweep@")))}
    return order, prints


def plan_lines(root: Path, bench: dict | None = None) -> list[str]:
    from kdlab.train import device_name

    layout = Layout(root)
    cfg = load_config(layout.params)
    device = device_name()
    order, prints = stages_to_run(root)
    sizes = split_sizes(cfg, layout)
    speeds = measured_speeds(layout, device)
    trainings = [t for t in (training_of(s, cfg, sizes) for s in order) if t is not None]
    lines = [f"kdlab plan: profile {cfg.profile} on {device}; `dvc repro` would run {len(order)} stage(s), "
             f"{len(trainings)} of them training" + (":" if trainings else ".")]
    if trainings and device == "cpu" and cfg.optim.require_gpu:
        lines.append("  (no CUDA GPU here: this profile stops at its first stage, optim.require_gpu)")
    total, unknown = 0.0, 0
    width = max([len(t.stage) for t in trainings] + [5])
    for t in trainings:
        e = estimate(t, device, speeds, bench, prints.get(t.stage), root)
        total += e.seconds or 0
        unknown += e.seconds is None
        shown = f"~{duration(e.seconds)}" if e.seconds is not None else "?"
        lines.append(f"  {t.stage:<{width}}  {t.rows:>7,} rows  {t.steps:>6,} steps  {shown:>8}  {e.source}")
    if trainings:
        known = len(trainings) - unknown
        summed = f"~{duration(total)}" + (f" for {known}, {unknown} unknown" if unknown else "") if known else "unknown"
        lines.append(f"  training in all: {summed}; a stopped run resumes from checkpoints/<stage>/ on the next "
                     "`dvc repro`")
    others = [s for s in order if s not in {t.stage for t in trainings}]
    if others:
        lines.append(f"  and {len(others)} stage(s) that train nothing: {', '.join(others[:6])}"
                     + (f" and {len(others) - 6} more" if len(others) > 6 else ""))
    root_dir = (root / checkpoint_folder("x")).parent
    for folder in sorted(root_dir.iterdir()) if root_dir.is_dir() else []:
        if folder.is_dir() and folder.name not in order:
            lines.append(f"left over: {folder} (its stage will not run: DVC has its outputs); delete it")
    return lines


def plan_command(args: argparse.Namespace) -> int:
    if args.compose:  # what `dvc exp run -S ...` writes before it runs: the params the plan is for
        from kdlab.compose import write_params

        write_params(Path(args.root) / "conf", Path(args.root) / "params.yaml", args.compose)
    bench = None
    if args.bench:
        data = io.read_json(args.bench)
        from kdlab.train import device_name

        here = device_name()
        if data.get("tiny") or not (data.get("device_name") == here or here == "cpu" == data.get("device")):
            what = "a tiny model" if data.get("tiny") else data.get("device_name")
            raise KdlabError(f"{args.bench}: a benchmark of {what}; expected ModernBERT-base's shapes on {here} "
                             "(run benchmarks/train_throughput.py here, without --tiny)")
        bench = next(r for r in data["records"] if r["arm"].startswith("kdlab"))
    print("\n".join(plan_lines(Path(args.root), bench)))
    return 0


def add_plan(sub) -> None:
    p = sub.add_parser(
        "plan", help="what `dvc repro` would train, and the measured or estimated time per arm on this device",
        description="Ask DVC which stages would run and print, for each training stage, rows, steps and the time "
                    "it should take here: from its resume checkpoint, from earlier runs' logs/<stage>.json, from a "
                    "benchmark (--bench), or the course's T4 figure.")
    p.add_argument("-S", "--compose", action="append", metavar="OVERRIDE", default=[],
                   help="compose params.yaml first, as `dvc exp run -S OVERRIDE` would (e.g. -S profile=train)")
    p.add_argument("--bench", metavar="FILE", help="the --json output of benchmarks/train_throughput.py on this device")
    p.add_argument("--root", default=".", help="repository root (default: the current folder)")
    p.set_defaults(func=plan_command)
