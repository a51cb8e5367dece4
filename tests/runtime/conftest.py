"""Runtime proof of loopsafe's rules: shared setup and the tables printed at the end (the
LOOP1xx stall table, the verdict table of the other rules).

Every test module in this folder is marked ``runtime`` (``pytestmark``). The app under test lives in ``app/`` beside
this file and is imported as the top-level package ``app`` (this folder is put on
``sys.path``), which is also how loopsafe names its modules when it scans the folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

#: endpoint name -> row of the stall table (filled by test_event_loop.py)
STALL_TABLE = pytest.StashKey[dict]()
#: calibration facts shown above the table
CALIBRATION = pytest.StashKey[dict]()
#: (rule, case) -> (static verdict, runtime symptom), filled by test_lifecycle_runtime.py and
#: test_rules_runtime.py
VERDICT_TABLE = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def stall_table(pytestconfig: pytest.Config) -> dict:
    return pytestconfig.stash.setdefault(STALL_TABLE, {})


@pytest.fixture(scope="session")
def calibration_facts(pytestconfig: pytest.Config) -> dict:
    return pytestconfig.stash.setdefault(CALIBRATION, {})


@pytest.fixture(scope="session")
def verdict_table(pytestconfig: pytest.Config) -> dict:
    return pytestconfig.stash.setdefault(VERDICT_TABLE, {})


def _write_table(write, header: tuple, rows: list) -> None:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for r in (header, tuple("-" * w for w in widths), *rows):
        write("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    _stall_summary(terminalreporter, config)
    verdicts: dict = config.stash.get(VERDICT_TABLE, {})
    if verdicts:
        terminalreporter.write_sep("=", "loopsafe runtime proof: static verdict and runtime symptom per rule")
        # insertion order: each positive is followed by its silent twin
        rows = [(rule, case, static, symptom) for (rule, case), (static, symptom) in verdicts.items()]
        _write_table(terminalreporter.write_line, ("rule", "case", "static verdict", "runtime symptom"), rows)


def _stall_summary(terminalreporter, config: pytest.Config) -> None:
    table: dict = config.stash.get(STALL_TABLE, {})
    if not table:
        return
    facts: dict = config.stash.get(CALIBRATION, {})
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "loopsafe runtime proof: event-loop stall per endpoint")
    if facts:
        write(
            f"slow query: recursive CTE counting to {facts.get('n', '?'):,} "
            f"= {facts.get('query_ms', 0):.0f} ms calibrated; ticker every {facts.get('tick_ms', 0):.0f} ms; "
            f"flagged must stall >= {facts.get('stall_ratio', 0):.0%} of the request, "
            f"silent must stay < max({facts.get('silent_max_ms', 0):.0f} ms, "
            f"{facts.get('silent_ratio', 0):.0%} of it); "
            f"re-calibrations: {facts.get('recalibrations', 0)}"
        )
    header = ("endpoint", "loopsafe", "rules", "stall ms (min)", "runs ms", "request ms", "query ms", "blockbuster")
    rows = []
    for name, row in sorted(table.items(), key=lambda kv: (not kv[1]["flagged"], kv[0])):
        rows.append((
            name,
            "flagged" if row["flagged"] else "silent",
            ",".join(row["codes"]) or "-",
            f"{row['stall_ms']:.1f}" if row.get("stall_ms") is not None else "skipped",
            " ".join(f"{v:.0f}" for v in row.get("runs_ms", ())) or "-",
            f"{row['request_ms']:.0f}" if row.get("request_ms") is not None else "-",
            f"{row['query_ms']:.0f}" if row.get("query_ms") is not None else "-",
            row.get("blockbuster", "-"),
        ))
    _write_table(write, header, rows)
    flagged = [r["stall_ms"] for r in table.values() if r["flagged"] and r.get("stall_ms") is not None]
    silent = [r["stall_ms"] for r in table.values() if not r["flagged"] and r.get("stall_ms") is not None]
    if flagged and silent:
        write(
            f"flagged: {len(flagged)} endpoints, stall {min(flagged):.0f}-{max(flagged):.0f} ms; "
            f"silent: {len(silent)} endpoints, stall {min(silent):.1f}-{max(silent):.1f} ms"
        )
