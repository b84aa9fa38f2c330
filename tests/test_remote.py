"""remote.fetch: local overrides, plain URLs (a local http.server), the Hub (monkeypatched). No network."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

from kdlab import remote
from kdlab.config import Artifact
from kdlab.io import ArtifactError

REPO_ID = "determined-ai/consumer_complaints_medium"
COMMIT = "4783de6e089f8ef1dccb26e9f46d491ec0273c83"
RESOLVED = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "hf_kdlabTestSecretToken0123456789"
CONTENT = b'["APR or interest rate", "Advertising"]\n'
DIGEST = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No proxy between urllib and 127.0.0.1, a token in the environment, the Hub offline."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HF_TOKEN", TOKEN)


# --------------------------------------------------------------------------- #
# local
# --------------------------------------------------------------------------- #
@pytest.fixture
def local_file(tmp_path) -> Path:
    path = tmp_path / "copies" / "label_list.json"
    path.parent.mkdir()
    path.write_bytes(CONTENT)
    return path


def test_local_file_is_used_in_place(local_file, tmp_path, capsys):
    artifact = Artifact(local=str(local_file), sha256=DIGEST,
                        url="http://127.0.0.1:9/never-used", repo_id="never/used", filename="x")
    path, record = remote.fetch(artifact, "data.course_files.label_list", tmp_path / "dl")
    assert path == local_file
    assert record.path == str(local_file)
    assert record.as_dict() == {"what": "data.course_files.label_list",  # no host path: outputs must not differ
                                "source": "local file (data.course_files.label_list.local)", "sha256": DIGEST,
                                "revision": None, "pinned": True}
    assert not (tmp_path / "dl").exists()
    assert capsys.readouterr().err == ""


def test_local_sha256_is_case_insensitive(local_file, tmp_path):
    _, record = remote.fetch(Artifact(local=str(local_file), sha256=DIGEST.upper()), "x", tmp_path)
    assert record.sha256 == DIGEST


def test_unpinned_local_file_is_recorded_with_a_warning(local_file, tmp_path, capsys):
    _, record = remote.fetch(Artifact(local=str(local_file)), "data.course_files.val_indices", tmp_path)
    assert record.pinned is False and record.sha256 == DIGEST
    err = capsys.readouterr().err
    assert "kdlab: warning: data.course_files.val_indices is not pinned" in err and DIGEST in err


def test_missing_local_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ArtifactError) as info:
        remote.fetch(Artifact(local=str(missing)), "data.course_files.label_list", tmp_path)
    assert str(info.value) == (f"data.course_files.label_list: local file {missing} does not exist; "
                               "fix `data.course_files.label_list.local` in params.yaml")


def test_local_sha256_mismatch(local_file, tmp_path):
    wrong = "ab" * 32
    with pytest.raises(ArtifactError) as info:
        remote.fetch(Artifact(local=str(local_file), sha256=wrong), "data.course_files.label_list", tmp_path)
    message = str(info.value)
    assert message.startswith(f"{local_file} (data.course_files.label_list): sha256 mismatch: "
                              f"expected {wrong}, found {DIGEST}")
    assert "params.yaml" in message


def test_artifact_without_a_source(tmp_path):
    with pytest.raises(ArtifactError, match=re.escape("arms.kd.published: set one of `local`, `url`, or "
                                                      "`repo_id` + `filename` in params.yaml")):
        remote.fetch(Artifact(repo_id="only/a-repo"), "arms.kd.published", tmp_path)


# --------------------------------------------------------------------------- #
# url: a real HTTP server on 127.0.0.1
# --------------------------------------------------------------------------- #
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def http_root(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 in a thread; yields (root folder, base URL)."""
    root = tmp_path / "www"
    (root / "data").mkdir(parents=True)
    (root / "data" / "label_list.json").write_bytes(CONTENT)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_url_download(http_root, tmp_path, capsys):
    _, base = http_root
    url = f"{base}/data/label_list.json"
    dl = tmp_path / "dl"
    path, record = remote.fetch(Artifact(url=url, sha256=DIGEST), "data.course_files.label_list", dl)
    assert path == dl / "label_list.json" and path.read_bytes() == CONTENT
    assert record.source == url and record.sha256 == DIGEST and record.pinned is True and record.revision is None
    assert sorted(p.name for p in dl.iterdir()) == ["label_list.json"]  # no temporary file left behind
    assert capsys.readouterr().err == ""


def test_url_download_sha256_mismatch(http_root, tmp_path):
    _, base = http_root
    wrong = "0" * 64
    with pytest.raises(ArtifactError) as info:
        remote.fetch(Artifact(url=f"{base}/data/label_list.json", sha256=wrong), "data.course_files.label_list",
                     tmp_path / "dl")
    assert "(data.course_files.label_list): sha256 mismatch: expected " + wrong + ", found " + DIGEST in str(info.value)


def test_url_download_unpinned_warns(http_root, tmp_path, capsys):
    _, base = http_root
    _, record = remote.fetch(Artifact(url=f"{base}/data/label_list.json"), "data.course_files.label_list", tmp_path)
    assert record.pinned is False and record.sha256 == DIGEST
    assert "data.course_files.label_list is not pinned" in capsys.readouterr().err


def test_url_not_found(http_root, tmp_path):
    _, base = http_root
    url = f"{base}/data/missing.json"
    dl = tmp_path / "dl"
    with pytest.raises(ArtifactError) as info:
        remote.fetch(Artifact(url=url), "data.course_files.val_indices", dl)
    message = str(info.value)
    assert message.startswith(f"data.course_files.val_indices: could not download {url} (")
    assert "404" in message
    assert not dl.exists() or list(dl.iterdir()) == []  # no partial file


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_url_gives_the_offline_hint(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/data/label_list.json"
    with pytest.raises(ArtifactError) as info:
        remote.fetch(Artifact(url=url, sha256=DIGEST), "data.course_files.label_list", tmp_path / "dl")
    message = str(info.value)
    assert message.startswith(f"data.course_files.label_list: could not download {url} (")
    assert remote.OFFLINE_HINT in message
    assert "set the param's `local:` to a copy of the file" in message and "dvc exp run -S profile=demo" in message
    assert not (tmp_path / "dl" / "label_list.json").exists()


# --------------------------------------------------------------------------- #
# Hub: huggingface_hub.HfApi and hf_hub_download replaced by fakes
# --------------------------------------------------------------------------- #
@pytest.fixture
def hub(monkeypatch, tmp_path):
    """Fake Hub: ``state.files`` is the repository listing, ``state.calls`` records every call."""
    state = SimpleNamespace(files=["README.md", ".gitattributes", "data/train-00000-of-00001.parquet",
                                   "data/test-00000-of-00001.parquet"],
                            calls=[], fail=None, content=CONTENT, cache=tmp_path / "hf-cache")

    class FakeApi:
        def __init__(self, *args, **kwargs):
            state.calls.append(("HfApi", args, kwargs))

        def list_repo_files(self, repo_id, repo_type=None, revision=None, **kwargs):
            state.calls.append(("list_repo_files", repo_id, repo_type, revision))
            if state.fail == "list":
                raise ConnectionError("Max retries exceeded with url: /api/datasets (no network)")
            return list(state.files)

        def repo_info(self, repo_id, repo_type=None, revision=None, **kwargs):
            state.calls.append(("repo_info", repo_id, repo_type, revision))
            return SimpleNamespace(sha=RESOLVED)

    def fake_download(repo_id, filename, repo_type=None, revision=None, **kwargs):
        state.calls.append(("hf_hub_download", repo_id, filename, repo_type, revision, kwargs))
        if state.fail == "download":
            raise PermissionError(f"401 Client Error: Unauthorized for url: https://huggingface.co/{repo_id}")
        path = state.cache / revision / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(state.content)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    return state


def calls_named(state, name):
    return [c for c in state.calls if c[0] == name]


def test_hub_glob_resolves_to_the_one_match(hub, tmp_path, capsys):
    artifact = Artifact(repo_id=REPO_ID, repo_type="dataset", filename="data/train-*.parquet", revision=COMMIT)
    path, record = remote.fetch(artifact, "data.hub_train", tmp_path / "dl")
    assert calls_named(hub, "list_repo_files") == [("list_repo_files", REPO_ID, "dataset", COMMIT)]
    assert calls_named(hub, "repo_info") == []  # a commit needs no resolving
    (download,) = calls_named(hub, "hf_hub_download")
    assert download[1:5] == (REPO_ID, "data/train-00000-of-00001.parquet", "dataset", COMMIT)
    assert path == hub.cache / COMMIT / "data/train-00000-of-00001.parquet"
    assert record.source == f"hf://datasets/{REPO_ID}/train-00000-of-00001.parquet"
    assert (record.revision, record.pinned, record.sha256) == (COMMIT, True, DIGEST)
    assert not (tmp_path / "dl").exists()  # Hub files stay in the Hugging Face cache
    assert capsys.readouterr().err == ""


def test_hub_exact_filename_is_not_listed(hub, tmp_path):
    artifact = Artifact(repo_id="earino/ecbs5200-week6-vanilla-baseline", repo_type="model",
                        filename="val_predictions.npz", revision=COMMIT, sha256=DIGEST)
    _, record = remote.fetch(artifact, "arms.vanilla.published", tmp_path)
    assert calls_named(hub, "list_repo_files") == []
    assert calls_named(hub, "hf_hub_download")[0][1:5] == (artifact.repo_id, "val_predictions.npz", "model", COMMIT)
    assert record.source == "hf://models/earino/ecbs5200-week6-vanilla-baseline/val_predictions.npz"


@pytest.mark.parametrize("files, found", [
    (["README.md", "data/test-00000-of-00001.parquet"], "found none"),
    (["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "README.md"],
     "found ['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet']"),
], ids=["no match", "two matches"])
def test_hub_glob_must_match_exactly_one_file(hub, tmp_path, files, found):
    hub.files = files
    artifact = Artifact(repo_id=REPO_ID, filename="data/train-*.parquet", revision=COMMIT)
    with pytest.raises(ArtifactError) as info:
        remote.fetch(artifact, "data.hub_train", tmp_path)
    message = str(info.value)
    assert message.startswith(f"data.hub_train: filename pattern 'data/train-*.parquet' must match exactly one "
                              f"file in {REPO_ID}@{COMMIT}, {found}")
    assert "set `filename` to the exact path" in message
    assert calls_named(hub, "hf_hub_download") == []


@pytest.mark.parametrize("revision", ["main", None])
def test_hub_unpinned_revision_is_resolved_and_flagged(hub, tmp_path, capsys, revision):
    artifact = Artifact(repo_id="earino/ecbs5200-week6-teacher-logits", filename="val_logits_canonical_final.npz",
                        revision=revision)
    path, record = remote.fetch(artifact, "teacher.published.val_final", tmp_path)
    assert calls_named(hub, "repo_info") == [("repo_info", artifact.repo_id, "dataset", revision)]
    assert calls_named(hub, "hf_hub_download")[0][4] == RESOLVED  # the download uses the resolved commit
    assert record.revision == RESOLVED and record.pinned is False and record.sha256 == DIGEST
    err = capsys.readouterr().err
    assert f"kdlab: warning: teacher.published.val_final is not pinned (revision {revision!r}, no sha256): " \
           f"using commit {RESOLVED}, sha256 {DIGEST}" in err


def test_hub_unpinned_revision_with_sha256_is_pinned(hub, tmp_path, capsys):
    artifact = Artifact(repo_id="earino/ecbs5200-week6-teacher-logits", filename="metadata.json",
                        revision="main", sha256=DIGEST)
    _, record = remote.fetch(artifact, "teacher.published.metadata", tmp_path)
    assert record.pinned is True and record.revision == RESOLVED
    assert capsys.readouterr().err == ""


def test_hub_file_sha256_mismatch(hub, tmp_path):
    artifact = Artifact(repo_id=REPO_ID, filename="data/test-*.parquet", revision=COMMIT, sha256="1" * 64)
    with pytest.raises(ArtifactError, match=r"\(data\.hub_test\): sha256 mismatch: expected 1{64}, found " + DIGEST):
        remote.fetch(artifact, "data.hub_test", tmp_path)


def test_hub_listing_failure_gives_the_offline_hint(hub, tmp_path):
    hub.fail = "list"
    artifact = Artifact(repo_id=REPO_ID, filename="data/train-*.parquet", revision=COMMIT)
    with pytest.raises(ArtifactError) as info:
        remote.fetch(artifact, "data.hub_train", tmp_path)
    message = str(info.value)
    assert message.startswith(f"data.hub_train: could not list {REPO_ID}@{COMMIT} (ConnectionError: Max retries")
    assert message.endswith(remote.OFFLINE_HINT)


def test_hub_download_failure_names_the_file_and_never_the_token(hub, tmp_path, capsys):
    hub.fail = "download"
    artifact = Artifact(repo_id="earino/ecbs5200-week6-distilled-student", repo_type="model",
                        filename="val_predictions.npz", revision="main")
    with pytest.raises(ArtifactError) as info:
        remote.fetch(artifact, "arms.kd.published", tmp_path)
    message = str(info.value)
    assert message.startswith("arms.kd.published: could not download val_predictions.npz from "
                              "earino/ecbs5200-week6-distilled-student@main (PermissionError: 401 Client Error")
    assert remote.OFFLINE_HINT in message
    assert TOKEN not in message and TOKEN not in capsys.readouterr().err


def test_hub_token_is_never_passed_printed_or_recorded(hub, tmp_path, capsys):
    artifact = Artifact(repo_id=REPO_ID, filename="data/train-*.parquet", revision="main")
    _, record = remote.fetch(artifact, "data.hub_train", tmp_path)
    out = capsys.readouterr()
    assert TOKEN not in out.err and TOKEN not in out.out
    assert TOKEN not in repr(record.as_dict())
    assert TOKEN not in repr(hub.calls)  # left to huggingface_hub, which reads HF_TOKEN itself
