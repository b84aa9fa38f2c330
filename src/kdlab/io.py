"""File I/O with the project's guarantees: atomic writes, checksums, no pickles.

Every writer goes through a temporary file in the target's folder and an
``os.replace``, so an interrupted stage never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from kdlab.errors import KdlabError


class ArtifactError(KdlabError):
    """A file is missing, corrupt or does not match what the study expects."""


_UMASK = os.umask(0)
os.umask(_UMASK)


TEMP_SUFFIX = ".tmp"  # every temporary file or folder next to (or inside) an output: .<name>.<random>.tmp


def temp_prefix(target: Path) -> str:
    """The name prefix of the temporary files that become ``target``."""
    return f".{target.name}."


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=TEMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give outputs the usual mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temps(outs: Iterable[str | Path]) -> list[Path]:
    """Delete what a killed run left of its outputs: ``.<name>.*.tmp`` next to each out, and every
    ``.*.tmp`` inside an out folder. Returns what was removed (a stage calls this before it starts:
    its own outputs are written by no one else)."""
    removed = []
    for out in map(Path, outs):
        stale = [Path(p) for p in glob.glob(glob.escape(str(out.parent / temp_prefix(out))) + "*" + TEMP_SUFFIX)]
        if out.is_dir():
            stale += [p for p in out.rglob(f".*{TEMP_SUFFIX}")]
        for path in sorted(set(stale)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists() or path.is_symlink():
                path.unlink()
            removed.append(path)
    return removed


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | Path, what: str = "") -> Any:
    """Parse a JSON file; a missing, empty, non-UTF-8 or malformed file is an :class:`ArtifactError`
    naming it. ``what``: the param that points to an input file (e.g. ``teacher.published.metadata``),
    named in the message; without it the file is a stage's output, and the message says to rebuild it."""
    path = Path(path)
    name = f"{path} ({what})" if what else str(path)
    remedy = f"fix the file or point {what} at the right one" if what else \
        "delete it and rerun the stage that writes it (dvc repro)"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(f"{name}: not found; " + (remedy if what else "run the stage that writes it (dvc repro)")) \
            from None
    except IsADirectoryError:
        raise ArtifactError(f"{name}: is a folder; expected a JSON file: {remedy}") from None
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a JSON file: "
                            f"{remedy}") from None
    if not text.strip():
        raise ArtifactError(f"{name}: is empty; expected a JSON document: {remedy}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{name}: not valid JSON ({exc}); {remedy}") from None


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write an uncompressed ``.npz`` atomically; object arrays are refused."""
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"{path}: array {key!r} has dtype object; store numbers or fixed-width strings")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


_KINDS = {"f": "float", "i": "signed integer", "u": "unsigned integer", "U": "text", "S": "bytes"}
_NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (an empty one: the second)
_NPY_MAGIC = b"\x93NUMPY"


def _check_npz_header(path: Path) -> None:
    """Refuse a file that is not a zip archive before numpy guesses what it is (it would try a pickle)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        raise ArtifactError(f"{path}: is empty (0 bytes); expected an .npz archive of arrays: "
                            "download or regenerate it")
    if head.startswith(_NPZ_MAGIC):
        return
    found = "a single .npy array" if head.startswith(_NPY_MAGIC) else f"bytes {head!r}"
    raise ArtifactError(f"{path}: not an .npz archive (expected a zip archive of .npy arrays, found {found}); "
                        "download or regenerate it")


def load_npz(path: str | Path, required: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` without pickles.

    ``required`` maps key -> numpy dtype kind(s) (e.g. ``"f"``, ``"iu"``, ``"iuUS"``);
    a missing key or a wrong kind is an :class:`ArtifactError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise ArtifactError(f"{path}: {what}; run the stage that writes it (dvc repro)")
    _check_npz_header(path)
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
    stray = sorted(key for key, value in arrays.items() if not isinstance(value, np.ndarray))
    if stray:
        raise ArtifactError(f"{path}: members {stray} are not .npy arrays; expected an .npz archive written by "
                            "numpy (np.savez): download or regenerate it")
    for key, kinds in (required or {}).items():
        if key not in arrays:
            raise ArtifactError(f"{path}: missing array {key!r}; expected keys {sorted(required)}, found "
                                f"{sorted(arrays)}: download or regenerate it")
        if arrays[key].dtype.kind not in kinds:
            raise ArtifactError(
                f"{path}: array {key!r} has dtype {arrays[key].dtype}; expected kind {kinds!r} "
                f"({', '.join(_KINDS[k] for k in kinds)}): download or regenerate it"
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
