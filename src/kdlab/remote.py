"""Fetch pinned remote artifacts (Hub files, raw URLs) or use a local copy instead.

Every remote input of the study is an :class:`~kdlab.config.Artifact` param.
:func:`fetch` returns a path on disk and a :class:`Fetched` record (source,
resolved revision, sha256) that stages write next to their outputs, so a
reviewer can trace every number to the exact bytes it came from.

Access tokens are read by ``huggingface_hub`` from the environment
(``HF_TOKEN``) and never printed or recorded.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from kdlab.config import Artifact
from kdlab.io import ArtifactError, atomic_path, verify_sha256

COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
OFFLINE_HINT = (
    "If this machine is offline, set the param's `local:` to a copy of the file, "
    "or run the offline demo instead: dvc exp run -S profile=demo"
)


@dataclass(frozen=True)
class Fetched:
    """Where a file came from; JSON-serialisable via :meth:`as_dict`."""

    what: str
    path: str
    source: str
    sha256: str
    revision: str | None = None
    pinned: bool = True

    def as_dict(self) -> dict:
        """The record stages write into their outputs: where the bytes came from, never where they lie
        on this machine (a host path would make the output differ between machines)."""
        record = asdict(self)
        record.pop("path")
        return record


def _warn(message: str) -> None:
    print(f"kdlab: warning: {message}", file=sys.stderr)


def _fetch_url(url: str, dest: Path, what: str, timeout: float = 60.0) -> Path:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
            with open(tmp, "wb") as handle:
                while block := response.read(1 << 20):
                    handle.write(block)
    except urllib.error.HTTPError as exc:  # the server answered: not an offline problem
        raise ArtifactError(
            f"{what}: could not download {url} (HTTP {exc.code} {exc.reason}); the server answered, "
            "so the pinned URL is wrong or the file moved: fix it in params.yaml"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ArtifactError(f"{what}: could not download {url} ({exc}). {OFFLINE_HINT}") from None
    return dest


def _resolve_hub_filename(artifact: Artifact, what: str) -> str:
    """Expand a glob ``filename`` against the repository's files at the pinned revision."""
    pattern = artifact.filename or ""
    if not any(ch in pattern for ch in "*?["):
        return pattern
    from huggingface_hub import HfApi

    try:
        files = HfApi().list_repo_files(artifact.repo_id, repo_type=artifact.repo_type, revision=artifact.revision)
    except Exception as exc:  # huggingface_hub raises many network/HTTP error types
        raise ArtifactError(
            f"{what}: could not list {artifact.repo_id}@{artifact.revision} ({type(exc).__name__}: {exc}). "
            f"{OFFLINE_HINT}"
        ) from None
    matches = sorted(f for f in files if fnmatch.fnmatch(f, pattern))
    if len(matches) != 1:
        raise ArtifactError(
            f"{what}: filename pattern {pattern!r} must match exactly one file in "
            f"{artifact.repo_id}@{artifact.revision}, found {matches or 'none'}; set `filename` to the exact path"
        )
    return matches[0]


_RESOLVED: dict[tuple, str] = {}


def resolve_revision(repo_id: str, repo_type: str, revision: str | None, what: str) -> str:
    """The commit ``revision`` names: itself when it is one, else the branch or tag resolved on the Hub,
    with a warning (a branch moves; the run records the commit it used)."""
    if revision is not None and COMMIT_SHA.match(revision):
        return revision
    key = (repo_id, repo_type, revision)
    if key not in _RESOLVED:
        from huggingface_hub import HfApi

        try:
            _RESOLVED[key] = HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision).sha
        except Exception as exc:  # network, auth, unknown revision: all reported the same way
            raise ArtifactError(f"{what}: could not resolve {repo_id}@{revision} to a commit "
                                f"({type(exc).__name__}: {exc}). {OFFLINE_HINT}") from None
        _warn(f"{what} names {revision!r}, not a commit: using commit {_RESOLVED[key]} of {repo_id}. "
              "Pin that commit in conf/ to make the run reproducible.")
    return _RESOLVED[key]


def _fetch_hub(artifact: Artifact, what: str) -> tuple[Path, str | None]:
    from huggingface_hub import HfApi, hf_hub_download

    filename = _resolve_hub_filename(artifact, what)
    revision = artifact.revision
    try:
        if revision is None or not COMMIT_SHA.match(revision):
            # Resolve a branch or tag to the commit actually used, so the record is exact.
            revision = HfApi().repo_info(
                artifact.repo_id, repo_type=artifact.repo_type, revision=artifact.revision
            ).sha
        path = hf_hub_download(
            repo_id=artifact.repo_id, filename=filename, repo_type=artifact.repo_type, revision=revision
        )
    except Exception as exc:  # network, auth, missing file: all reported the same way
        raise ArtifactError(
            f"{what}: could not download {filename} from {artifact.repo_id}@{artifact.revision} "
            f"({type(exc).__name__}: {exc}). {OFFLINE_HINT}"
        ) from None
    return Path(path), revision


def _local_remedy(what: str) -> str:
    return (f"this is a file on this machine ({what}.local), not a download. If it is your own file, set "
            f"{what}.sha256 in params.yaml to null (use it unpinned) or to the sha256 found (pin it), e.g. "
            f"-S {what}.sha256=null; if it is meant to be a copy of the original file, the copy differs from the "
            "original: copy it again")


def fetch(artifact: Artifact, what: str, download_dir: str | Path) -> tuple[Path, Fetched]:
    """Return a local path for ``artifact`` and the record of where it came from.

    ``what`` names the param (e.g. ``"data.course_files.label_list"``) in every
    message. URL downloads land in ``download_dir``; Hub files stay in the
    Hugging Face cache; local files are used in place. A set ``sha256`` is
    verified in every case.
    """
    pinned = artifact.sha256 is not None
    if artifact.local:
        path = Path(artifact.local).expanduser()
        if not path.is_file():
            raise ArtifactError(f"{what}: local file {path} does not exist; fix `{what}.local` in params.yaml")
        source, revision = f"local file ({what}.local)", None
    elif artifact.url:
        name = artifact.url.rstrip("/").rsplit("/", 1)[-1]
        path = _fetch_url(artifact.url, Path(download_dir) / name, what)
        source, revision = artifact.url, None
    elif artifact.repo_id and artifact.filename:
        path, revision = _fetch_hub(artifact, what)
        source = f"hf://{artifact.repo_type}s/{artifact.repo_id}/{path.name}"
        pinned = pinned or bool(artifact.revision and COMMIT_SHA.match(artifact.revision))
    else:
        raise ArtifactError(f"{what}: set one of `local`, `url`, or `repo_id` + `filename` in params.yaml")
    digest = verify_sha256(path, artifact.sha256, what, _local_remedy(what) if artifact.local else (
        "the downloaded file is corrupt, or its source now serves another version: run again to download it "
        f"again; if the new version is intended, update {what}.sha256 in conf/ (params.yaml)"))
    if not pinned and artifact.local:
        _warn(f"{what} is not pinned (your own file {path.name}, {what}.local, has no sha256): using sha256 {digest}. "
              f"Pin it with -S {what}.sha256={digest}: DVC reruns the stages when params change, not when a file "
              "outside the repository does.")
    elif not pinned:
        if artifact.repo_id and not artifact.local and not artifact.url:
            detail, used = f"revision {artifact.revision!r}, no sha256", f"commit {revision}, "
        else:
            detail, used = "no sha256", ""
        _warn(f"{what} is not pinned ({detail}): using {used}sha256 {digest}. "
              "Pin it in params.yaml to make the run reproducible.")
    return path, Fetched(what=what, path=str(path), source=source, sha256=digest, revision=revision, pinned=pinned)
