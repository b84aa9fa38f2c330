"""The paper's findings, worded by rules on the numbers: ``reports/findings.tex``.

Each finding is one paragraph (a ``\\newcommand{\\kdFinding<Question>}{...}``) whose numbers are
macros of ``numbers.tex`` (``\\kdKdHeadFoneLift{}``), never literals, and whose words follow from
the intervals behind those macros: "the interval excludes 0", "includes 0", "lies above 100 %".
So a rerun that changes a number changes the sentence with it. The run's labels (data, teacher,
students, the warning banner) and the published-numbers section, which appears only when the run's
data and teacher are the study's, are macros of the same file.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Optional

from kdlab.report import latex, provenance

DETECTED = "the interval excludes 0"
NOT_DETECTED = "the interval includes 0"


class Numbers:
    """Read access to numbers.tex's values by macro name; :meth:`ref` cites one (KeyError if undefined)."""

    def __init__(self, values: Mapping[str, object]):
        self.values = values

    def ref(self, name: str) -> str:
        if name not in self.values:
            raise KeyError(f"findings cite \\kd{name}, which numbers.tex does not define")
        return rf"\kd{name}{{}}"

    def ci(self, name: str) -> str:
        """``\\kdX{} [\\kdXLow{}, \\kdXHigh{}]``."""
        return f"{self.ref(name)} [{self.ref(name + 'Low')}, {self.ref(name + 'High')}]"

    def value(self, name: str) -> Optional[float]:
        """The number behind ``\\kd<name>`` (a float, an int or a numeric string such as "4"); None for "--"."""
        v = self.values.get(name)
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                return None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    def interval(self, name: str) -> tuple[Optional[float], Optional[float], Optional[float]]:
        return self.value(name), self.value(name + "Low"), self.value(name + "High")


def side(low: Optional[float], high: Optional[float], ref: float = 0.0) -> Optional[str]:
    """Where the interval [low, high] lies relative to ``ref``: "above", "below", "includes"; None if missing."""
    if low is None or high is None:
        return None
    return "above" if low > ref else "below" if high < ref else "includes"


def change_words(n: Numbers, name: str, what: str, higher_is_better: bool = True) -> str:
    """``<what> changes by X [lo, hi] (rule)``, with the rule worded from the interval."""
    cited, (_, low, high) = n.ci(name), n.interval(name)  # an undefined macro is an error, "--" is "not available"
    where = side(low, high)
    if where is None:
        return f"{what}: not available in this run"
    good = (where == "above") == higher_is_better
    verdict = NOT_DETECTED if where == "includes" else f"{DETECTED}: {'better' if good else 'worse'}"
    return f"{what} changes by {cited} ({verdict})"


def tiers(n: Numbers, kd: str, base: str) -> str:
    """Q1: macro F1 and ECE differences per tier."""
    k = latex.macro_name(kd)
    scopes = {"Overall": "overall", "Head": "on the head", "Mid": "on the mid tier", "Tail": "on the tail"}
    f1 = [change_words(n, f"{k}{s}FoneLift", f"macro F1 {where}") for s, where in scopes.items()]
    ece = [change_words(n, f"{k}{s}EceDelta", f"ECE {where}", higher_is_better=False) for s, where in scopes.items()]
    gains = [w for s, w in scopes.items() if s != "Overall" and side(*n.interval(f"{k}{s}FoneLift")[1:]) == "above"]
    summary = (f"A macro F1 gain is detectable {', '.join(gains)}; elsewhere the intervals include 0 or lie below it."
               if gains else "No tier shows a macro F1 gain whose interval excludes 0.")
    esc = latex.escape_latex
    return (f"Against {esc(base)}, the distilled student {esc(kd)}: " + "; ".join(f1) + ". " + summary
            + " Calibration: " + "; ".join(ece) + ".")


def summary(n: Numbers, han_guo: dict, kd: str, base: str) -> str:
    """Two sentences for the abstract: the overall macro F1 and ECE changes, and share (a)."""
    k = latex.macro_name(kd)
    f1 = change_words(n, f"{k}OverallFoneLift", "overall macro F1")
    ece = change_words(n, f"{k}OverallEceDelta", "ECE", higher_is_better=False)
    a = next((r for r in han_guo["tables"]["course_shares"] if r["metric"] == "ece"), {})
    if a.get("available") and (a.get("denominator") or 0) > 0:
        share = (f" Temperature scaling of {latex.escape_latex(base)} reproduces {n.ci('HanGuoShareEce')} of "
                 f"distillation's ECE gain; " + share_words(a["share_low"], a["share_high"], "that gain", "any gain")
                 + ".")
    else:
        share = " Distillation did not lower ECE on the evaluation half, so the course's share is not defined."
    return f"Distillation ({latex.escape_latex(kd)} against {latex.escape_latex(base)}): {f1}; {ece}." + share


def share_words(low: Optional[float], high: Optional[float], full: str, none: str) -> str:
    """A clause on a share's interval against 0 and 100 %: ``full`` is what 100 % means, ``none`` what 0 means."""
    if low is None or high is None:
        return "the share is not available in this run"
    if high < 0:
        return f"that is below 0, the opposite of {none} (the interval lies below 0)"
    if low > 1:
        return f"that is more than {full} (the interval lies above 100\\,\\%)"
    if high < 1 and low > 0:
        return f"that is part of {full}, not all of it (the interval lies between 0 and 100\\,\\%)"
    if high < 1:
        return f"that is less than {full}, and {none} is not excluded (the interval includes 0)"
    if low > 0:
        return f"that is consistent with {full} (the interval includes 100\\,\\%)"
    return "the share is not determined (the interval includes both 0 and 100\\,\\%)"


def calibration(n: Numbers, han_guo: dict, kd: str, base: str) -> str:
    """Q2: temperature scaling against distillation, (a) the course's share and (b) Han Guo et al.'s."""
    b, k = latex.macro_name(base), latex.macro_name(kd)
    esc = latex.escape_latex
    shares = {(r["quantity"].split(":")[0], r["metric"]): r for part in ("course_shares", "paper_shares")
              for r in han_guo["tables"][part]}
    a, p = shares.get(("course", "ece"), {}), shares.get(("paper", "ece"), {})
    text = (f"On the evaluation half, temperature scaling moves {esc(base)}'s ECE from {n.ref(f'HanGuo{b}Ece')} to "
            f"{n.ref(f'HanGuo{b}TsEce')}, and distillation alone reaches {n.ref(f'HanGuo{k}Ece')} "
            f"({n.ref(f'HanGuo{k}TsEce')} with its own temperature). ")
    if not a.get("available"):
        text += f"(a) The course's share is not available: {esc(a.get('reason', 'missing arm'))}. "
    elif a["denominator"] is not None and a["denominator"] <= 0:
        text += ("(a) Distillation did not lower ECE here, so the share of its gain that temperature scaling "
                 f"reproduces is not defined (computed: {n.ref('HanGuoShareEce')}). ")
    else:
        text += (f"(a) The share of distillation's ECE gain that temperature scaling reproduces is "
                 f"{n.ci('HanGuoShareEce')}; "
                 + share_words(a["share_low"], a["share_high"], "distillation's whole gain", "any gain") + ". ")
        if a.get("denominator_nonpositive", 0) > 0.025:
            text += "The interval is wide because the KD gain's own resamples reach 0. "
    if not p.get("available"):
        text += f"(b) Han Guo et al.'s quantity is not available: {esc(p.get('reason', 'missing arm'))}."
    else:
        text += (f"(b) Of the teacher's own ECE gain from temperature scaling, the student keeps "
                 f"{n.ci('HanGuoPaperShareEce')}; "
                 + share_words(p["share_low"], p["share_high"], "full transfer", "no transfer") + ".")
    return text


def busbridge(n: Numbers, result: dict) -> str:
    """Q3: top-1 against full-distribution distillation."""
    kd, esc = result["headline"], latex.escape_latex
    top1 = next((r["arm"] for r in result["ladder"] if r["k"] == 1), None)
    if top1 is None or top1 in result["unavailable"] or kd in result["unavailable"]:
        return "The top-1 comparison is not available in this run (no top-1 arm with predictions)."
    t, k = latex.macro_name(top1), latex.macro_name(kd)
    where = side(*n.interval(f"Busbridge{t}EceMinusFull")[1:])
    verdict = {"above": "top-1 distillation is worse calibrated than full-distribution distillation, the direction "
                        f"Busbridge et al. report ({DETECTED})",
               "below": f"top-1 distillation is better calibrated, the opposite of Busbridge et al. ({DETECTED})",
               "includes": f"no detectable difference in calibration ({NOT_DETECTED})"}[where]
    return (f"With the full distribution ({esc(kd)}) the student's ECE is {n.ci(f'Busbridge{k}OverallEce')}; "
            f"with the top-1 label only ({esc(top1)}) it is {n.ci(f'Busbridge{t}OverallEce')}. The difference, "
            f"{n.ci(f'Busbridge{t}EceMinusFull')}, says {verdict}.")


def _with_pair(result: dict, missing: str, words: Callable[[str, str, str, str], str]) -> str:
    """``words(headline arm, baseline arm, their macro names)``, or ``missing`` when either has no predictions."""
    kd, base = result["headline"], result["baseline"]
    if kd in result["unavailable"] or base in result["unavailable"]:
        return missing
    return words(kd, base, latex.macro_name(kd), latex.macro_name(base))


def stanton(n: Numbers, result: dict) -> str:
    """Q4: does distillation close the gap to the teacher? (Stanton et al.'s verdict rule)."""
    from kdlab.analyses.stanton import verdict  # the analysis' rule, one definition

    def words(kd: str, base: str, k: str, b: str) -> str:
        esc, parts = latex.escape_latex, []
        for metric, tag, what in (("agreement", "Agreement", "top-1 agreement with the teacher"),
                                  ("kl", "KlToTeacher", "KL(teacher $\\|$ student)")):
            change, closed = (next(r for r in result["tables"][table] if (r.get("arm"), r.get("scope"), r.get("metric"))
                                   == (kd, "overall", metric)) for table in ("deltas", "gap_closed"))
            parts.append(f"{what} goes from {n.ref(f'{b}Overall{tag}')} ({esc(base)}) to {n.ref(f'{k}Overall{tag}')} "
                         f"({esc(kd)}), a change of {n.ci(f'{k}Overall{tag}Delta')} that closes "
                         f"{n.ci(f'{k}Overall{tag}GapClosed')} of the gap: distillation "
                         f"{verdict(change, closed, metric)}")
        text = "; ".join(parts) + "."
        return text[:1].upper() + text[1:]
    return _with_pair(result, "Fidelity is not available in this run (an arm has no predictions).", words)


def confound(n: Numbers, result: dict) -> str:
    """Q5: data lift against KD lift."""
    roles, esc = result["roles"], latex.escape_latex
    if result["unavailable"] or roles.get("train_only") is None:
        why = "; ".join(f"{a}: {r}" for a, r in result["unavailable"].items())
        return f"The data confound is not measured in this run ({esc(why)})."
    data = change_words(n, "DataFoneLiftOverall", f"Adding the test split to training ({esc(roles['baseline'])} "
                        f"against {esc(roles['train_only'])}), macro F1")
    kd = change_words(n, "ConfoundKdFoneLiftOverall", f"distilling ({esc(roles['kd'])} against "
                      f"{esc(roles['baseline'])}), macro F1")
    if side(*n.interval("ConfoundKdFoneLiftOverall")[1:]) == "includes":
        ratio = ("The ratio of the two is not interpretable: its denominator's interval includes 0 "
                 f"(computed: {n.ref('DataKdRatioOverall')}).")
    else:
        ratio = f"The data lift is {n.ci('DataKdRatioOverall')} times the KD lift."
    return f"{data}; {kd}. {ratio}"


def sweep(n: Numbers, result: dict) -> str:
    """Q6: the best cell against the recipe's cell."""
    if not n.value("SweepCells"):
        return "No sweep cell has predictions in this run."
    if None in (n.value("SweepRecipeTd"), n.value("SweepBestMacroFoneTd")):
        raise ValueError("findings: the sweep's best and recipe cells must be numbers in numbers.tex")
    best = (n.value("SweepBestMacroFoneTd"), n.value("SweepBestMacroFoneAlpha"))
    recipe = (n.value("SweepRecipeTd"), n.value("SweepRecipeAlpha"))
    head = (f"Of {n.ref('SweepCells')} cells, the best macro F1 is {n.ref('SweepBestMacroFone')} at "
            f"$T_d = {n.ref('SweepBestMacroFoneTd')}$, $\\alpha = {n.ref('SweepBestMacroFoneAlpha')}$; the recipe's "
            f"cell ($T_d = {n.ref('SweepRecipeTd')}$, $\\alpha = {n.ref('SweepRecipeAlpha')}$) ranks "
            f"{n.ref('SweepDefaultRankMacroFone')}. ")
    if best == recipe:
        verdict = "The recipe's cell is the best."
    elif side(*n.interval("SweepBestMacroFoneDelta")[1:]) == "includes":
        verdict = (f"The best cell's lead over the recipe, {n.ci('SweepBestMacroFoneDelta')}, is not detectable "
                   f"({NOT_DETECTED}).")
    else:
        verdict = f"The best cell beats the recipe by {n.ci('SweepBestMacroFoneDelta')} ({DETECTED})."
    return (head + verdict + f" Across the grid macro F1 spans {n.ref('SweepSpreadMacroFone')} and ECE "
            f"{n.ref('SweepSpreadEce')}.")


def coverage(n: Numbers, result: dict) -> str:
    """Q7: accuracy at the headline threshold and the SLA threshold."""
    def words(kd: str, base: str, k: str, b: str) -> str:
        esc, at = latex.escape_latex, f"$\\geq {n.ref('CoverageThreshold')}$"
        acc = change_words(n, "CoverageAccuracyDelta", f"accuracy on the examples with confidence {at}")
        sla = [f"{esc(name)} never reaches it" if n.value(f"SlaThresholdFine{tag}") is None else
               f"{esc(name)} reaches it from confidence {n.ref(f'SlaThresholdFine{tag}')}"
               for name, tag in ((base, b), (kd, k))]
        return (f"At confidence {at}, {esc(base)} covers {n.ref(f'SelectiveCoverage{b}')} of the examples at "
                f"accuracy {n.ref(f'SelectiveAccuracy{b}')}, {esc(kd)} covers {n.ref(f'SelectiveCoverage{k}')} at "
                f"{n.ref(f'SelectiveAccuracy{k}')}; from {esc(base)} to {esc(kd)}, {acc}. For the "
                f"{n.ref('SlaAccuracy')} accuracy SLA, " + " and ".join(sla) + ".")
    return _with_pair(result, "Selective prediction is not compared in this run (an arm has no predictions).", words)


def run_labels(facts: provenance.RunFacts) -> dict[str, str]:
    """The run's labels as LaTeX text (escaped): data, teacher, students, warning, "distilled from"."""
    esc = latex.escape_latex
    warning = provenance.warning(facts)
    return {"RunData": esc(provenance.data_phrase(facts)), "RunTeacher": esc(provenance.teacher_phrase(facts)),
            "RunStudents": esc(provenance.student_phrase(facts)), "RunDistilledFrom": esc(provenance.distilled_from(facts)),
            "RunWarning": rf"\textbf{{{esc(warning)}}}" if warning else ""}


def published_section(facts: provenance.RunFacts, n: Numbers) -> str:
    """The published-numbers section's body: the table and its count, or why it is omitted."""
    applies, why = provenance.published_applies(facts)
    if not applies:
        return (latex.escape_latex(why) + " The check itself still runs on every run: its table is in the "
                r"appendix (Table~\ref{tab:published_check}), marked as not applicable.")
    return (r"Table~\ref{tab:published_check} sets every number the study published next to this run's value, "
            r"with the output it comes from; " + f"{n.ref('PublishedMatched')} of the {n.ref('PublishedCompared')} "
            r"numbers this run computes are reproduced at the published precision. Per-tier differences use the "
            r"course's statistic (the median of 1,000 paired resamples).\par\input{tables/published_check.tex}")
