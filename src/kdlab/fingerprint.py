"""A stage's fingerprint: what DVC would compare to decide whether the stage must run again.

A resume checkpoint (kdlab.checkpoint) records it, and a rerun resumes only when its own fingerprint
is the same: the stage's command, the values of the params dvc.yaml lists for it (as the stage sees
them) and the hash of every dependency, each computed by DVC itself (the same md5s dvc.lock records;
DVC's state database makes unchanged files cheap to hash again).
"""

from __future__ import annotations

from pathlib import Path

from kdlab.checkpoint import Checkpointing, ModelState, checkpoint_folder
from kdlab.tracked import read_stage


def stage_fingerprint(root: Path, stage: str) -> dict | None:
    """``{"stage", "cmd", "params": {key: value}, "deps": {path: hash}}`` of ``stage``; None when
    ``root`` holds no dvc.yaml or the stage is not in it (a stage module called directly, in tests)."""
    return read_stage(root, stage, fingerprint_of)


def fingerprint_of(stage) -> dict:
    """The fingerprint of a DVC ``Stage`` object (see :func:`stage_fingerprint`)."""
    params: dict = {}
    deps: dict = {}
    for dep in stage.deps:
        if not dep.exists:  # not produced yet (`kdlab plan` before a run): no checkpoint can match
            deps[dep.def_path] = None
            continue
        value = dep.get_hash().value
        if hasattr(dep, "params"):  # a params file: {key: value} of the keys the stage lists
            params.update({k if dep.def_path == "params.yaml" else f"{dep.def_path}:{k}": v for k, v in value.items()})
        else:
            deps[dep.def_path] = value
    return {"stage": stage.name, "cmd": stage.cmd, "params": params, "deps": deps}


def stage_checkpointing(stage: str, every: int, model_state: ModelState = ModelState()) -> Checkpointing | None:
    """Resume checkpoints for the training stage ``stage`` run from the repository root, keyed to its
    fingerprint; None when no dvc.yaml defines the stage (nothing to key them to, so none are kept).
    ``model_state``: what of the model is saved (a LoRA teacher: only its trainable tensors)."""
    fingerprint = stage_fingerprint(Path("."), stage)
    return None if fingerprint is None else Checkpointing(checkpoint_folder(stage), fingerprint, every, model_state)
