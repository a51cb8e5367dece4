"""The benchmark script works end to end (on a tiny corpus: timings there mean nothing)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_runs_on_a_tiny_corpus(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--corpus", str(REPO / "fixtures" / "projects" / "demo_shop"),
         "--runs", "1", "--write", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = out.read_text()
    for row in ("loopsafe cold", "loopsafe warm (nothing changed)", "loopsafe one file changed",
                "loopsafe one file changed: the most imported module", "the most imported module changed / cold",
                "libcst.parse_module, one process", "cold / single-process LibCST parse", "Machine:"):
        assert row in report
