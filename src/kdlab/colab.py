"""Google Colab: produce the pipeline's outputs in a fresh clone, from a notebook's first cell.

A handout's Colab cell (:func:`kdlab.handouts.colab_cells`) clones the repository,
pip-installs it and calls :func:`prepare`, which makes the clone the working
directory (the notebook's Setup cell finds the repository from there) and runs
``dvc exp run -S profile=<profile>`` there: DVC runs what is missing or out of date
and skips the rest, so running the cell again is cheap. Nothing here is specific to
Colab: it works in any clone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

from kdlab.errors import KdlabError

PROFILES = {  # the profiles a CPU notebook session can run, and what each costs
    "audit": "downloads the published predictions; needs internet, a few minutes",
    "demo": "offline, synthetic data and tiny models; about 11 minutes on 2 CPU cores",
}
Runner = Callable[[Sequence[str], Path, Mapping[str, str]], int]


def stream(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    """Run ``cmd`` and print its output line by line as it comes (a notebook shows Python's
    stdout, not a child process's); return the exit status."""
    with subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
    return proc.returncode


def run_env() -> dict[str, str]:
    """The environment for ``dvc exp run``: this one, with DVC's analytics off."""
    return {**os.environ, "DVC_NO_ANALYTICS": "1"}


def prepare(root: str | Path, profile: str = "audit", run: Runner = stream) -> Path:
    """Make ``root`` (a clone of the repository) the working directory and bring the outputs
    of ``profile`` up to date there. Returns the resolved root."""
    root = Path(root).resolve()
    if profile not in PROFILES:
        raise KdlabError(f"profile {profile!r}: expected one of {sorted(PROFILES)} in a notebook session "
                         "(train needs a GPU and hours: run it with `dvc repro` on a GPU machine)")
    if not (root / "dvc.yaml").is_file():
        raise KdlabError(f"{root}: no dvc.yaml there; expected a clone of the kdlab repository")
    os.chdir(root)
    cmd = [sys.executable, "-m", "dvc", "exp", "run", "-S", f"profile={profile}"]
    print(f"kdlab: producing the {profile} outputs in {root} ({PROFILES[profile]}): dvc exp run -S profile={profile}",
          flush=True)
    status = run(cmd, root, run_env())
    if status != 0:
        raise KdlabError(f"`dvc exp run -S profile={profile}` failed in {root} with exit status {status} "
                         "(its log is above); fix what it names and run the cell again")
    print(f"kdlab: {profile} outputs ready in {root}")
    return root
