"""Analysis 6: the data confound — how much of the students' gain is data, how much is distillation?

Compared in macro F1 on the full validation split (overall and per tier, a
tier's macro F1 over the tier's classes), all on the same resamples of the
scope's rows (paired): the data lift, baseline (train+test) minus the
train-only student (the arm with ``train_splits: train``); the KD lift, the
headline arm (``headline_arm``, kd) minus the baseline; and their ratio data lift / KD lift per
resample (stats.ratio_of_deltas), summarised by its median and percentiles.
A ratio whose denominator (KD-lift) interval includes 0 is flagged unstable:
its resamples divide by values near 0 and its interval is meaningless.
Published reference (docs/study.md §6): +0.055 from data vs about +0.015 from KD (ratio about 3.6).
"""

from __future__ import annotations

import numpy as np

from kdlab import stats
from kdlab.analyses.common import (add_numbers, ci_record, delta, excludes_zero, header, measure, scope_table,
                                   unavailable_rows)
from kdlab.analyses.context import SCOPES, Study

QUANTITIES = ("data_lift", "kd_lift", "ratio")
ROW = {"data_lift": "data lift", "kd_lift": "KD lift", "ratio": "ratio data / KD"}
ROLES = "Data lift: {b} (train+test) minus {t} (train only); KD lift: {k} minus {b}."


def train_only_arm(study: Study) -> str | None:
    """The first arm trained on the canonical train split only (``train_splits: train``, plain CE)."""
    return next((a.name for a in study.cfg.arms if a.train_splits == "train" and a.loss == "ce"), None)


def ratio_record(data: tuple, base: tuple, kd: tuple, lift: dict, study: Study) -> dict:
    """(base − train_only) / (kd − base) per resample; ``data``, ``base``, ``kd`` are measure() entries."""
    est = stats.ratio_of_deltas(np.array([base[0]]), np.array([data[0]]), np.array([kd[0]]), np.array([base[0]]))
    rec = ci_record(float(est[0]), stats.ratio_of_deltas(base[1], data[1], kd[1], base[1]), study)
    return {**rec, "unstable": not excludes_zero(lift),
            "note": "KD-lift interval includes 0: ratio unstable" if not excludes_zero(lift) else ""}


def compute(study: Study) -> dict:
    """Macro F1 of the three students, the data lift, the KD lift and their ratio, per scope."""
    base, kd, avail = study.cfg.baseline_arm, study.cfg.headline_arm, set(study.available)
    train_only = train_only_arm(study)
    roles = {"train_only": train_only, "baseline": base, "kd": kd}
    systems = [a for a in roles.values() if a in avail]
    values, lifts = [], []
    for scope in SCOPES:
        got = measure_f1(study, scope, systems)
        for s in systems:
            values.append({"system": s, "scope": scope, "metric": "macro_f1", **ci_record(*got[s], study)})
        d = delta(got[base], got[train_only], study) if {base, train_only} <= set(got) else None
        k = delta(got[kd], got[base], study) if {base, kd} <= set(got) else None
        r = ratio_record(got[train_only], got[base], got[kd], k, study) if d and k else None
        for q, rec in zip(QUANTITIES, (d, k, r)):
            if rec is not None:
                lifts.append({"quantity": q, "scope": scope, "metric": "macro_f1",
                              "excludes_zero": excludes_zero(rec), **rec})
    result = {"name": "confound", **header(study), "roles": roles}
    for r in values + lifts:
        r["n"] = result["n"][r["scope"]]
    result["unavailable"] = {a: why for a, why in study.unavailable.items() if a in roles.values()}
    if train_only is None:
        result["unavailable"]["train_only"] = "no arm with train_splits: train in params.yaml"
    missing = unavailable_rows(result["unavailable"])
    result["tables"] = {"values": values + missing, "lifts": lifts + missing}
    numbers: dict = {}
    for scope in SCOPES:
        for q, tag in (("data_lift", "DataFoneLift"), ("kd_lift", "ConfoundKdFoneLift"), ("ratio", "DataKdRatio")):
            rec = next((r for r in lifts if (r["quantity"], r["scope"]) == (q, scope)), None)
            add_numbers(numbers, f"{tag}{scope.capitalize()}", rec)
    result["numbers"] = numbers
    return result


def measure_f1(study: Study, scope: str, systems) -> dict:
    """system -> (macro F1 on the scope's rows, its (B,) resampled values), shared indices."""
    return {s: v["macro_f1"] for s, v in measure(study, scope, systems, ("macro_f1",)).items()}


def render(result: dict, out) -> None:
    """reports/tables/confound_lifts.tex (lifts and ratio) and confound_fone.tex (macro F1 per student)."""
    roles, gone = result["roles"], result["unavailable"]
    names = ROW
    shaky = sorted({r["scope"] for r in result["tables"]["lifts"] if r.get("unstable")}, key=SCOPES.index)
    rows = [{**r, "row": names[r["quantity"]]} for r in result["tables"]["lifts"] if r.get("quantity")]
    why = "not computed: " + "; ".join(f"{a} {reason}" for a, reason in gone.items())
    lacking = {names[q]: why for q in QUANTITIES if not any(r["quantity"] == q for r in rows)}
    notes = [ROLES.format(b=roles["baseline"], t=roles["train_only"], k=roles["kd"]),
             "Paired: every quantity uses the same resamples of a scope's rows; the ratio is computed per "
             "resample (median and percentiles in the JSON; cell: full-sample ratio [2.5th, 97.5th]).",
             "Published reference (docs/study.md section 6, the course's numbers): train-only vanilla 0.209 vs "
             "train+test vanilla 0.264 macro F1, +0.055 from data vs about +0.015 from KD (ratio about 3.6)."]
    if shaky:
        notes.append(f"Ratio unstable for {', '.join(shaky)}: the KD-lift interval includes 0, so the ratio's "
                     "resamples divide by values near 0; read its interval as unbounded.")
    scope_table(out.tables / "confound_lifts.tex", rows, "macro_f1", "row", result, out, direction="none",
                title="More data or distillation? Macro F1 lifts", notes=notes, unavailable=lacking,
                row_decimals={ROW["ratio"]: 2}, row_signed={ROW["data_lift"]: True, ROW["kd_lift"]: True})
    scope_table(out.tables / "confound_fone.tex", result["tables"]["values"], "macro_f1", "system", result, out,
                title="Macro F1 of the train-only, train+test and distilled students",
                notes=["Bold: best per column."], unavailable=gone)
