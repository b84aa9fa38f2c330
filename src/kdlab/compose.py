"""What `dvc exp run -S ...` would write to params.yaml: conf/ composed by Hydra, in-process.

DVC composes params.yaml from conf/ (`hydra.enabled` in .dvc/config) with the same call;
tests and notebooks use this to get the configuration of a profile without running DVC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from kdlab.typed import ParamsError

CONFIG_NAME = "config"  # conf/config.yaml, DVC's default hydra.config_name


def check_conf(conf_dir: str | Path) -> None:
    """Every YAML file of ``conf_dir`` parsed strictly first: a syntax error or a duplicate key is a
    ParamsError naming the file, line and column (kdlab.yamlfile), not a Hydra traceback. (`dvc exp run`
    reports both with file, line and column too, through OmegaConf's loader.)"""
    from kdlab.yamlfile import load_yaml

    folder = Path(conf_dir)
    if not folder.is_dir():
        raise ParamsError(f"{folder}: not a folder; expected the conf/ folder params.yaml is composed from")
    for path in sorted(folder.rglob("*.yaml")):
        load_yaml(path)


def compose(conf_dir: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The params mapping for Hydra ``overrides`` (e.g. ``["profile=demo", "data.max_length=32"]``)."""
    check_conf(conf_dir)
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
        cfg = hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def write_params(conf_dir: str | Path, path: str | Path, overrides: Sequence[str] = ()) -> None:
    """Write params.yaml as `dvc exp run` does (DVC's own composition function, so the bytes agree)."""
    from dvc.utils.hydra import compose_and_dump

    check_conf(conf_dir)

    compose_and_dump(str(path), str(Path(conf_dir).resolve()), None, CONFIG_NAME, "", list(overrides))
