"""Temperature scaling vs distillation: two quantities, kept apart and named (docs/study.md §6).

(a) The course's test, on the EVAL half (T fitted on the calibration half): vanilla raw,
    vanilla + T, kd, kd + T (ECE, NLL, macro F1), and the share of KD's gain reproduced by
    temperature scaling, (M_v − M_vT) / (M_v − M_kd), for M = ECE and NLL.
(b) Han Guo et al. 2021's quantity, on the FULL val split (no T fitted here: teacher =
    published temperature-scaled logits, teacher_raw = raw ones): the share of the teacher's
    temperature-scaling gain that reaches the student,
    (M(kd_raw_teacher) − M(kd)) / (M(teacher_raw) − M(teacher)).
vanilla, kd and kd_raw_teacher stand for params.yaml's baseline_arm, headline_arm, raw_teacher_arm.

Shares: the point estimate from the full rows; intervals from per-resample ratios
(stats.ratio_of_deltas) on shared resamples, median and percentiles. Also the fitted T of
every arm and of the raw teacher with its LBFGS convergence (results/calibration.json).
"""

from __future__ import annotations

import math

import numpy as np

from kdlab import stats
from kdlab.analyses.common import boot_record, clean, dash, eval_fold, flat, frames, resample_many
from kdlab.analyses.context import Study
from kdlab.report import latex

KEYS = ("ece", "nll", "macro_f1")
COURSE_SHARE, PAPER_SHARE = "137 %", "111.2 %"  # published figures: cited in captions only, never used as data
TEMP_KEYS = ("temperature", "nll_before", "nll_after", "iterations", "log10_grad", "converged")


def _levels(study: Study, rows: np.ndarray, entries) -> tuple[list, dict, dict]:
    """Records, point estimates and resampled values of each (label, system, scaled) on ``rows``."""
    bins, y, idx = study.cfg.evaluation.ece_bins, study.labels[rows], study.bootstrap_indices(len(rows))
    jobs = []
    for label, system, scaled in entries:
        p, pred = study.probs(system, scaled)[rows], study.predictions(system).preds[rows]
        jobs += [("ece", dict(probs=p, labels=y, n_bins=bins)), ("nll", dict(probs=p, labels=y)),
                 ("macro_f1", dict(labels=y, preds=pred))]
    it = iter(resample_many(jobs, idx, points=True))
    got = {label: {k: next(it) for k in KEYS} for label, _, _ in entries}
    pts = {label: {k: v[0] for k, v in g.items()} for label, g in got.items()}
    smp = {label: {k: v[1] for k, v in g.items()} for label, g in got.items()}
    recs = []
    for label, system, scaled in entries:
        rec = {"system": label, "arm": system, "scaled": scaled, "n": len(rows),
               "temperature": study.temperature(system) if scaled else None}
        for k in KEYS:
            rec.update(flat(k, stats.summarize(pts[label][k], smp[label][k], study.seed)))
        recs.append(rec)
    return recs, pts, smp


def _share(name: str, key: str, terms: tuple[str, str, str, str], pts: dict, smp: dict, seed: int) -> dict:
    """(key(a) − key(b)) / (key(c) − key(d)) for ``terms`` = (a, b, c, d)."""
    a, b, c, d = terms
    num, den = pts[a][key] - pts[b][key], pts[c][key] - pts[d][key]
    ratios = stats.ratio_of_deltas(smp[a][key], smp[b][key], smp[c][key], smp[d][key])
    rec = {"quantity": name, "metric": key, "terms": list(terms), "available": True}
    rec.update(flat("share", stats.summarize(num / den if den != 0 else math.nan, ratios, seed)))
    rec.update(flat("numerator", stats.summarize(num, smp[a][key] - smp[b][key], seed)))
    rec.update(flat("denominator", stats.summarize(den, smp[c][key] - smp[d][key], seed)))
    rec["denominator_nonpositive"] = float(np.mean((smp[c][key] - smp[d][key]) <= 0))
    return rec


def compute(study: Study) -> dict:
    """(a) eval half: vanilla, vanilla + T, kd, kd + T; (b) full val: teacher_raw, teacher, kd_raw_teacher, kd."""
    base, unav, seed = study.cfg.baseline_arm, study.unavailable, study.seed
    kd, raw = study.cfg.headline_arm, study.cfg.raw_teacher_arm
    course_entries = [(base, base, False), (f"{base} + T", base, True), (kd, kd, False), (f"{kd} + T", kd, True)]
    paper_entries = [("teacher_raw", "teacher_raw", False), ("teacher", "teacher", False), (raw, raw, False),
                     (kd, kd, False)]
    missing = {a: unav.get(a, "not configured in params.yaml") for a in (base, kd, raw)
               if a in unav or a not in study.arms}
    tables, numbers = {}, {}
    for part, rows, entries, terms in (
            ("course", study.fold[1], course_entries, (base, f"{base} + T", base, kd)),
            ("paper", np.arange(study.n), paper_entries, (raw, kd, "teacher_raw", "teacher"))):
        ok = [e for e in entries if e[1] not in missing]
        recs, pts, smp = _levels(study, rows, ok)
        tables[part] = recs + [{"system": lab, "arm": s, "available": False, "reason": missing[s]}
                               for lab, s, _ in entries if s in missing]
        name = "course: share of KD's gain reproduced by T" if part == "course" else \
            "paper: share of the teacher's T gain transferred"
        gone = sorted({s for lab, s, _ in entries if s in missing and lab in terms})
        tables[f"{part}_shares"] = [
            _share(name, k, terms, pts, smp, seed) if not gone else
            {"quantity": name, "metric": k, "available": False,
             "reason": "; ".join(f"{s}: {missing[s]}" for s in gone)} for k in ("ece", "nll")]
        tag = "HanGuo" if part == "course" else "HanGuoPaper"
        for r in tables[f"{part}_shares"]:
            m = r["metric"].capitalize()
            for suffix in ("", "Low", "High", "Median"):
                key = "share" + (f"_{suffix.lower()}" if suffix else "")
                numbers[f"{tag}Share{m}{suffix}"] = latex.percent(r[key], 0) if r.get(key) is not None else "--"
        for r in recs:
            for k, name_k in (("ece", "Ece"), ("nll", "Nll"), ("macro_f1", "MacroFone")):
                numbers[f"{tag}{latex.macro_name(r['system'].replace(' + T', ' ts'))}{name_k}"] = r[k]
    argmax = {a: bool(np.array_equal(study.probs(a)[study.fold[1]].argmax(1),
                                      study.probs(a, scaled=True)[study.fold[1]].argmax(1)))
              for a in (base, kd) if a not in missing}
    temps = [{"system": "teacher_raw", **_fit(study.calibration["teacher_raw"])}] + \
            [{"system": a, **_fit(study.calibration["arms"].get(a, {}))} for a in study.cfg.arm_names]
    for t in temps:
        numbers[f"FittedTemperature{latex.macro_name(t['system'])}"] = t.get("temperature")
    numbers["FittedTemperatureNotConverged"] = sum(1 for t in temps if t.get("converged") is False)
    numbers["HanGuoNEval"] = len(study.fold[1])
    tables["temperature"] = temps
    return clean({"name": "han_guo", "n": study.n, "n_eval": len(study.fold[1]), "n_cal": len(study.fold[0]),
                  "fold": {"course": eval_fold(study), "paper": "full val"}, "bootstrap": boot_record(study),
                  "unavailable": missing, "argmax_unchanged_by_T": argmax, "baseline": base, "headline": kd,
                  "raw_teacher": raw, "tables": tables,
                  "numbers": {k: dash(v) for k, v in numbers.items()}})


def _fit(rec: dict) -> dict:
    if "temperature" not in rec:
        return {"available": False, "reason": rec.get("reason", "not available")}
    grad = rec["grad_norm"]
    return {"available": True, **{k: rec[k] for k in ("temperature", "log_temperature", "nll_before", "nll_after",
                                                       "iterations", "converged")},
            "log10_grad": math.log10(grad) if grad > 0 else None}


def render(result: dict, out) -> None:
    """reports/tables/han_guo_{course,course_shares,paper,paper_shares,temperature}.tex (no figure)."""
    b, base, kd, raw = result["bootstrap"], result["baseline"], result["headline"], result["raw_teacher"]
    boot = dict(resamples=b["resamples"], seed=b["seed"], source=out.source, demo_note=out.profile_note)
    eval_text = f"evaluation half of val (fold seed {result['fold']['course'].split('seed ')[-1]})"
    for part, n, fold in (("course", result["n_eval"], eval_text), ("paper", result["n"], "full validation split")):
        recs = result["tables"][part]
        ok = {r["system"]: r for r in recs if r.get("available", True)}
        values, low, high = frames(ok, KEYS)
        values["temperature"] = [r.get("temperature") or math.nan for r in ok.values()]
        low["temperature"] = high["temperature"] = math.nan
        order = [r["system"] for r in recs]
        notes = (["T fitted on the calibration half, applied to the evaluation half; T divides the logits, so the "
                  "argmax and macro F1 are unchanged. Best value per column in bold."] if part == "course" else
                 ["No temperature is fitted here: teacher = published temperature-scaled logits, teacher_raw = raw "
                  f"logits; {kd} distils from the former, {raw} from the latter. The card does not say where "
                  "the teacher's T was fitted (if on val, its val ECE is in-sample). Best student in bold."])
        latex.write_table(
            out.tables / f"han_guo_{part}.tex", values.reindex(order), low=low.reindex(order),
            high=high.reindex(order), decimals={"temperature": 3, "macro_f1": 4, "ece": 4, "nll": 4},
            unavailable={r["system"]: r["reason"] for r in recs if not r.get("available", True)},
            best_among=None if part == "course" else [s for s in ok if not s.startswith("teacher")],
            size=r"\footnotesize", label=f"tab:han_guo_{part}", stack=True,
            caption_tex=latex.caption("Han Guo test (a), the course's: temperature scaling vs distillation"
                                      if part == "course" else "Han Guo test (b), the paper's: teacher-side "
                                      "temperature scaling and the distilled student", n=n, fold=fold,
                                      notes=notes,
                                      **boot))
        shares = result["tables"][f"{part}_shares"]
        keys = ["numerator", "denominator", "share", "share_median"]
        ok = {r["metric"].upper(): r for r in shares if r["available"]}
        values, low, high = frames(ok, keys)
        for frame in (values, low, high):
            frame[["share", "share_median"]] *= 100.0
        rows = [r["metric"].upper() for r in shares]
        esc = latex.escape_latex
        heads = ({"numerator": f"gain from T on {esc(base)}", "denominator": "gain from KD"} if part == "course" else
                 {"numerator": f"student gain ({esc(raw)} $-$ {esc(kd)})",
                  "denominator": "teacher gain (raw $-$ T)"})
        tails = [f"{k}: {r['denominator_nonpositive']:.1%} of resamples have a denominator <= 0, so the share is "
                 "heavy-tailed there." for k, r in ok.items() if r["denominator_nonpositive"] > 0.025]
        cite = (f"The course reports this share as {COURSE_SHARE} (its number, not computed here)."
                if part == "course" else f"Han Guo et al. 2021 report {PAPER_SHARE} for temperature scaling "
                "(BERT students; their number, not computed here).")
        latex.write_table(
            out.tables / f"han_guo_{part}_shares.tex", values.reindex(rows), low=low.reindex(rows),
            high=high.reindex(rows), best_among=[], decimals={"share": 1, "share_median": 1},
            unavailable={r["metric"].upper(): r["reason"] for r in shares if not r["available"]},
            headers={**heads, "share": r"share (\%)", "share_median": r"median share (\%)"},
            size=r"\footnotesize", label=f"tab:han_guo_{part}_shares", stack=True,
            caption_tex=latex.caption(
                ("(a) The course's quantity: (M(v) - M(v + T)) / (M(v) - M(kd))" if part == "course" else
                 f"(b) The paper's quantity: (M({raw}) - M({kd})) / (M(teacher_raw) - M(teacher))"),
                n=n, fold=fold, notes=["Point: from the full rows; interval and median: per-resample ratios of "
                                       "the paired resampled gains."] + tails + [cite], **boot))
    temps = {t["system"]: t for t in result["tables"]["temperature"]}
    values, _, _ = frames({k: t for k, t in temps.items() if t["available"]}, TEMP_KEYS)
    latex.write_table(
        out.tables / "han_guo_temperature.tex", values.reindex(list(temps)), best_among=[],
        unavailable={k: t["reason"] for k, t in temps.items() if not t["available"]},
        decimals={"temperature": 4, "nll_before": 4, "nll_after": 4, "iterations": 0, "log10_grad": 1, "converged": 0},
        headers={"temperature": "$T$", "nll_before": "NLL at $T = 1$", "nll_after": "NLL at $T$",
                 "iterations": "LBFGS iter.", "log10_grad": r"$\log_{10} |g|$",
                 "converged": "converged (1 = yes)"},
        label="tab:han_guo_temperature", compact=True,
        caption_tex=latex.caption("Fitted temperature per system (LBFGS on log T minimising NLL)", n=result["n_cal"],
                                  fold="calibration half of val", source=out.source, demo_note=out.profile_note,
                                  notes=["NLLs on the calibration half; g: the final d NLL / d log T; "
                                         "converged: |g| below 1e-6. "
                                         f"Not converged: {result['numbers']['FittedTemperatureNotConverged']}."]))
