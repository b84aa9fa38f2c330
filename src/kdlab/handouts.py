"""Student handouts: the notebooks students open, in Jupyter or in Google Colab.

The handout of a course notebook (``experiments/<name>.py``, the instructor's single
source) is ``handout/<name>.ipynb``, committed so that Colab can open it from the
repository. It is the student version (:func:`kdlab.notebooks.student_notebook`) with
two cells after the title, both tagged ``colab-setup``: a note and a code cell that,
in Colab only, clones the repository, installs kdlab and produces the pipeline's
outputs (:func:`kdlab.colab.prepare`); anywhere else it prints one line and does
nothing. Cell ids are the cells' positions and the jupytext pairing metadata is
dropped, so a source always gives the same bytes (a test compares the committed
handouts with their sources). Building a handout from a handout changes nothing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat

from kdlab import notebooks
from kdlab.colab import PROFILES

# The git URL Colab clones: this repository once it is published, e.g.
# "https://github.com/<owner>/<repo>". While it is None the Colab cell asks the student for it.
REPOSITORY: str | None = None
COLAB_PROFILE = "audit"  # what the Colab cell runs by default (see kdlab.colab.PROFILES)
COLAB_CLONE = "/content/kdlab"  # Colab's working folder is /content
COLAB_TAG = "colab-setup"
COURSE_DIR = "experiments"  # the instructor notebooks (jupytext percent .py)
HANDOUT_DIR = "handout"  # their handouts (.ipynb, committed)

Notebook = nbformat.NotebookNode


def _literal(value: str | None) -> str:
    return "None" if value is None else json.dumps(value)  # a JSON string is a Python literal


def colab_source(repository: str | None, profile: str = COLAB_PROFILE) -> str:
    """The code of the Colab cell (plain Python: it runs before kdlab is installed); with
    ``repository`` None it asks the student for the URL."""
    choices = "\n".join(f"#   {_literal(name)}: {what}" for name, what in PROFILES.items())
    return f'''# Google Colab only: run this cell first. Anywhere else it prints one line and does nothing.
# It clones the kdlab repository into {COLAB_CLONE}, installs it with pip and produces the
# outputs this notebook reads, for PROFILE:
{choices}
# If pip asks you to restart the session, restart it and run this cell again.
import importlib
import importlib.util
import os
import subprocess
import sys

REPOSITORY = {_literal(repository)}  # the git URL of the kdlab repository
PROFILE = {_literal(profile)}
CLONE = {_literal(COLAB_CLONE)}
if "google.colab" not in sys.modules:
    print("Not in Colab: this notebook reads the outputs of the repository it sits in (the Setup cell finds it).")
elif not REPOSITORY:
    raise RuntimeError("REPOSITORY is not set in this cell: set it to the git URL of the kdlab repository "
                       "(https://github.com/<owner>/<repo>, as in Colab's address bar after /github/) and run the cell again")
else:
    if not os.path.isdir(CLONE):
        subprocess.run(["git", "clone", "--quiet", REPOSITORY, CLONE], check=True)
    if importlib.util.find_spec("kdlab") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", CLONE], check=True)
        importlib.invalidate_caches()
    from kdlab import colab
    colab.prepare(CLONE, PROFILE)'''


COLAB_NOTE = f"""## In Google Colab? Run the next cell first

It fetches this repository, installs `kdlab` and produces the outputs this notebook reads
(`PROFILE = "audit"`: the study's published predictions; `"demo"`: the offline demo on
synthetic data). In Jupyter on your own checkout it does nothing: produce the outputs with
`dvc exp run -S profile=audit` (or `profile=demo`) before you start."""


def colab_cells(repository: str | None = None, profile: str = COLAB_PROFILE) -> list[Notebook]:
    """The two cells a handout gets after its title: the note and the Colab code cell
    (``repository`` defaults to :data:`REPOSITORY`)."""
    repository = repository or REPOSITORY
    meta = {"tags": [COLAB_TAG]}
    return [nbformat.v4.new_markdown_cell(COLAB_NOTE, metadata=copy.deepcopy(meta)),
            nbformat.v4.new_code_cell(colab_source(repository, profile), metadata=copy.deepcopy(meta))]


def is_colab_cell(cell) -> bool:
    return COLAB_TAG in notebooks.tags(cell)


def without_colab(nb: Notebook) -> Notebook:
    """A copy of ``nb`` without its colab-setup cells (a handout -> its student version)."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not is_colab_cell(c)]
    return out


def handout(source: Notebook, repository: str | None = None) -> Notebook:
    """The handout of ``source`` (an instructor notebook, or a handout: then the same handout);
    ``repository`` defaults to :data:`REPOSITORY`."""
    student = notebooks.student_notebook(without_colab(source))
    at = 1 if student.cells and student.cells[0].cell_type == "markdown" else 0  # after the title
    student.cells[at:at] = colab_cells(repository)
    for i, cell in enumerate(student.cells):
        cell["id"] = f"cell-{i}"
    student.metadata.pop("jupytext", None)  # no pairing: opening it must not create a .py beside it
    student.nbformat, student.nbformat_minor = 4, 5
    return student


def handout_text(nb: Notebook) -> str:
    """The .ipynb text of a notebook, deterministic (sorted keys, one-space indent)."""
    return nbformat.writes(nb, version=4) + "\n"


def check_handout(source: Notebook, built: Notebook) -> list[str]:
    """Everything wrong with ``built`` as the handout of ``source`` (see
    :func:`kdlab.notebooks.check_student`) plus a missing Colab cell; [] when fine."""
    problems = notebooks.check_student(without_colab(source), without_colab(built))
    if not any(is_colab_cell(c) and c.cell_type == "code" for c in built.cells):
        problems.append(f"no {COLAB_TAG} code cell")
    return problems


# --------------------------------------------------------------------------- #
# Where things are
# --------------------------------------------------------------------------- #
def repo_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds dvc.yaml, or None."""
    start = start.resolve()
    return next((d for d in (start, *start.parents) if (d / "dvc.yaml").is_file()), None)


def handout_path(src: Path) -> Path:
    """experiments/week6_lab.py -> <repository root>/handout/week6_lab.ipynb (``src``'s
    folder stands in for the root when ``src`` is not in a repository)."""
    root = repo_root(src.parent) or src.resolve().parent
    return root / HANDOUT_DIR / f"{src.stem}.ipynb"


def course_notebooks(root: Path) -> list[Path]:
    """The instructor notebooks of a repository: experiments/*.py, sorted."""
    return sorted((root / COURSE_DIR).glob("*.py"))


def colab_url(repository: str, path: str, branch: str = "main") -> str | None:
    """The "Open in Colab" address of ``path`` in a GitHub repository (None for other hosts)."""
    prefix = "https://github.com/"
    if not repository.startswith(prefix):
        return None
    slug = repository[len(prefix):].removesuffix(".git").strip("/")
    return f"https://colab.research.google.com/github/{slug}/blob/{branch}/{path}"
