"""What the report stage reads, and what every renderer receives.

:class:`Inputs` holds the pipeline's JSON outputs (metrics/evaluate.json,
results/calibration.json, every analysis' results/<name>.json, the data, teacher
and arm cards). :class:`Out` is handed to each analysis' ``render`` and to the
paper's own tables and figures: where to write, the run's warning and provenance
(from the cards, :mod:`kdlab.report.provenance`) and the one palette map. Nothing
here reads params beyond the analysis settings (arm names, baseline and headline
arms), so the labels describe the run that produced the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kdlab import analyses, records
from kdlab.analyses.common import OTHER_FIGURE_ARMS
from kdlab.config import Config
from kdlab.paths import Layout
from kdlab.report import palette, provenance


@dataclass(frozen=True)
class Out:
    """Where a renderer writes and the notes every caption and figure carries.

    ``profile_note``: the run's warning banner (empty for the study's setup); ``source``: the
    provenance phrase for captions; ``palette``: system -> colour (the same in every figure)."""

    tables: Path
    figures: Path
    profile_note: str
    source: str
    palette: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Inputs:
    """The pipeline's outputs the report reads (paths: :class:`kdlab.paths.Layout`)."""

    evaluate: dict
    calibration: dict
    data_card: dict
    teacher_card: dict
    arm_cards: dict
    results: dict

    @classmethod
    def read(cls, cfg: Config, layout: Layout) -> "Inputs":
        """Every input; arm cards of params' arms only (never a glob of runs/)."""
        arm_cards = {a: records.arm_card(layout, a) for a in cfg.arm_names}
        return cls(records.evaluation(layout),
                   records.temperatures(layout.results / "calibration.json",
                                        [a for a, card in arm_cards.items() if card["available"]]),
                   records.data_card(layout), records.teacher_card(layout), arm_cards,
                   {name: records.result(layout, name) for name in analyses.ANALYSES})

    @property
    def profile(self) -> str:
        """The profile evaluate recorded (a name for the reader; the labels come from the cards)."""
        return str(self.evaluate.get("profile", ""))

    @property
    def facts(self) -> provenance.RunFacts:
        return provenance.RunFacts.from_cards(self.data_card, self.teacher_card, list(self.arm_cards.values()),
                                              self.profile)


def system_palette(cfg: Config) -> dict[str, str]:
    """The report's palette map: baseline, headline, the arms the comparison figures show, then the rest."""
    featured = [*OTHER_FIGURE_ARMS, cfg.raw_teacher_arm]
    return palette.system_palette(cfg.arm_names, cfg.baseline_arm, cfg.headline_arm, featured)


def make_out(cfg: Config, layout: Layout, inp: Inputs) -> Out:
    facts = inp.facts
    return Out(layout.tables, layout.figures, provenance.warning(facts), provenance.provenance(facts),
               system_palette(cfg))
