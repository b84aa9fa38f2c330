"""Stage `prepare`: raw data (Hub, local files or synthetic) -> canonical splits with tiers.

Outputs (data/prepared/): train.parquet, val.parquet, test.parquet with
columns row_id, text, label, label_name, tier, source_index; data_card.json;
sources.json (every input file with its sha256).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from kdlab import data, io, remote
from kdlab.course import read_course_files
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.stages.common import fixed_name, run_stage, stage_main
from kdlab.device import require_device


def load_raw(cfg: Config, download_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, data.CourseFiles, list]:
    """Return (raw train, raw test, course files, fetch records) for the configured source."""
    d = cfg.data
    if d.source == "synthetic":
        from kdlab.synthetic import generate_corpus

        s = d.synthetic
        corpus = generate_corpus(s.n_train, s.n_val, s.n_test, seed=s.seed, imbalance=s.imbalance)
        course = data.CourseFiles(corpus.label_list, data.parse_merge_map(corpus.merge_map),
                                  corpus.train_indices, corpus.val_indices)
        record = {"what": "data", "source": f"synthetic(seed={s.seed}, n_train={s.n_train}, "
                                            f"n_val={s.n_val}, n_test={s.n_test}, imbalance={s.imbalance})"}
        return corpus.hub_train, corpus.hub_test, course, [record]

    records = []

    def get(artifact, what):
        path, rec = remote.fetch(artifact, what, download_dir)
        records.append(rec.as_dict())
        return path

    course = read_course_files(d.course_files, get)

    if d.source == "hub":
        raw_train = data.read_table(get(d.hub_train, "data.hub_train"))
        raw_test = data.read_table(get(d.hub_test, "data.hub_test"))
    else:  # local
        raw_train = data.read_table(get_local(d.local_train, "data.local_train", records))
        raw_test = data.read_table(get_local(d.local_test, "data.local_test", records)) if d.local_test else None
    return raw_train, raw_test, course, records


def get_local(path_str: str, what: str, records: list) -> Path:
    path = Path(path_str).expanduser()
    if not path.is_file():
        raise data.DataError(f"{what}: file {path} does not exist; fix it in params.yaml")
    records.append({"what": what, "source": f"local file ({what}, named {path.name})", "sha256": io.sha256_file(path)})
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


def run(cfg: Config, layout: Layout, args: argparse.Namespace) -> None:
    if cfg.arm_source == "train":
        # Fail before any download: the train stages later in the DAG would refuse anyway.
        require_device(cfg.optim, "dvc repro (profile train)")
    d = cfg.data
    with tempfile.TemporaryDirectory(prefix="kdlab-download-") as download_dir:
        raw_train, raw_test, course, records = load_raw(cfg, Path(download_dir))
        splits = data.canonicalize(raw_train, raw_test, course, d.text_column, d.label_column,
                                   val_fraction=d.val_fraction, seed=cfg.seed)
    class_tiers = data.assign_tiers(splits["train"]["label"].to_numpy(), len(course.label_list),
                                    d.head_classes, d.mid_classes)
    splits = data.add_tiers(splits, class_tiers)
    data.check_counts(splits, d.expected, f"prepare ({d.source})")

    for name, frame in splits.items():
        with io.atomic_path(layout.split(name)) as tmp:
            frame.to_parquet(tmp, index=False)
    card = data.data_card(splits, course.label_list, class_tiers)
    card["source"] = d.source
    card["source_description"] = describe_source(cfg)
    card["hub_dataset"] = d.hub_train.repo_id if d.source == "hub" else None
    io.write_json(layout.data_card, card)
    io.write_json(layout.prepared / "sources.json", records)
    sizes = card["split_sizes"]
    print(f"prepare: {sizes['train']:,} train / {sizes['val']:,} val / {sizes['test']:,} test rows, "
          f"val tiers {card['val_tier_sizes']}")


def main(argv=None) -> int:
    return stage_main(__doc__.splitlines()[0], run, argv, stage_name=fixed_name("prepare"))


if __name__ == "__main__":
    run_stage(main)
