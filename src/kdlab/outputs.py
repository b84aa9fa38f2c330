"""The pipeline's outputs read back for notebooks: one place, so the lab and the homework agree.

Notebooks compute no metric of their own: they read metrics/evaluate.json and
results/<analysis>.json (written by the stages) and call kdlab functions on the
stored predictions (:func:`kdlab.analyses.context.load_study`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kdlab import io
from kdlab.analyses import ANALYSES
from kdlab.analyses.context import Study, load_study
from kdlab.config import TIERS, Config, load_config
from kdlab.paths import Layout


def find_root(start: Path) -> Path:
    """$KDLAB_ROOT if set, else the nearest folder at or above ``start`` that holds dvc.yaml."""
    if os.environ.get("KDLAB_ROOT"):
        return Path(os.environ["KDLAB_ROOT"]).expanduser().resolve()
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    raise FileNotFoundError(f"no dvc.yaml in {start} or above it; set KDLAB_ROOT to the repository root")


@dataclass
class Outputs:
    """A repository's params and pipeline outputs (the evaluate metrics, data card, stored predictions)."""

    root: Path
    cfg: Config
    layout: Layout
    evaluation: dict
    card: dict
    study: Study
    _results: dict = field(default_factory=dict, repr=False)

    def result(self, name: str) -> dict:
        """results/<name>.json (read once), written by the pipeline stage analyze@<name>."""
        if name not in ANALYSES:
            raise KeyError(f"unknown analysis {name!r}; the pipeline writes {list(ANALYSES)}")
        if name not in self._results:
            self._results[name] = io.read_json(self.layout.results / f"{name}.json")
        return self._results[name]

    def table(self, name: str, key: str) -> pd.DataFrame:
        """results/<name>.json -> tables[key] as a frame, without the rows of unavailable arms."""
        return pd.DataFrame([r for r in self.result(name)["tables"][key] if r.get("available", True)])

    def describe(self, demo_advice: str) -> str:
        """What a notebook is looking at: the root, the profile that produced the outputs (with a
        warning when params.yaml now selects another), the val split per tier and the unavailable
        arms; for demo outputs, a warning followed by ``demo_advice``."""
        produced = self.evaluation["profile"]
        lines = [f"repository root: {self.root}",
                 f"profile: {produced} (outputs), {self.cfg.profile} (params.yaml now); "
                 f"data source: {self.card['source']}"]
        if produced != self.cfg.profile:
            lines.append("WARNING: params.yaml selects another profile than the one that produced these outputs: "
                         "run `dvc repro`.")
        if produced == "demo":
            lines.append("DEMO OUTPUTS: synthetic complaints, tiny models. The numbers below are synthetic and are "
                         f"NOT the study's results; {demo_advice}")
        lines.append(f"val: {self.study.n:,} examples; per tier: "
                     + ", ".join(f"{t} {len(self.study.scope_rows(t)):,}" for t in TIERS))
        lines += [f"  arm {arm}: {why}" for arm, why in self.study.unavailable.items()]
        return "\n".join(lines)

    def missing(self, name: str) -> None:
        """Print the arms an analysis could not use, and why (e.g. "not published (train mode)")."""
        by_reason: dict[str, list[str]] = {}
        for arm, why in self.result(name).get("unavailable", {}).items():
            by_reason.setdefault(why, []).append(arm)
        for why, gone in by_reason.items():
            print(f"{name}: {why}: {', '.join(gone)}")


def open_outputs(start: Path | None = None) -> Outputs:
    """Find the repository (see :func:`find_root`) and load its params and outputs."""
    root = find_root((start or Path.cwd()).resolve())
    cfg = load_config(root / "params.yaml")
    layout = Layout(root)
    return Outputs(root, cfg, layout, io.read_json(layout.metrics / "evaluate.json"),
                   io.read_json(layout.data_card), load_study(cfg, layout))


def with_ci(frame: pd.DataFrame, value: str = "estimate", low: str = "low", high: str = "high",
            digits: int = 3) -> pd.Series:
    """'0.263 [0.251, 0.275]' strings for display (formatting only, no arithmetic)."""
    def fmt(row):
        if pd.isna(row[value]):
            return "n/a"
        if pd.isna(row[low]) or pd.isna(row[high]):
            return f"{row[value]:.{digits}f}"
        return f"{row[value]:.{digits}f} [{row[low]:.{digits}f}, {row[high]:.{digits}f}]"
    return frame.apply(fmt, axis=1)
