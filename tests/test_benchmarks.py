"""benchmarks/train_throughput.py runs tiny on a CPU and prints consistent figures."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "train_throughput.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("train_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_length_profile_matches_the_complaints():
    bench = load_benchmark()
    lengths = bench.length_profile(20_000, 128, seed=0)
    assert lengths.max() == 128 and lengths.min() >= 3
    assert np.mean(lengths >= 128) == pytest.approx(bench.SHARE_AT_MAX, abs=0.01)
    # the median narrative (137 words at 1.3 tokens per word) is over the limit: truncated
    assert np.median(lengths) == 128


def test_modernbert_base_shapes():
    from transformers import ModernBertConfig

    bench = load_benchmark()
    config = ModernBertConfig(**bench.MODERNBERT_BASE)
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size, config.num_attention_heads,
            config.vocab_size, config.local_attention) == (22, 768, 1152, 12, 50368, 128)
    full = [i for i, kind in enumerate(config.layer_types) if kind == "full_attention"]
    assert full == list(range(0, 22, 3))


def test_tiny_run_prints_every_field(tmp_path):
    bench = load_benchmark()
    out_json = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--steps", "2", "--warmup", "1",
         "--batch-size", "4", "--threads", "1", "--variants", "--json", str(out_json)],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    for field in ("examples/s", "tokens/s", "real tok/s", "TFLOP/s", "min/arm", "min/study", "vs naive"):
        assert field in text
    assert "GPU figures: NOT MEASURED" in text
    record = json.loads(out_json.read_text())
    naive, kdlab = record["records"][:2]
    assert naive["arm"].startswith("naive") and kdlab["arm"].startswith("kdlab")
    labels = [r["arm"] for r in record["records"]]
    assert any("fused AdamW" in x for x in labels) and any("length-grouped" in x for x in labels)
    assert any("eager attention" in x for x in labels)
    n = record["non_embedding_parameters"]
    for r in record["records"]:
        assert r["examples_per_s"] > 0 and r["real_tokens_per_s"] <= r["tokens_per_s"]
        assert r["tflops"] == pytest.approx(6 * n * r["tokens_per_s"] / 1e12)
        assert r["minutes_per_arm"] == pytest.approx(79_278 * 3 / r["examples_per_s"] / 60)
        assert r["minutes_study"] == pytest.approx(16 * r["minutes_per_arm"])
        assert f"{r['arm']:<{bench.ARM_WIDTH}} {r['examples_per_s']:>10.2f}" in text  # the printed row is this record
    ratio = re.search(r"ratio kdlab/naive \(examples/s\): ([0-9.]+)", text)
    assert ratio and float(ratio.group(1)) == pytest.approx(kdlab["examples_per_s"] / naive["examples_per_s"], abs=0.006)
    # the naive arm computes every batch at max_length; the kdlab arm never more
    assert naive["tokens_per_s"] / naive["examples_per_s"] == pytest.approx(128)
    assert kdlab["tokens_per_s"] / kdlab["examples_per_s"] <= 128


def test_cuda_requested_without_a_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cuda"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2 and "no CUDA device is visible" in result.stderr
