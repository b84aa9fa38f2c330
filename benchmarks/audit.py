"""Audit mode speed: published files -> rebuilt reports/, on fixtures of the real sizes.

    python benchmarks/audit.py            # each stage as DVC runs it: python -m kdlab.stages.<stage>
    python benchmarks/audit.py --dvc      # the same DAG through `dvc repro --downstream study tokenizer`
    python benchmarks/audit.py --keep     # keep the temporary repository and print its path

The issue's target: "from downloaded files to a rebuilt reports/ it takes at
most 2 minutes". Everything is generated here, offline, in a temporary folder:

* a prepared data set in the exact format of the `prepare` stage
  (data/prepared/{train,val,test}.parquet + data_card.json) with the real
  sizes: 57,846 train / 6,430 val / 21,432 test rows, 113 classes with a
  long-tailed frequency, tiers 20/40/53 classes by train frequency and val
  tier sizes exactly 5,155 / 1,065 / 210 (docs/study.md §1);
* the published files at their real layout and sizes (docs/study.md §2-§3):
  the teacher's ``val_logits_canonical_final.npz`` (logits float16 6,430 x 113,
  labels, tiers as names) and ``metadata.json`` (temperature 1.2538); the
  vanilla and distilled students' ``val_predictions.npz`` and the six grid
  files ``grid_Td{1,4,8}_a{70,90}_val_predictions.npz`` (logits float16
  6,430 x 113, preds, labels, val_tiers); the students share the teacher's
  errors and range from over-confident (vanilla) to well calibrated, so the
  temperature fits and the bootstraps do realistic work;
* a params.yaml composed from the repository's conf/ for ``profile=audit`` with every
  published artifact's ``local:`` pointing at those files (sha256 pinned), so
  nothing touches the network. The bootstrap keeps the real 10,000 resamples.

It then runs, timing each, every stage after `prepare`: study (the resolved
configuration), tokenizer (nothing to fetch in audit mode), teacher, train@<arm> for every arm of params.yaml and
sweep@<cell> for every sweep cell (8 published, the rest written as "not published (train mode)"), calibrate,
evaluate, analyze@<name> for every analysis, report. `prepare` (the Hub data
download and canonicalisation) is not part of the measurement: it is the same
in every profile and its time is the network's. The times include each stage's
process start (Python + imports), as under DVC; `--dvc` adds DVC's own work
(hashing, caching, reading and rewriting dvc.lock at every stage) and starts
from the repository's committed dvc.lock, as a clone does. Printed per stage:
wall seconds and CPU seconds (user + system of the stage's process); on a busy
machine the wall time grows, the CPU time much less. Exit status 1 when the
wall time is over the target.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kdlab import analyses, data, data_report, io
from kdlab.config import TIERS, load_config
from kdlab.stages.prepare import report_settings

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 120.0
N_TRAIN, N_VAL, N_TEST, C = 57_846, 6_430, 21_432, 113
TIER_CLASSES = (20, 40, 53)
VAL_TIER_ROWS = (5_155, 1_065, 210)
TEACHER_T = 1.2538
SEED = 20240611

# published arm -> (file name, margin, scale): the distilled students are a little more accurate and far
# better calibrated than vanilla (docs/study.md §7), so the T fits and ECE see shapes like the real ones
ARM_FILES = {  # extra true-class margin (negative: below the teacher's) and logit scale
    "vanilla": ("vanilla_val_predictions.npz", -0.55, 2.9),
    "kd": ("distilled_val_predictions.npz", -0.45, 2.2),
    "sweep@4-0.7": ("grid_Td4_a70_val_predictions.npz", -0.45, 2.2),
    "sweep@1-0.7": ("grid_Td1_a70_val_predictions.npz", -0.4, 2.4),
    "sweep@1-0.9": ("grid_Td1_a90_val_predictions.npz", -0.45, 2.3),
    "sweep@4-0.9": ("grid_Td4_a90_val_predictions.npz", -0.5, 2.1),
    "sweep@8-0.7": ("grid_Td8_a70_val_predictions.npz", -0.5, 2.0),
    "sweep@8-0.9": ("grid_Td8_a90_val_predictions.npz", -0.55, 1.9),
}


# --------------------------------------------------------------------------- #
# Fixtures of the real sizes
# --------------------------------------------------------------------------- #
def _allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``weights``, each >= ``minimum``."""
    counts = np.full(len(weights), minimum, dtype=np.int64)
    rest = total - counts.sum()
    share = weights / weights.sum() * rest
    counts += np.floor(share).astype(np.int64)
    left = total - counts.sum()
    counts[np.argsort(-(share - np.floor(share)), kind="stable")[:left]] += 1
    return counts


def write_prepared(root: Path, rng: np.random.Generator) -> dict:
    """data/prepared in the format of the `prepare` stage, with the real sizes and val tier sizes."""
    weights = 1.0 / np.arange(1, C + 1) ** 1.1
    perm = rng.permutation(C)  # class id -> frequency rank is shuffled, like the real label list
    train_counts = np.zeros(C, dtype=np.int64)
    train_counts[perm] = _allocate(N_TRAIN, weights, 5)
    class_tiers = data.assign_tiers(np.repeat(np.arange(C), train_counts), C, *TIER_CLASSES[:2])
    val_counts = np.zeros(C, dtype=np.int64)
    test_counts = np.zeros(C, dtype=np.int64)
    for code, rows in enumerate(VAL_TIER_ROWS):
        ids = np.flatnonzero(class_tiers == code)
        val_counts[ids] = _allocate(rows, train_counts[ids].astype(float), 1)
    test_counts[:] = _allocate(N_TEST, train_counts.astype(float), 1)
    label_list = [f"Issue {i:03d}" for i in range(C)]

    def frame(counts: np.ndarray) -> pd.DataFrame:
        labels = rng.permutation(np.repeat(np.arange(C), counts))
        return pd.DataFrame({
            "row_id": np.arange(len(labels), dtype=np.int64),
            "text": [f"complaint {i} about issue {lab}" for i, lab in enumerate(labels)],
            "label": labels.astype(np.int64),
            "label_name": [label_list[lab] for lab in labels],
            "source_index": np.arange(len(labels), dtype=np.int64),
        })

    splits = data.add_tiers({"train": frame(train_counts), "val": frame(val_counts), "test": frame(test_counts)},
                            class_tiers)
    prepared = root / "data" / "prepared"
    prepared.mkdir(parents=True)
    for name, split in splits.items():
        split.to_parquet(prepared / f"{name}.parquet", index=False)
    card = data.data_card(splits, label_list, class_tiers)
    card["source"], card["source_description"] = "hub", "CFPB complaints (real-size fixture)"
    io.write_json(prepared / "data_card.json", card)
    io.write_json(prepared / "sources.json", [])
    return {"labels": splits["val"]["label"].to_numpy(), "tiers": data.tier_codes_of(splits["val"]),
            "card": card, "splits": splits, "label_list": label_list}


def write_data_report(root: Path, val: dict) -> None:
    """data/prepared/data_report.json as `prepare` writes it: every row kept, the data settings of params.yaml."""
    splits = val["splits"]
    accounts = {name: data.Account(rows=len(split), unknown_label=0, empty_text=0, empty_dropped=False)
                for name, split in splits.items()}
    report = data_report.data_report(splits, accounts, val["label_list"],
                                     {name: f"fixture {name} split" for name in splits},
                                     report_settings(load_config(root / "params.yaml")))
    io.write_json(root / "data" / "prepared" / "data_report.json", report)


def _scores(rng, labels, tiers, strength: float, base: np.ndarray | None = None) -> np.ndarray:
    """float32 (N, C) scores: the true class lifted by a tier-dependent margin over Gaussian noise;
    ``base`` (the teacher's scores) is mixed in so that students share the teacher's errors."""
    margin = strength * np.array([1.0, 0.7, 0.45])[tiers]
    z = rng.standard_normal((len(labels), C)).astype(np.float32)
    if base is not None:
        z = 0.6 * z + 0.8 * base
    z[np.arange(len(labels)), labels] += margin * rng.uniform(0.2, 1.8, len(labels)).astype(np.float32)
    return z


def write_published(root: Path, val: dict, rng: np.random.Generator) -> dict[str, Path]:
    """The published files at their real layout and sizes; returns name -> path."""
    pub = root / "published"
    pub.mkdir()
    labels, tiers = val["labels"], val["tiers"]
    names = np.array(TIERS)[tiers]
    base = _scores(rng, labels, tiers, 3.0)
    paths = {"teacher": pub / "val_logits_canonical_final.npz", "metadata": pub / "metadata.json"}
    np.savez(paths["teacher"], logits=(base * 2.1).astype(np.float16), labels=labels.astype(np.int64), tiers=names)
    paths["metadata"].write_text(json.dumps({"model": "Qwen3-32B + LoRA (fixture)", "temperature": TEACHER_T}))
    for arm, (filename, strength, sharp) in ARM_FILES.items():
        logits = (_scores(rng, labels, tiers, strength, base=base) * sharp).astype(np.float16)
        preds = logits.astype(np.float32).argmax(axis=1).astype(np.int64)
        paths[arm] = pub / filename
        np.savez(paths[arm], logits=logits, preds=preds, labels=labels.astype(np.int64), val_tiers=names)
    return paths


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_params(root: Path, paths: dict[str, Path]) -> None:
    """params.yaml composed for the audit profile, every published artifact local and pinned."""
    from kdlab.compose import compose

    raw = compose(REPO / "conf", ["profile=audit"])

    def local(artifact: dict, path: Path) -> None:
        artifact.update(local=str(path), sha256=sha256(path))

    local(raw["teacher"]["published"]["val_final"], paths["teacher"])
    local(raw["teacher"]["published"]["metadata"], paths["metadata"])
    cells = {f"sweep@{c['kd_temperature']}-{c['alpha']}": c["file"] for c in raw["published"]["sweep"]}
    for arm, path in paths.items():
        if arm in raw["published"]["arms"]:
            local(raw["published"]["arms"][arm], path)
        elif arm in cells:
            local(cells[arm], path)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg = load_config(root / "params.yaml")
    assert cfg.profile == "audit" and cfg.arm_source == "published", "params.yaml lost the audit profile"
    assert not cfg.teacher.need_train_logits, "the audit profile must not need the 79,278-row teacher logits"


def build(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(SEED)
    val = write_prepared(root, rng)
    paths = write_published(root, val, rng)
    write_params(root, paths)
    write_data_report(root, val)
    return paths


# --------------------------------------------------------------------------- #
# Running the stages
# --------------------------------------------------------------------------- #
def stage_commands(root: Path) -> list[tuple[str, list[str]]]:
    """(DVC stage name, command) from study and tokenizer to report, in DAG order, as dvc.yaml runs them."""
    cfg = load_config(root / "params.yaml")
    py = [sys.executable, "-m"]
    cmds = [("study", py + ["kdlab.stages.study"]), ("tokenizer", py + ["kdlab.stages.tokenizer"]),
            ("teacher", py + ["kdlab.stages.teacher"])]
    cmds += [(arm if arm.startswith("sweep@") else f"train@{arm}", py + ["kdlab.stages.train", "--arm", arm])
             for arm in cfg.arm_names]
    cmds += [("calibrate", py + ["kdlab.stages.calibrate"]), ("evaluate", py + ["kdlab.stages.evaluate"])]
    cmds += [(f"analyze@{name}", py + ["kdlab.stages.analyze", "--name", name]) for name in analyses.ANALYSES]
    cmds += [("report", py + ["kdlab.stages.report"])]
    return cmds


def _env() -> dict:
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1"}


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_stages(root: Path) -> list[tuple[str, float, float | None]]:
    """Each stage as a process, as DVC starts it; (name, wall s, CPU s) per stage."""
    times = []
    for name, cmd in stage_commands(root):
        started, cpu = time.perf_counter(), children_cpu()
        result = subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True)
        elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
        if result.returncode != 0:
            sys.exit(f"{name} failed ({result.returncode}) after {elapsed:.1f} s:\n"
                     f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        times.append((name, elapsed, cpu))
        print(f"  {name:<28} {elapsed:6.1f} s wall {cpu:6.1f} s CPU", flush=True)
    return times


def run_dvc(root: Path) -> list[tuple[str, float, float | None]]:
    """`dvc repro --downstream study tokenizer` in a git + DVC repo holding the prepared data (as after prepare)
    and the repository's committed dvc.lock, as a reviewer's clone has it (DVC reads and rewrites the
    lock file at every stage, so its size counts)."""
    for item in ("src", "conf", "dvc.yaml", "dvc.lock", "pyproject.toml", "reports/paper.tex"):
        src, dst = REPO / item, root / item
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "bench@example.invalid"],
                ["git", "config", "user.name", "bench"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=root, env=_env(), check=True, capture_output=True)
    shutil.copy2(REPO / ".dvc" / "config", root / ".dvc" / "config")
    started = time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro", "--downstream", "study", "tokenizer"], cwd=root, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    times, current, mark, tail = [], None, started, []
    for line in proc.stdout:
        tail = (tail + [line])[-60:]
        if line.startswith("Running stage '"):
            now = time.perf_counter()
            label = current or "(dvc start-up)"
            times.append((label, now - mark, None))
            print(f"  {label:<28} {now - mark:6.1f} s", flush=True)
            current, mark = line.split("'")[1], now
    proc.wait()
    now = time.perf_counter()
    if proc.returncode != 0:
        sys.exit(f"dvc repro failed ({proc.returncode}):\n{''.join(tail)}")
    if current:
        times.append((current, now - mark, None))
        print(f"  {current:<28} {now - mark:6.1f} s  (+ lock file)", flush=True)
    return times


def check_outputs(root: Path, paths: dict[str, Path]) -> None:
    """The rebuilt outputs are there and the published arms are really the published files."""
    evaluation = io.read_json(root / "metrics" / "evaluate.json")
    cfg = load_config(root / "params.yaml")
    published = {a.name for a in cfg.all_arms if cfg.published.artifact(a)[0] is not None}
    for arm in cfg.arm_names:
        rec = evaluation["arms"][arm]
        assert rec["available"] == (arm in published), (arm, rec)
        if not rec["available"]:
            assert rec["reason"] == "not published (train mode)", rec
    for name in analyses.ANALYSES:
        assert (root / "results" / f"{name}.json").is_file(), name
    assert (root / "reports" / "numbers.tex").is_file()
    tables = sorted((root / "reports" / "tables").glob("*.tex"))
    figures = sorted((root / "reports" / "figures").glob("*.png"))
    assert tables and figures
    print(f"outputs: {len(tables)} tables, {len(figures)} figures (png), reports/numbers.tex; "
          f"{len(published)} published arms, {len(cfg.arm_names) - len(published)} not published")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dvc", action="store_true", help="run through `dvc repro --downstream study tokenizer`")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="kdlab-audit-bench-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still clean up the temporary folder
    try:
        started = time.perf_counter()
        paths = build(root)
        built = time.perf_counter() - started
        sizes = {k: p.stat().st_size for k, p in paths.items()}
        print(f"fixtures ({built:.1f} s): {N_TRAIN:,} / {N_VAL:,} / {N_TEST:,} rows, {C} classes, "
              f"val tiers {dict(zip(TIERS, VAL_TIER_ROWS))}")
        for key, path in paths.items():
            print(f"  {path.name:<40} {sizes[key] / 1e6:6.2f} MB")
        print(f"  total published                          {sum(sizes.values()) / 1e6:6.2f} MB")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, numpy {np.__version__}; "
              f"bootstrap {load_config(root / 'params.yaml').evaluation.bootstrap.resamples:,} resamples")
        print("stages (" + ("dvc repro --downstream study tokenizer" if args.dvc else "python -m kdlab.stages.<stage>") + "):")
        load_before = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), children_cpu()
        times = run_dvc(root) if args.dvc else run_stages(root)
        total, total_cpu = time.perf_counter() - wall, children_cpu() - cpu
        check_outputs(root, paths)

        groups: dict[str, list[tuple[float, float | None]]] = {}
        for name, seconds, cpu_s in times:
            groups.setdefault(name.split("@")[0] + ("@*" if "@" in name else ""), []).append((seconds, cpu_s))
        print()
        print(f"{'stage':<18}{'runs':>6}{'wall s':>9}{'CPU s':>9}{'share':>8}")
        for group, rows in groups.items():
            w = sum(r[0] for r in rows)
            c = "" if any(r[1] is None for r in rows) else f"{sum(r[1] for r in rows):.1f}"
            print(f"{group:<18}{len(rows):>6}{w:>9.1f}{c:>9}{w / total:>8.0%}")
        verdict = "within" if total <= TARGET_S else "OVER"
        n_stages = sum(name != "(dvc start-up)" for name, _, _ in times)
        print(f"{'total':<18}{n_stages:>6}{total:>9.1f}{total_cpu:>9.1f}   wall time {verdict} the "
              f"{TARGET_S:.0f} s target")
        print(f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, on "
              f"{os.cpu_count()} CPUs: wall times grow with other work on the machine, CPU times much less")
        if args.keep:
            print(f"kept: {root}")
        return 0 if total <= TARGET_S else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
