"""bench/gpu_check.py: its peak-FLOPs table, and the whole check on CPU (--cpu-smoke)."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench.gpu_check import peak_tflops

ROOT = Path(__file__).resolve().parent.parent


def test_peak_tflops_matches_the_most_specific_name_first():
    assert peak_tflops("NVIDIA H200")[0] == 989
    assert peak_tflops("NVIDIA H100 80GB HBM3")[0] == 989
    assert peak_tflops("NVIDIA H100 PCIe")[0] == 756
    assert peak_tflops("NVIDIA A100-SXM4-80GB")[0] == 312
    assert peak_tflops("NVIDIA L40S")[0] == 362
    assert peak_tflops("NVIDIA L4")[0] == 121
    assert peak_tflops("NVIDIA A10G")[0] == 70
    assert peak_tflops("NVIDIA A10")[0] == 125
    assert peak_tflops("Tesla T4")[0] == 65
    assert peak_tflops("NVIDIA GeForce RTX 4090") is None


@pytest.mark.slow
def test_cpu_smoke_runs_every_part_and_prints_the_summary_last():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--cpu-smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = proc.stdout.split("\nsummary")[-1].splitlines()
    status = {line[:22].strip(): line[22:31].strip() for line in summary[2:]}
    assert status == {
        "lora": "ok",
        "qlora": "skipped",  # 4-bit needs CUDA
        "playground single": "ok",
        "playground base+tuned": "ok",
    }, proc.stdout
