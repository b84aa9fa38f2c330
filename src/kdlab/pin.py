"""``kdlab pin``: replace branch names and missing digests of Hub artifacts in conf/ by commits and sha256.

Run once on a machine with internet::

    kdlab pin                  # resolve every branch to its commit, hash every file that has no sha256
    kdlab pin --dry-run        # print what would change, write nothing
    kdlab pin --only-revisions # resolve branches only (no downloads)

A Hub artifact is a mapping of conf/ with a ``repo_id`` (kdlab.config.Artifact, or a backbone with
``source: hub``). Its ``revision``, when not a 40-hex commit, becomes the commit the Hub names for it
now (``HfApi().repo_info(...).sha``); its ``sha256``, when null and ``filename`` is not a glob, becomes
the digest of the file downloaded at that commit. URL artifacts pin themselves (a commit in the URL
and a sha256) and are left alone.

The YAML files are edited as text, not re-dumped: PyYAML's node API (:func:`yaml.compose`) gives the
character span of every scalar, and only the spans of the values that change are replaced, so
comments, key order and layout stay as they were. Nothing is written until every artifact resolved;
each file is then replaced atomically.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from kdlab.errors import KdlabError
from kdlab.typed import ParamsError
from kdlab.yamlfile import parse_yaml
from kdlab.io import atomic_path, sha256_file

COMMIT = re.compile(r"^[0-9a-f]{40}$")
GLOB_CHARS = "*?["
NULL_TAG = "tag:yaml.org,2002:null"
REPO_TYPES = ("model", "dataset")
NOTHING_WRITTEN = "nothing was written"
LOGIN_HINT = ("check the repo id, the revision and the connection; a private or gated repository "
              "needs `hf auth login` (or HF_TOKEN) first")


class PinError(KdlabError):
    """An artifact of conf/ cannot be pinned (bad entry, Hub error); no file was changed."""


# --------------------------------------------------------------------------- #
# Finding the Hub artifacts of a conf file (pure)
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Scalar:
    """One value in a YAML text: ``None`` for null, and its character span ``[start, end)``."""

    value: Optional[str]
    start: int
    end: int


@dataclass(frozen=True)
class HubEntry:
    """A Hub reference in one conf file.

    ``keys`` is its path inside the file (for checking the edit), ``where`` its path in params.yaml
    (the file's Hydra package + ``keys``). ``sha256`` is None when the entry takes no digest (a glob,
    or a backbone, which is a whole repository).
    """

    file: str
    keys: tuple[Any, ...]
    where: str
    repo_id: str
    repo_type: str
    filename: Optional[str]
    revision: Scalar
    sha256: Optional[Scalar]


@dataclass(frozen=True)
class Change:
    """Replace ``old`` (the text at ``[start, end)`` of ``entry.file``) by ``new``."""

    entry: HubEntry
    key: str  # "revision" or "sha256"
    old: Optional[str]
    new: str

    @property
    def span(self) -> tuple[int, int]:
        scalar = getattr(self.entry, self.key)
        return scalar.start, scalar.end


def dotted(keys: tuple[Any, ...]) -> str:
    """("published", "sweep", 2, "file") -> "published.sweep[2].file" (how params paths are written)."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def hydra_package(relative: Path, text: str) -> tuple[str, ...]:
    """Where Hydra puts a conf file's keys in params.yaml: a ``# @package`` header of the file's leading
    comments, else its config group (``teacher/published.yaml`` -> ``teacher``); the primary config is global."""
    group = relative.parent.as_posix().replace("/", ".") if relative.parent != Path(".") else ""
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header = re.match(r"#\s*@package\s+(\S+)", line)
        if header:
            package = header.group(1)
            if package == "_global_":
                return ()
            return tuple(package.replace("_group_", group).split("."))
    return tuple(group.split(".")) if group else ()


def _scalar(node: yaml.Node, what: str, text: str) -> Scalar:
    if not isinstance(node, yaml.ScalarNode):
        raise PinError(f"{what}: expected a single value, found a {type(node).__name__.removesuffix('Node').lower()}; "
                       f"fix the file. {NOTHING_WRITTEN}")
    if text[node.start_mark.index:node.start_mark.index + 1] in ("&", "!"):  # the span would hold the anchor or tag
        raise PinError(f"{what}: a value with an anchor or a tag cannot be pinned in place; write it out plainly. "
                       f"{NOTHING_WRITTEN}")
    value = None if node.tag == NULL_TAG else node.value
    if value is not None and "${" in value:
        raise PinError(f"{what}: {value!r} is an interpolation; pin the value it refers to. {NOTHING_WRITTEN}")
    return Scalar(value, node.start_mark.index, node.end_mark.index)


def _mappings(node: yaml.Node, keys: tuple[Any, ...] = ()):
    """Every mapping node under ``node`` with its key path (aliases are visited where they are used)."""
    if isinstance(node, yaml.MappingNode):
        yield keys, node
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                yield from _mappings(value, keys + (key.value,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _mappings(item, keys + (i,))


def _entry(file: str, text: str, package: tuple[str, ...], keys: tuple[Any, ...],
           node: yaml.MappingNode) -> Optional[HubEntry]:
    fields = {key.value: value for key, value in node.value if isinstance(key, yaml.ScalarNode)}
    where = dotted(package + keys)
    label = f"{file}: {where}"
    repo_id = _scalar(fields["repo_id"], f"{label}.repo_id", text).value if "repo_id" in fields else None
    if not repo_id:
        return None  # a URL or local artifact
    filename = _scalar(fields["filename"], f"{label}.filename", text).value if "filename" in fields else None
    # An artifact without repo_type is a dataset (kdlab.config.Artifact); a mapping without filename
    # is a backbone, which loads a model repository.
    default_type = "dataset" if "filename" in fields else "model"
    repo_type = (_scalar(fields["repo_type"], f"{label}.repo_type", text).value if "repo_type" in fields
                 else default_type)
    if repo_type not in REPO_TYPES:
        raise PinError(f"{label}.repo_type: expected one of {list(REPO_TYPES)}, found {repo_type!r}; fix the file. "
                       f"{NOTHING_WRITTEN}")
    if "revision" not in fields:
        raise PinError(f"{label}: has no `revision:` key; add `revision: main` (or the commit) and run kdlab pin "
                       f"again. {NOTHING_WRITTEN}")
    revision = _scalar(fields["revision"], f"{label}.revision", text)
    sha256 = None
    if filename and not any(ch in filename for ch in GLOB_CHARS):
        if "sha256" not in fields:
            raise PinError(f"{label}: has no `sha256:` key; add `sha256: null` and run kdlab pin again. "
                           f"{NOTHING_WRITTEN}")
        sha256 = _scalar(fields["sha256"], f"{label}.sha256", text)
    return HubEntry(file, keys, where, repo_id, repo_type, filename, revision, sha256)


def find_hub_entries(text: str, file: str, package: tuple[str, ...] = ()) -> list[HubEntry]:
    """The Hub artifacts of one YAML text, in file order; ``file`` names it in messages. A syntax error or
    a duplicate key (which would leave the pin on the copy Hydra ignores) names the file, line and column."""
    try:
        parse_yaml(text, file)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except ParamsError as exc:
        raise PinError(f"{exc}. {NOTHING_WRITTEN}") from None
    except yaml.YAMLError as exc:
        raise PinError(f"{file}: not valid YAML ({exc}); fix the file. {NOTHING_WRITTEN}") from None
    if root is None:
        return []
    entries = [e for keys, node in _mappings(root) if (e := _entry(file, text, package, keys, node)) is not None]
    return sorted(entries, key=lambda e: e.revision.start)


# --------------------------------------------------------------------------- #
# Editing the text (pure)
# --------------------------------------------------------------------------- #
def yaml_literal(value: str) -> str:
    """``value`` as YAML text that reads back as that string. A hex string without a letter other than
    ``e`` would read as a number (``1234e56``, ``0123``), so it is quoted; any other is written bare."""
    return value if re.search(r"[a-df]", value) else f'"{value}"'


def apply_changes(text: str, changes: list[Change]) -> str:
    """``text`` with each change's span replaced by its new value; every other character is kept."""
    spans = sorted({c.span: c for c in changes}.items(), key=lambda item: item[0], reverse=True)  # aliases once
    previous_start = len(text)
    for (start, end), change in spans:
        if end > previous_start:
            raise PinError(f"{change.entry.file}: {change.entry.where}.{change.key}: overlapping edits; "
                           f"{NOTHING_WRITTEN}")
        literal = yaml_literal(change.new)
        if start == end:  # an empty value (`revision:`): keep the space after the colon
            literal = " " + literal
        text = text[:start] + literal + text[end:]
        previous_start = start
    return text


def _set(data: Any, keys: tuple[Any, ...], value: str) -> None:
    for key in keys[:-1]:
        data = data[key]
    data[keys[-1]] = value


def check_edit(old_text: str, new_text: str, changes: list[Change], file: str) -> None:
    """The edit changed exactly the planned values: the new text parses to the old data with them set."""
    expected = yaml.safe_load(old_text)
    for change in changes:
        _set(expected, change.entry.keys + (change.key,), change.new)
    try:
        same = yaml.safe_load(new_text) == expected
    except yaml.YAMLError:
        same = False
    if not same:
        raise PinError(f"{file}: the edited text does not read back as the old one with the pins set "
                       f"(a kdlab bug; please report it with the file). {NOTHING_WRITTEN}")


# --------------------------------------------------------------------------- #
# Asking the Hub
# --------------------------------------------------------------------------- #
def _scrub(message: str) -> str:
    """An exception's text without access tokens (huggingface_hub errors may echo request details)."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        message = message.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", message)


class Hub:
    """The two Hub calls pin needs, with one answer per (repo, revision): files of one repository
    pinned in one run all get the same commit even if the branch moves meanwhile."""

    def __init__(self, progress: Callable[[str], None]):
        self._commits: dict[tuple[str, str, Optional[str]], str] = {}
        self._progress = progress

    def commit(self, entry: HubEntry) -> str:
        key = (entry.repo_id, entry.repo_type, entry.revision.value)
        if key not in self._commits:
            from huggingface_hub import HfApi

            try:
                sha = HfApi().repo_info(entry.repo_id, repo_type=entry.repo_type, revision=entry.revision.value).sha
            except Exception as exc:  # network, auth, unknown repo or revision: all reported the same way
                raise PinError(f"{entry.file}: {entry.where}: could not resolve revision {entry.revision.value!r} of "
                               f"{entry.repo_type} {entry.repo_id} ({type(exc).__name__}: {_scrub(str(exc))}); "
                               f"{LOGIN_HINT}. {NOTHING_WRITTEN}") from None
            if not isinstance(sha, str) or not COMMIT.match(sha):
                raise PinError(f"{entry.file}: {entry.where}: the Hub answered {sha!r} for {entry.repo_id}@"
                               f"{entry.revision.value}, not a commit; {NOTHING_WRITTEN}")
            self._commits[key] = sha
        return self._commits[key]

    def sha256(self, entry: HubEntry, commit: str) -> str:
        from huggingface_hub import hf_hub_download

        self._progress(f"downloading {entry.repo_id}/{entry.filename} at {commit[:12]} to hash it")
        try:
            path = hf_hub_download(entry.repo_id, entry.filename, repo_type=entry.repo_type, revision=commit)
        except Exception as exc:  # network, auth, missing file: all reported the same way
            raise PinError(f"{entry.file}: {entry.where}: could not download {entry.filename} from "
                           f"{entry.repo_type} {entry.repo_id}@{commit} ({type(exc).__name__}: {_scrub(str(exc))}); "
                           f"{LOGIN_HINT}, or run with --only-revisions to pin the commits alone. "
                           f"{NOTHING_WRITTEN}") from None
        return sha256_file(path)


def plan(entries: list[HubEntry], hub: Hub, only_revisions: bool) -> list[Change]:
    """The changes that pin ``entries``: branch -> commit, null sha256 -> digest (unless ``only_revisions``)."""
    changes = []
    for entry in entries:
        revision = entry.revision.value
        commit = revision if revision is not None and COMMIT.match(revision) else hub.commit(entry)
        if commit != revision:
            changes.append(Change(entry, "revision", revision, commit))
        if entry.sha256 is not None and entry.sha256.value is None and not only_revisions:
            changes.append(Change(entry, "sha256", None, hub.sha256(entry, commit)))
    return changes


# --------------------------------------------------------------------------- #
# The command
# --------------------------------------------------------------------------- #
def _show(value: Optional[str]) -> str:
    return "null" if value is None else value


def describe(changes: list[Change]) -> list[str]:
    """One line per artifact: file, params path, old -> new of each value that changes."""
    lines: dict[tuple[str, str], list[str]] = {}
    for c in changes:
        lines.setdefault((c.entry.file, c.entry.where), []).append(f"{c.key} {_show(c.old)} -> {c.new}")
    return [f"{file}: {where}: " + ", ".join(parts) for (file, where), parts in lines.items()]


def pin(conf_dir: str | Path = "conf", dry_run: bool = False, only_revisions: bool = False,
        out: Callable[[str], None] = print, progress: Callable[[str], None] | None = None) -> list[Change]:
    """Pin every Hub artifact of the YAML files under ``conf_dir`` (see the module docstring) and return
    the changes. Every file is read and every artifact resolved before the first file is written."""
    conf = Path(conf_dir)
    if not conf.is_dir():
        raise PinError(f"{conf}: not a folder; run from the repository root or pass --conf DIR")
    progress = progress or (lambda message: print(f"kdlab pin: {message}", file=sys.stderr))
    texts, entries = {}, []
    for path in sorted(p for p in conf.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise PinError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8. "
                           f"{NOTHING_WRITTEN}") from None
        texts[str(path)] = (path, text)
        entries += find_hub_entries(text, str(path), hydra_package(path.relative_to(conf), text))
    changes = plan(entries, Hub(progress), only_revisions)
    edits = {}
    for file, (path, text) in texts.items():
        mine = [c for c in changes if c.entry.file == file]
        if mine:
            edits[path] = apply_changes(text, mine)
            check_edit(text, edits[path], mine, file)
    for line in describe(changes):
        out(line)
    n_artifacts = len({(c.entry.file, c.entry.where) for c in changes})
    unhashed = [e for e in entries if e.sha256 is not None and e.sha256.value is None] if only_revisions else []
    if not changes:
        out(f"kdlab pin: every Hub artifact in {conf} is pinned; nothing to change")
    elif dry_run:
        out(f"kdlab pin: dry run: {n_artifacts} artifacts in {len(edits)} files would change; {NOTHING_WRITTEN}")
    else:
        for path, text in edits.items():
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
        out(f"kdlab pin: pinned {n_artifacts} artifacts in {len(edits)} files; review and commit them "
            f"(git diff {conf})")
    if unhashed:
        out(f"kdlab pin: {len(unhashed)} artifacts still have no sha256; run kdlab pin without "
            "--only-revisions to record them")
    return changes


def pin_command(args: argparse.Namespace) -> int:
    pin(args.conf, dry_run=args.dry_run, only_revisions=args.only_revisions)
    return 0


def add_pin(sub) -> None:
    p = sub.add_parser(
        "pin",
        help="pin the Hub artifacts of conf/: branch -> commit, missing sha256 -> the file's digest",
        description="For every Hub artifact in the conf YAML files: replace a revision that is not a commit "
                    "by the commit the Hub names for it, and a null sha256 (unless filename is a glob) by the "
                    "digest of the file downloaded at that commit. Only those values are rewritten; comments "
                    "and layout are kept. Nothing is written unless every artifact resolved. Needs internet.")
    p.add_argument("--conf", default="conf", metavar="DIR", help="the Hydra conf folder (default: conf)")
    p.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    p.add_argument("--only-revisions", action="store_true", help="pin the commits only; download nothing")
    p.set_defaults(func=pin_command)
