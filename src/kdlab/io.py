"""File I/O with the project's guarantees: atomic writes, checksums, no pickles.

Every writer goes through a temporary file in the target's folder and an
``os.replace``, so an interrupted stage never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from kdlab.errors import KdlabError


class ArtifactError(KdlabError):
    """A file is missing, corrupt or does not match what the study expects."""


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give outputs the usual mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: not found; run the stage that writes it (dvc repro)") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc}); delete it and rerun the stage") from None


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write an uncompressed ``.npz`` atomically; object arrays are refused."""
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"{path}: array {key!r} has dtype object; store numbers or fixed-width strings")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_npz(path: str | Path, required: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` without pickles.

    ``required`` maps key -> numpy dtype kind(s) (e.g. ``"f"``, ``"iu"``, ``"iuUS"``);
    a missing key or a wrong kind is an :class:`ArtifactError` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: not found; run the stage that writes it (dvc repro)")
    try:
        with np.load(path, allow_pickle=False) as handle:
            arrays = {key: handle[key] for key in handle.files}
    except ValueError as exc:  # numpy raises ValueError for object arrays when pickles are off
        if "pickle" not in str(exc).lower():
            raise ArtifactError(f"{path}: not a readable .npz file ({exc}); download or regenerate it") from None
        raise ArtifactError(
            f"{path}: holds a pickled object array, which kdlab never loads ({exc}); "
            "re-export it with numeric arrays"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path}: not a readable .npz file ({exc}); download or regenerate it") from None
    for key, kinds in (required or {}).items():
        if key not in arrays:
            raise ArtifactError(f"{path}: missing array {key!r}; expected keys {sorted(required)}, found {sorted(arrays)}")
        if arrays[key].dtype.kind not in kinds:
            raise ArtifactError(
                f"{path}: array {key!r} has dtype {arrays[key].dtype}; expected kind {kinds!r}"
            )
    return arrays


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str | None, what: str = "", remedy: str | None = None) -> str:
    """Return the file's sha256; raise if ``expected`` is set and differs. ``remedy``: what the message
    tells the user to do (default: a downloaded file is corrupt or a different version)."""
    actual = sha256_file(path)
    if expected is not None and actual != expected.lower():
        label = f" ({what})" if what else ""
        raise ArtifactError(
            f"{path}{label}: sha256 mismatch: expected {expected}, found {actual}; " + (remedy or (
                "the file is corrupt or a different version: delete it and download again, "
                "or update the pinned sha256 in params.yaml if the change is intended"))
        )
    return actual
