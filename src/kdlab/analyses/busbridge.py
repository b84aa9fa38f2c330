"""Analysis 3 (Busbridge et al. 2025, §E.8): calibration vs how much of the teacher's distribution crosses.

Compared on the full validation split (overall and per tier): the distilled
arms ordered by k, the number of teacher probabilities the student sees —
top-1 distillation (``loss: top1_kd``, k = 1), top-k (``loss: topk_kd``,
k = ``top_k``) and full-distribution KD (``headline_arm``, kd, k = C) — and the
baseline arm (no teacher) as reference. Per system: ECE, NLL and
JS(teacher, student) with bootstrap intervals; per arm: the change vs full
KD on the same resamples (paired). The calibration-vs-k curve is the values
ordered by k.
"""

from __future__ import annotations

import numpy as np

from kdlab.analyses.common import (LABEL, add_numbers, ci_record, delta, excludes_zero, figure_note, header, macro,
                                   measure, scope_table, unavailable_rows)
from kdlab.analyses.context import SCOPES, Study

METRICS = ("ece", "nll", "js")
TAGS = {"ece": "Ece", "nll": "Nll", "js": "JsToTeacher"}
PUBLISHED = ("Published reference (a cited fact, not measured here): Busbridge et al. (2025, Distillation "
             "Scaling Laws, section E.8) report student ECE of 0.1-0.6 % with full-distribution KD "
             "and 22-39 % with top-1 KD.")


def ladder(study: Study) -> list[tuple[str, int]]:
    """(arm, k) for every distilled arm of params.yaml that sees k teacher probabilities, by k."""
    rungs = []
    for arm in study.cfg.arms:
        if arm.loss == "top1_kd":
            rungs.append((arm.name, 1))
        elif arm.loss == "topk_kd":
            rungs.append((arm.name, int(arm.top_k)))
        elif arm.name == study.cfg.headline_arm:
            rungs.append((arm.name, int(study.teacher.n_classes)))
    return sorted(rungs, key=lambda r: r[1])


def compute(study: Study) -> dict:
    """ECE, NLL and JS of each ladder arm and the baseline; each ladder arm minus full KD."""
    base, kd, avail = study.cfg.baseline_arm, study.cfg.headline_arm, set(study.available)
    rungs = ladder(study)
    k_of = dict(rungs)
    systems = [a for a, _ in rungs if a in avail] + ([base] if base in avail else [])
    values, vs_full = [], []
    for scope in SCOPES:
        got = measure(study, scope, systems, METRICS)
        for s in systems:
            for m in METRICS:
                values.append({"system": s, "k": k_of.get(s), "scope": scope, "metric": m,
                               **ci_record(*got[s][m], study)})
                if kd in got and s not in (kd, base):
                    rec = delta(got[s][m], got[kd][m], study)
                    vs_full.append({"arm": s, "k": k_of[s], "reference": kd, "scope": scope, "metric": m,
                                    **rec, "excludes_zero": excludes_zero(rec)})
    result = {"name": "busbridge", **header(study), "ladder": [{"arm": a, "k": k} for a, k in rungs],
              "published": PUBLISHED}
    for r in values + vs_full:
        r["n"] = result["n"][r["scope"]]
        r["unstable"] = r["metric"] == "ece" and result["ece_unstable"][r["scope"]]
    result["unavailable"] = {a: why for a, why in study.unavailable.items() if a in k_of or a == base}
    missing = unavailable_rows(result["unavailable"])
    result["tables"] = {"values": values + missing, "vs_full": vs_full + missing}
    numbers: dict = {}
    for scope in SCOPES:
        for s in [a for a, _ in rungs] + [base]:
            for m in ("ece", "nll"):
                rec = next((r for r in values if (r["system"], r["scope"], r["metric"]) == (s, scope, m)), None)
                add_numbers(numbers, f"Busbridge{macro(s)}{scope.capitalize()}{TAGS[m]}", rec)
    for s, _ in rungs:
        if s != kd:
            rec = next((r for r in vs_full if (r["arm"], r["scope"], r["metric"]) == (s, "overall", "ece")), None)
            add_numbers(numbers, f"Busbridge{macro(s)}EceMinusFull", rec)
    result["numbers"] = numbers
    return result


def row_label(result: dict):
    """arm -> its row label: ``top1_kd (k=1)``, ``kd (k=113, full)``, ``vanilla (no teacher)``."""
    k_of, kd = {r["arm"]: r["k"] for r in result["ladder"]}, result["headline"]
    full = max(k_of.values(), default=None)

    def label(arm: str) -> str:
        if arm not in k_of:
            return f"{arm} (no teacher)" if arm == result["baseline"] else arm
        return f"{arm} (k={k_of[arm]}{', full' if k_of[arm] == full and arm == kd else ''})"
    return label


def shaky_rows(result: dict) -> list[str]:
    bad = [s for s, flag in result["ece_unstable"].items() if flag]
    return [f"ECE rows are descriptive only for {', '.join(bad)} (fewer than "
            f"{result['min_tier_examples_per_bin']:g} examples per ECE bin)."] if bad else []


def render(result: dict, out) -> None:
    """reports/tables/busbridge_{ece,nll,js,vs_full}.tex, reports/figures/busbridge_calibration_vs_k.{pdf,png}."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    label, gone, kd = row_label(result), result["unavailable"], result["headline"]
    for m in METRICS:
        scope_table(out.tables / f"busbridge_{m}.tex", result["tables"]["values"], m, "system", result, out,
                    title=f"{LABEL[m]} by how much of the teacher's distribution the student sees (k)",
                    notes=["Bold: best per column.", PUBLISHED], unavailable=gone, label_of=label,
                    unstable_ece=m == "ece")
    rows = [{**r, "row": f"{label(r['arm'])}: {LABEL[r['metric']]}", "metric": "vs"}
            for r in result["tables"]["vs_full"] if r.get("metric")]
    scope_table(out.tables / "busbridge_vs_full.tex", rows, "vs", "row", result, out, direction="none", signed=True,
                title=f"Change vs full-distribution KD ({kd}): arm minus {kd}, same resamples",
                unavailable={label(a): why for a, why in gone.items() if a != result["baseline"]},
                notes=[PUBLISHED, *shaky_rows(result)])
    figures.set_style()
    fig = calibration_vs_k(result, figure_note(result, out))  # lines are tiers: the tier colours
    figures.save_figure(fig, out.figures / "busbridge_calibration_vs_k")


def calibration_vs_k(result: dict, note: str):
    """ECE and NLL against k (log axis), one line per scope with interval bars; the
    baseline (no teacher) as a dashed line of the same colour."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    palette = {s: figures.colours.tier_color(s) for s in SCOPES}
    fig, axes = figures.subplots(1, 2, squeeze=False)
    vals = [r for r in result["tables"]["values"] if r.get("metric")]
    ks = sorted({r["k"] for r in vals if r["k"] is not None})
    for ax, m in zip(axes[0], ("ece", "nll")):
        for scope in SCOPES:
            pts = sorted((r for r in vals if r["metric"] == m and r["scope"] == scope and r["k"] is not None),
                         key=lambda r: r["k"])
            if pts:
                k, v, lo, hi = (np.array([p[c] for p in pts], float) for c in ("k", "estimate", "low", "high"))
                ax.errorbar(k, v, yerr=np.clip(np.nan_to_num([v - lo, hi - v]), 0, None), marker="o", capsize=2,
                            color=palette[scope], label=f"{scope} (n={result['n'][scope]:,})")
            ref = [r for r in vals if r["metric"] == m and r["scope"] == scope and r["system"] == result["baseline"]]
            if ref and ref[0]["estimate"] is not None:
                ax.axhline(ref[0]["estimate"], color=palette[scope], ls="--", lw=0.8)
        ax.set_xscale("log")
        if ks:
            ax.set_xticks(ks, [str(k) for k in ks])
        shaky = [t for t, flag in result["ece_unstable"].items() if flag] if m == "ece" else []
        ax.set(xlabel="k: teacher probabilities the student sees (log)",
               title=f"{LABEL[m]} (lower is better)" + (f"\nunstable: {', '.join(shaky)}" if shaky else ""))
    figures.shared_legend(fig, axes, title=f"dashed line: {result['baseline']} (no teacher), same colour")
    figures.add_note(fig, note)
    return fig
