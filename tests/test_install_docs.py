"""The README's install lines and disk plan say what the repository does: the CPU torch CI installs, the
constraints file, and the cache link type of .dvc/config."""

from __future__ import annotations

import configparser
import re

from conftest import REPO

README = (REPO / "README.md").read_text()


def test_the_cpu_install_pins_the_torch_ci_installs_and_the_constraints_record():
    ci = re.search(r'pip install -q "torch==([\d.]+)"', (REPO / ".ci" / "run").read_text()).group(1)
    recorded = re.search(r"torch ([\d.]+)\+cpu", (REPO / "constraints.txt").read_text()).group(1)
    readme = set(re.findall(r"pip install torch==([\d.]+) --index-url https://download\.pytorch\.org/whl/cpu", README))
    assert readme == {ci} == {recorded}
    assert README.count('python -m pip install -c constraints.txt -e ".[dev]"') >= 3  # quick start, CPU, GPU
    assert "torch" not in {line.split("==")[0] for line in (REPO / "constraints.txt").read_text().splitlines()
                           if not line.startswith("#")}  # a GPU image keeps its own CUDA build


def test_the_cache_links_the_readme_describes():
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    types = [t.strip() for t in config["cache"]["type"].split(",")]
    assert types == ["hardlink", "symlink", "copy"]
    assert "`cache.type = hardlink,symlink,copy`" in README
    assert "/checkpoints/" in (REPO / ".gitignore").read_text().splitlines()
