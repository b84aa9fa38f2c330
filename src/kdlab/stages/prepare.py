"""Stage `prepare`: raw data (Hub, local files or synthetic) -> canonical splits with tiers.

Outputs (data/prepared/): train.parquet, val.parquet, test.parquet with
columns row_id, text, label, label_name, tier, source_index; data_card.json;
data_report.json (rows read and dropped, duplicates, per-class counts, absent
classes: kdlab.data_report); sources.json (every input file with its sha256).
Every check runs before anything is written, and the folder is replaced as a
whole (kdlab.folders), so a refused input leaves the previous outputs as they were.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kdlab import data, data_report, io, rawdata, remote
from kdlab.course import read_course_files
from kdlab.config import Config
from kdlab.device import require_device
from kdlab.folders import staged_folder
from kdlab.paths import Layout
from kdlab.stages.common import fixed_name, run_stage, stage_main

COURSE = "data.course_files"


@dataclass(frozen=True)
class RawInputs:
    """The raw frames, the course files, the fetch records and, per raw frame, the param and the file it
    came from (``origin``: split -> (param, path); the synthetic corpus has no file)."""

    train: pd.DataFrame
    test: pd.DataFrame | None
    course: data.CourseFiles
    records: list
    origin: dict[str, tuple[str, str]]

    def account_sources(self, full_path: bool) -> dict[str, str]:
        """Account key (kdlab.data.Canonical) -> where its rows came from: e.g. ``data.local_train
        (my/complaints.csv)`` for messages (``full_path``), ``(complaints.csv)`` for outputs (no host path)."""
        def name(split: str) -> str:
            what, path = self.origin[split]
            return f"{what} ({path if full_path else Path(path).name})" if path else what

        out = {"train+val": name("train"), "test": name("test") if "test" in self.origin else "no test file"}
        for split in ("train", "val"):
            out[split] = f"{name('train')}, rows at {COURSE}.{split}_indices"
        return out


def warn(message: str) -> None:
    print(f"kdlab: warning: {message}", file=sys.stderr)


def load_raw(cfg: Config, download_dir: Path) -> RawInputs:
    """The raw inputs of the configured source, every file checked as it is read."""
    d = cfg.data
    if d.source == "synthetic":
        from kdlab.synthetic import generate_corpus

        s = d.synthetic
        corpus = generate_corpus(s.n_train, s.n_val, s.n_test, seed=s.seed, imbalance=s.imbalance)
        course = data.CourseFiles(corpus.label_list, data.parse_merge_map(corpus.merge_map),
                                  corpus.train_indices, corpus.val_indices)
        desc = f"synthetic(seed={s.seed}, n_train={s.n_train}, n_val={s.n_val}, n_test={s.n_test}, imbalance={s.imbalance})"
        return RawInputs(corpus.hub_train, corpus.hub_test, course, [{"what": "data", "source": desc}],
                         {"train": ("the synthetic raw train split", ""), "test": ("the synthetic raw test split", "")})

    records = []

    def get(artifact, what):
        path, rec = remote.fetch(artifact, what, download_dir)
        records.append(rec.as_dict())
        return path

    course = read_course_files(d.course_files, get)

    if d.source == "hub":
        files = {"train": (get(d.hub_train, "data.hub_train"), "data.hub_train"),
                 "test": (get(d.hub_test, "data.hub_test"), "data.hub_test")}
    else:
        files = {"train": (get_local(d.local_train, "data.local_train", d.local_train_sha256, records), "data.local_train")}
        if d.local_test:
            files["test"] = (get_local(d.local_test, "data.local_test", d.local_test_sha256, records), "data.local_test")
    frames = {}
    for split, (path, what) in files.items():
        frames[split] = rawdata.read_table(path, what)
        rawdata.check_columns(frames[split], what, path, d.text_column, d.label_column)
    return RawInputs(frames["train"], frames.get("test"), course, records,
                     {split: (what, str(path)) for split, (path, what) in files.items()})


def get_local(path_str: str, what: str, pinned: str | None, records: list) -> Path:
    """A user's own data file: it must exist; a pinned sha256 must match (DVC cannot see a file outside the
    repository change, only the pin); an unpinned one is used with a warning saying how to pin it."""
    path = Path(path_str).expanduser()
    if path.is_dir():
        raise data.DataError(f"{what}: {path} is a folder; expected a parquet or CSV file (-S {what}=/path/to/file.csv)")
    if not path.is_file():
        raise data.DataError(f"{what}: file {path} does not exist; give the path of your data file "
                             f"(-S {what}=/path/to/complaints.csv)")
    digest = io.sha256_file(path)
    if pinned is not None and digest != pinned.lower():
        raise data.DataError(f"{what}: your own file {path} changed since you pinned it: {what}_sha256 is {pinned}, "
                             f"the file's sha256 is {digest}. If the change is intended, pin the new content with "
                             f"-S {what}_sha256={digest} (DVC then reruns the stages that depend on the data)")
    if pinned is None:
        warn(f"{what}: your own file {path.name} has no pinned sha256 (it is {digest}). DVC reruns `prepare` when "
             f"params change, not when a file outside the repository does: pin it with -S {what}_sha256={digest}, "
             "and pin the new sha256 after each edit")
    records.append({"what": what, "source": f"local file ({what}, named {path.name})", "sha256": digest,
                    "pinned": pinned is not None})
    return path


def describe_source(cfg: Config) -> str:
    """One line naming where the data came from, for labels (no host path)."""
    d = cfg.data
    if d.source == "hub":
        return f"CFPB complaints, Hub {d.hub_train.repo_id} at {(d.hub_train.revision or 'an unpinned revision')[:12]}"
    if d.source == "local":
        return f"your own complaints ({Path(d.local_train).name})"
    s = d.synthetic
    return f"bundled synthetic complaints (seed {s.seed}, {s.n_train:,}/{s.n_val:,}/{s.n_test:,} rows)"


def report_settings(cfg: Config) -> dict:
    d = cfg.data
    return {"drop_empty_text": d.drop_empty_text, "max_dropped_fraction": d.max_dropped_fraction,
            "min_train_rows": d.min_train_rows, "min_val_rows": d.min_val_rows, "val_fraction": d.val_fraction}


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    if cfg.arm_source == "train":
        # Fail before any download: the train stages later in the DAG would refuse anyway.
        require_device(cfg.optim, "dvc repro (profile train)")
    d = cfg.data
    with tempfile.TemporaryDirectory(prefix="kdlab-download-") as download_dir:
        raw = load_raw(cfg, Path(download_dir))
    course = raw.course
    canonical = data.prepare_splits(raw.train, raw.test, course, d.text_column, d.label_column,
                                    val_fraction=d.val_fraction, seed=cfg.seed, drop_empty_text=d.drop_empty_text)
    data.check_drops(canonical.accounts, d.max_dropped_fraction, raw.account_sources(full_path=True))
    class_tiers = data.assign_tiers(canonical.splits["train"]["label"].to_numpy(), len(course.label_list),
                                    d.head_classes, d.mid_classes)
    splits = data.add_tiers(canonical.splits, class_tiers)
    data.check_counts(splits, d.expected, f"prepare ({d.source})")
    data.check_sizes(splits, course.label_list, d.min_train_rows, d.min_val_rows, f"prepare ({d.source})")

    card = data.data_card(splits, course.label_list, class_tiers)
    card["source"] = d.source
    card["source_description"] = describe_source(cfg)
    card["hub_dataset"] = d.hub_train.repo_id if d.source == "hub" else None
    report = data_report.data_report(splits, canonical.accounts, course.label_list,
                                     raw.account_sources(full_path=False), report_settings(cfg))
    with staged_folder(layout.prepared) as staging:  # every check has passed: write the whole folder
        for name, frame in splits.items():
            frame.to_parquet(staging / f"{name}.parquet", index=False)
        io.write_json(staging / layout.data_card.name, card)
        io.write_json(staging / layout.data_report.name, report)
        io.write_json(staging / "sources.json", raw.records)
    for line in data_report.warnings(report):
        warn(line)
    sizes = card["split_sizes"]
    dropped = sum(acc.dropped for acc in canonical.accounts.values())
    read = sum(acc.rows for acc in canonical.accounts.values())
    print(f"prepare: {sizes['train']:,} train / {sizes['val']:,} val / {sizes['test']:,} test rows "
          f"({dropped:,} of {read:,} rows read dropped), val tiers {card['val_tier_sizes']}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, stage_name=fixed_name("prepare"))


if __name__ == "__main__":
    run_stage(main)
