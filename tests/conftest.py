"""Shared fixtures: the repository's params.yaml and the reference course files."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COURSE_DATA = Path(__file__).resolve().parents[2] / "shared" / "course-data"
_PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture
def params_raw() -> dict:
    """A fresh deep copy of the raw params.yaml mapping (tests may edit it freely)."""
    return copy.deepcopy(_PARAMS)


@pytest.fixture
def course_data() -> Path:
    """The reference course files (../shared/course-data); skip when they are not there."""
    if not (COURSE_DATA / "label_list.json").is_file():
        pytest.skip(f"reference course files not found in {COURSE_DATA}")
    return COURSE_DATA
