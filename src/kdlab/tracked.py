"""A stage sees only the params dvc.yaml lists for it: what DVC records is what the stage read.

DVC reruns a stage when one of its listed params changes, and records those
values in dvc.lock. A stage that read an unlisted value would compute with a
setting DVC never sees. :func:`restrict` wraps the loaded :class:`~kdlab.config.Config`
so that reading any other value stops the stage with a message naming it;
:func:`stage_params` asks DVC itself (its own foreach / matrix resolution) which
keys the stage lists. Validation of the whole file happens before, on the full
config, so a bad value anywhere is still reported first.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from kdlab.errors import KdlabError

ALL = "*"  # the stage tracks the whole params file
T = TypeVar("T")


class UntrackedParamError(KdlabError):
    """A stage read a param that dvc.yaml does not list for it (a bug in dvc.yaml or in the stage)."""


@dataclass(frozen=True)
class StageSpec:
    """What dvc.yaml declares for one stage: the params it lists and its outs (paths from the root)."""

    params: list[str]  # keys of params.yaml; [ALL] for the whole file
    outs: list[str]


def read_stages(root: Path, stages: Sequence[str], read: Callable[[Any], T]) -> dict[str, T]:
    """``read(s)`` of DVC's own Stage object ``s`` for each of ``stages`` that dvc.yaml in ``root`` declares,
    in one DVC call; empty when ``root`` holds no dvc.yaml (e.g. a test calling a stage module directly)."""
    if not (root / "dvc.yaml").is_file():
        return {}
    from dvc.repo import Repo  # DVC resolves foreach / matrix / ${...} exactly as it runs them

    out = {}
    with Repo(str(root)) as repo:
        for stage in dict.fromkeys(stages):
            try:
                (found,) = repo.stage.collect(stage)
            except Exception:  # noqa: BLE001 - DVC raises several types for an unknown stage name
                continue
            out[stage] = read(found)
    return out


def read_stage(root: Path, stage: str, read: Callable[[Any], T]) -> T | None:
    """:func:`read_stages` for one stage; None when it is not declared."""
    return read_stages(root, [stage], read).get(stage)


def _listed_params(found) -> list[str]:
    listed: list[str] = []
    for dep in found.deps:
        if getattr(dep, "def_path", None) == "params.yaml" and hasattr(dep, "params"):
            listed += list(dep.params) if dep.params else [ALL]
    return listed


def stage_specs(root: Path, stages: Sequence[str]) -> dict[str, StageSpec]:
    """The :class:`StageSpec` of each of ``stages`` that dvc.yaml in ``root`` declares (one DVC call for all)."""
    return read_stages(root, stages, lambda found: StageSpec(_listed_params(found),
                                                            [str(out.def_path) for out in found.outs]))


def stage_params(root: Path, stage: str) -> list[str] | None:
    """Keys of params.yaml that dvc.yaml lists for ``stage`` (``[ALL]`` for the whole file);
    None when ``root`` holds no dvc.yaml or the stage is not in it (e.g. a test calling a stage)."""
    return read_stage(root, stage, _listed_params)


def _covers(path: str, allowed: Sequence[str]) -> str:
    """"all" if ``path`` or an ancestor is allowed, "part" if a descendant is, else "none"."""
    if ALL in allowed or any(path == a or path.startswith(a + ".") for a in allowed):
        return "all"
    if any(a.startswith(path + ".") for a in allowed):
        return "part"
    return "none"


class View:
    """Read-only view of a dataclass instance that exposes only the allowed params paths.

    Properties and methods of the wrapped class run against the view, so a method that
    reads an untracked field is caught too. ``arms`` (a tuple in the config, a mapping
    ``arms.<name>`` in params) shows only the arms whose key is allowed.
    """

    __slots__ = ("_obj", "_path", "_allowed", "_stage")

    def __init__(self, obj: Any, path: str, allowed: Sequence[str], stage: str):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_allowed", tuple(allowed))
        object.__setattr__(self, "_stage", stage)

    def __reduce__(self):  # the report hands the config to worker processes
        return (View, (self._obj, self._path, self._allowed, self._stage))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in View.__slots__:
            raise AttributeError(name)  # a slot not set yet (unpickling) or a protocol lookup
        obj = self._obj
        fields = {f.name for f in dataclasses.fields(obj)}
        if name not in fields:
            static = inspect.getattr_static(type(obj), name, None)
            if isinstance(static, property):
                return static.fget(self)
            if isinstance(static, (types.FunctionType, staticmethod, classmethod)):
                return getattr(type(obj), name).__get__(self, type(self)) if isinstance(static, types.FunctionType) \
                    else getattr(obj, name)
            return getattr(obj, name)
        value = getattr(obj, name)
        if name == "source_file" and not self._path:
            return value  # where the params came from, not a param
        path = f"{self._path}.{name}" if self._path else name
        cover = _covers(path, self._allowed)
        if cover == "all":
            return value
        if cover == "part":
            if path == "arms":
                return tuple(a for a in value if _covers(f"arms.{a.name}", self._allowed) == "all")
            if dataclasses.is_dataclass(value):
                return View(value, path, self._allowed, self._stage)
        raise UntrackedParamError(
            f"stage {self._stage} read params.yaml `{path}`, which dvc.yaml does not list for it, so DVC would not "
            f"rerun it when that value changes; add `{path}` to the stage's params in dvc.yaml")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the configuration is read-only")

    def __repr__(self) -> str:
        return f"View({type(self._obj).__name__} at {self._path or 'params.yaml'}, stage {self._stage})"


def restrict(cfg: Any, allowed: Sequence[str] | None, stage: str) -> Any:
    """``cfg`` itself when every key is allowed (or nothing is known), else a :class:`View`."""
    if allowed is None or ALL in allowed:
        return cfg
    return View(cfg, "", allowed, stage)
