"""bench/generation.py runs on the CPU without TRL or Streamlit and keeps other doc sections."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "generation.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_generation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_bench_runs_without_trl_or_streamlit(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## Metrics\n\nkept\n", encoding="utf-8")
    code = (
        "import sys, runpy\n"
        "sys.modules['trl'] = None\n"  # any import of these now fails
        "sys.modules['streamlit'] = None\n"
        f"sys.argv = ['generation.py', '--device', 'cpu', '--requests', '2', '--batch-sizes', '2',"
        f" '--new-tokens', '3', '--static-cache', '--update-docs', '--docs', {str(docs)!r}]\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| one-at-a-time | 1 |" in done.stdout
    assert "| batched | 2 |" in done.stdout
    assert "| static cache + compile | 2 |" in done.stdout
    text = docs.read_text(encoding="utf-8")
    assert "## Metrics\n\nkept" in text
    assert "## Generation" in text and "### GPU\n\nNot yet measured (no CUDA GPU" in text
    assert "2 cores" in text


def test_update_docs_replaces_only_its_section(tmp_path):
    bench = _load_bench()
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# B\n\n## Generation\n\nold\n\n## Other\n\nstays\n", encoding="utf-8")
    bench.update_docs(docs, "cpu rows\n", None)
    bench.update_docs(docs, None, "gpu rows\n")
    text = docs.read_text(encoding="utf-8")
    assert "old" not in text
    assert "### CPU\n\ncpu rows" in text and "### GPU\n\ngpu rows" in text
    assert text.count("## Generation") == 1 and "## Other\n\nstays" in text


def test_decode_bytes_count_weights_and_kv_cache(tiny_model_dir):
    import torch
    from transformers import AutoModelForImageTextToText

    bench = _load_bench()
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    one = bench.decode_bytes_per_step(model, 1, 100)
    two = bench.decode_bytes_per_step(model, 2, 100)
    # KV per token: 2 (K, V) x 2 layers x 2 KV heads x 16 head dim x 4 bytes.
    assert two - one == 100 * 2 * 2 * 2 * 16 * 4
    assert bench.QWEN3_VL_2B_TEXT["rope_parameters"]["mrope_section"] == [24, 20, 20]
