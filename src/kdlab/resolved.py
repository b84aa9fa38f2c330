"""The effective configuration as one JSON record, and where two such records differ.

The stage `study` writes this record to results/study.json; the stages after training
compare it with the configuration they load (kdlab.stages.common.check_study).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from kdlab.config import Config


def config_record(cfg: Config) -> dict[str, Any]:
    """The effective configuration as plain JSON values (the profile's overlay applied, every
    default filled in); ``source_file`` is left out, since it says where it was read, not what."""
    record = json.loads(json.dumps(dataclasses.asdict(cfg), sort_keys=True))
    record.pop("source_file")
    return record


def record_differences(stored: Any, current: Any, where: str = "") -> list[str]:
    """Dotted paths at which two :func:`config_record` values differ (mappings compared key by key)."""
    if isinstance(stored, dict) and isinstance(current, dict):
        paths = []
        for key in sorted(set(stored) | set(current), key=str):
            here = f"{where}.{key}" if where else str(key)
            if key not in stored or key not in current:
                paths.append(here)
            else:
                paths += record_differences(stored[key], current[key], here)
        return paths
    return [] if stored == current else [where or "(top level)"]
