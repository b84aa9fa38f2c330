"""One colour per system in every figure, and one per tier.

:func:`system_palette` maps every system a figure can show (the teachers, each arm, each arm
``+ T``) to a colour, once per report from the analysis params (arm order, baseline and headline
arms), so the vanilla student is the same blue in the bar charts, the reliability diagrams and
the coverage curves. A temperature-scaled system ``<arm> + T`` is a lighter shade of its arm.
Tiers (head / mid / tail) use a separate purple ramp (ColorBrewer BuPu), so a tier is never mistaken for a system.
Colours are hex strings (no plotting library needed here).
"""

from __future__ import annotations

from typing import Mapping, Sequence

# seaborn's "colorblind" palette (Wong 2011 family) without its grey and yellow, then darker extras
SYSTEM_COLORS = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#56b4e9",
                 "#6a3d9a", "#b15928", "#1b9e77", "#e7298a", "#66a61e", "#a6761d", "#7570b3", "#e6ab02")
TEACHER_COLORS = {"teacher": "#262626", "teacher_raw": "#8c8c8c"}
TIER_COLORS = {"head": "#4d004b", "mid": "#88419d", "tail": "#8c96c6"}  # ColorBrewer BuPu
OVERALL_COLOR = "#262626"
SCALED = " + T"


def lighter(color: str, amount: float = 0.45) -> str:
    """``color`` mixed with white (``amount`` 0: unchanged, 1: white)."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def system_order(arms: Sequence[str], baseline: str, headline: str, featured: Sequence[str] = ()) -> list[str]:
    """Arms in colour order: the baseline, the headline arm, the ``featured`` ones (the arms the
    comparison figures show, in that order), then the rest in params order."""
    first = [baseline, headline, *featured]
    return list(dict.fromkeys([a for a in first if a in arms] + list(arms)))


def system_palette(arms: Sequence[str], baseline: str, headline: str, featured: Sequence[str] = ()) -> dict[str, str]:
    """system -> colour for the teachers, every arm and every ``<arm> + T``."""
    out = dict(TEACHER_COLORS)
    for i, arm in enumerate(system_order(arms, baseline, headline, featured)):
        out[arm] = SYSTEM_COLORS[i % len(SYSTEM_COLORS)]
        out[arm + SCALED] = lighter(out[arm])
    return out


def color(palette: Mapping[str, str], system: str) -> str:
    """The colour of ``system``; an unknown ``<x> + T`` is a lighter ``<x>``; anything else grey."""
    if system in palette:
        return palette[system]
    if system.endswith(SCALED) and system[: -len(SCALED)] in palette:
        return lighter(palette[system[: -len(SCALED)]])
    return "#999999"


def tier_color(scope: str) -> str:
    """head / mid / tail on the purple ramp; ``overall`` dark grey."""
    return TIER_COLORS.get(scope, OVERALL_COLOR)
