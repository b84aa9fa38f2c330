"""An output folder replaced as a whole: a stage never leaves a mix of old and new files in it."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator


def staging_path(target: Path) -> Path:
    """The hidden folder next to ``target`` where its new contents are written."""
    return target.parent / f".{target.name}.staging.tmp"  # .*.tmp: ignored by git and DVC, swept at stage start


@contextlib.contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty folder next to ``target``; when the block succeeds it replaces ``target``.

    Nothing is written to ``target`` before then, so a check that fails, or a kill, leaves the
    previous contents as they were; a staging folder left by a killed run is removed here first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        old = target.parent / f".{target.name}.old.tmp"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
