"""Analysis 5 (Stanton et al. 2021): does distillation close the teacher–student gap ("fidelity")?

Compared, per available arm on the full validation split (overall and per
tier), against the temperature-scaled teacher (``study.probs("teacher")``) on
the same rows: top-1 agreement, mean KL(teacher ‖ student) and mean
JS(teacher, student) (nats), each with a bootstrap interval; the change of
each arm vs the baseline arm on the same resamples (paired); and the share of
the baseline's gap to the teacher that the arm closes, per resample:
agreement (A_arm − A_base) / (1 − A_base), KL and JS (D_base − D_arm) / D_base.
Stanton et al. measure agreement and KL; the course uses JS: all three are kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdlab import stats
from kdlab.analyses.common import (LABEL, add_numbers, ci_record, delta, excludes_zero, figure_arms, figure_note,
                                   header, macro, measure, scope_bars, scope_table, unavailable_rows)
from kdlab.analyses.context import SCOPES, Study

METRICS = ("agreement", "kl", "js")
TAGS = {"agreement": "Agreement", "kl": "KlToTeacher", "js": "JsToTeacher"}
SHORT = {"agreement": "agreement", "kl": "KL", "js": "JS"}


def gap_closed(arm: tuple[float, np.ndarray], base: tuple[float, np.ndarray], metric: str, study: Study) -> dict:
    """Interval of the share of the baseline's gap to the teacher closed by ``arm`` (1: no gap left).

    The teacher's own value is 1 for agreement and 0 for KL and JS, so the
    gap is 1 − A_base or D_base; the share is stats.ratio_of_deltas per resample.
    """
    def share(a, b):
        a, b = np.atleast_1d(a).astype(float), np.atleast_1d(b).astype(float)
        if metric == "agreement":
            return stats.ratio_of_deltas(a, b, np.ones_like(b), b)
        return stats.ratio_of_deltas(b, a, b, np.zeros_like(b))
    return ci_record(float(share(arm[0], base[0])[0]), share(arm[1], base[1]), study)


def verdict(change: dict, closed: dict, metric: str) -> str:
    """Stanton's question in words, from the change's and the share's intervals."""
    better = (change["low"] or 0) > 0 if metric == "agreement" else (change["high"] or 0) < 0
    if not excludes_zero(change):
        return "no detectable change (interval of the change includes 0)"
    if not better:
        return "widens the gap"
    if closed["high"] is not None and closed["high"] < 1:
        return "reduces but does not close the gap"
    return "reduces the gap; full closure not excluded"


def compute(study: Study) -> dict:
    """Fidelity values of every available arm, its change vs the baseline and the gap share closed."""
    base, kd, arms = study.cfg.baseline_arm, study.cfg.headline_arm, study.available
    values, deltas, gaps = [], [], []
    for scope in SCOPES:
        got = measure(study, scope, arms, METRICS)
        for s in arms:
            for m in METRICS:
                values.append({"system": s, "scope": scope, "metric": m, **ci_record(*got[s][m], study)})
                if base in got and s != base:
                    change, closed = delta(got[s][m], got[base][m], study), gap_closed(got[s][m], got[base][m],
                                                                                        m, study)
                    key = {"arm": s, "baseline": base, "scope": scope, "metric": m}
                    deltas.append({**key, **change, "excludes_zero": excludes_zero(change)})
                    gaps.append({**key, **closed, "verdict": verdict(change, closed, m)})
    result = {"name": "stanton", **header(study)}
    for r in values + deltas + gaps:
        r["n"] = result["n"][r["scope"]]
    missing = unavailable_rows(result["unavailable"])
    result["tables"] = {"values": values + missing, "deltas": deltas + missing, "gap_closed": gaps + missing}
    result["summary"] = {f"{g['scope']}/{g['metric']}": g["verdict"] for g in gaps if g["arm"] == kd}
    numbers: dict = {}

    def find(table, **key):
        return next((r for r in table if all(r.get(k) == v for k, v in key.items())), None)
    for scope in SCOPES:
        sc = scope.capitalize()
        for m, tag in TAGS.items():
            for s in (base, kd):
                add_numbers(numbers, f"{macro(s)}{sc}{tag}", find(values, system=s, scope=scope, metric=m))
            add_numbers(numbers, f"{macro(kd)}{sc}{tag}Delta", find(deltas, arm=kd, scope=scope, metric=m))
            add_numbers(numbers, f"{macro(kd)}{sc}{tag}GapClosed", find(gaps, arm=kd, scope=scope, metric=m))
    result["numbers"] = numbers
    return result


def render(result: dict, out) -> None:
    """reports/tables/stanton_{agreement,kl,js,gap}.tex and reports/figures/stanton_js.{pdf,png}."""
    from kdlab.report import figures  # matplotlib loads only when drawing (see kdlab.analyses)
    base, kd, gone = result["baseline"], result["headline"], result["unavailable"]
    for m in METRICS:
        scope_table(out.tables / f"stanton_{m}.tex", result["tables"]["values"], m, "system", result, out,
                    title=f"Fidelity to the temperature-scaled teacher: {SHORT[m]}, overall and per tier",
                    notes=[f"{LABEL[m]}; KL and JS in nats, mean over rows (probabilities clipped at 1e-12). "
                           "Bold: the closest to the teacher per column."], unavailable=gone)
    rows = [{**r, "row": f"{SHORT[m]}: {kind}", "metric": "gap"} for m in METRICS
            for kind, table in (("change", "deltas"), ("gap share closed", "gap_closed"))
            for r in result["tables"][table] if r.get("arm") == kd and r["metric"] == m]
    scope_table(out.tables / "stanton_gap.tex", rows, "gap", "row", result, out, direction="none",
                title=f"Does {kd} close the gap to the teacher? Change vs {base} and share of the gap closed",
                unavailable={kd: gone[kd]} if kd in gone else None,
                notes=[f"Change: {kd} minus {base}. Share closed: (A_kd - A_base)/(1 - A_base) for agreement, "
                       "(D_base - D_kd)/D_base for KL and JS, per resample; 1 means no gap left. "
                       "Stanton et al. (2021) report that distillation reduces but does not close the gap."])
    shown = [base] + [a for a in figure_arms(result) if a != base]
    tidy = pd.DataFrame([r for r in result["tables"]["values"] if r.get("metric") == "js" and r["system"] in shown],
                        columns=["system", "scope", "metric", "estimate", "low", "high"])
    tidy[["estimate", "low", "high"]] = tidy[["estimate", "low", "high"]].astype(float)
    figures.set_style()
    fig = scope_bars(tidy, ("js",), result["n"], figure_note(result, out, shown), "nats (lower: closer to teacher)",
                     palette=out.palette)
    figures.save_figure(fig, out.figures / "stanton_js")
