"""Stages that only read predictions stay free of heavy imports.

An audit run starts ~28 stage processes; torch (~2 s) or matplotlib + seaborn
(~1.5 s) in each of them is most of the audit's time budget. These tests import
each light stage in a fresh interpreter and list what it pulled in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kdlab.analyses import ANALYSES

HEAVY = ("torch", "transformers", "accelerate", "matplotlib", "seaborn")


def loaded_after(code: str) -> set[str]:
    """Top-level package names in sys.modules after running ``code`` in a fresh interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["kdlab.stages.calibrate", "kdlab.stages.evaluate", "kdlab.stages.analyze",
                                    "kdlab.stages.train", "kdlab.stages.report"])
def test_stage_modules_load_no_torch_or_plotting(module):
    heavy = loaded_after(f"import {module}") & set(HEAVY)
    assert not heavy, f"{module} imports {sorted(heavy)} at module level"


def test_analyses_compute_without_plotting_libraries():
    code = "\n".join(f"import kdlab.analyses.{name}" for name in ANALYSES)
    heavy = loaded_after(code) & set(HEAVY)
    assert not heavy, f"the analysis modules import {sorted(heavy)} at module level"


def test_the_probe_sees_heavy_imports():
    # the check above can fail: the report's figure module draws, so it must show matplotlib
    # (the report stage itself loads it only in the processes that draw)
    assert "matplotlib" in loaded_after("import kdlab.report.figures")
