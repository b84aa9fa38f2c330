"""The configuration values a group of stages reads, as one JSON record, and where two records differ.

The stage `study` writes the record of the keys it tracks (the ones the stages after training
read) to results/study.json; those stages compare it with the configuration they load
(kdlab.stages.common.check_study).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

from kdlab.config import Config


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, tuple) and value and all(dataclasses.is_dataclass(v) for v in value):
        return [dataclasses.asdict(v) for v in value]
    return value


def config_value(cfg: Config, key: str) -> Any:
    """The value at a params path (``evaluation.bootstrap``; ``arms.kd``; ``arms`` as name -> settings)."""
    head, _, rest = key.partition(".")
    if head == "arms":
        arms = {a.name: {k: v for k, v in dataclasses.asdict(a).items() if k != "name"} for a in cfg.arms}
        value: Any = arms
        for part in rest.split(".") if rest else []:
            value = value[part]
        return value
    value = getattr(cfg, head)
    for part in rest.split(".") if rest else []:
        value = getattr(value, part)
    return _plain(value)


def config_record(cfg: Config, keys: Sequence[str]) -> dict[str, Any]:
    """{key: value} for ``keys`` as plain JSON values (every default filled in)."""
    return json.loads(json.dumps({key: config_value(cfg, key) for key in keys}, sort_keys=True))


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
