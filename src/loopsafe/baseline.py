"""Baselines: adopt loopsafe on an existing code base and fail only on new findings.

``loopsafe check --write-baseline FILE`` records the current findings; ``loopsafe check
--baseline FILE`` then reports only findings beyond what FILE records.

Findings are recorded as counts per key, never by line number, so code that moves (a
function added above it, an import reordered) does not invalidate the baseline::

    {
      "loopsafe-baseline": 1,
      "findings": [
        {"path": "app/api.py", "code": "LOOP101", "function": "read_user", "count": 2}
      ]
    }

The key is the file (a ``/``-separated path relative to the project root), the rule code
and the enclosing function's qualified name (``""`` at module level). When a key has more
findings now than the baseline records, the surplus is reported; which of them counts as
"new" cannot be known, so the last ones in the file are reported. Entries recording more
findings than there are now are *stale*: the debt was paid off and the baseline should be
rewritten, or it will silently absorb a new finding in the same place.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable, Sequence

from loopsafe.model import Finding

FORMAT_VERSION = 1
_VERSION_KEY = "loopsafe-baseline"


class BaselineError(Exception):
    """The baseline file cannot be read or is not a loopsafe baseline."""


@dataclass(frozen=True, order=True)
class Key:
    path: str
    code: str
    function: str


#: maps a finding's (display) path to its path relative to the project root
RelPath = Callable[[str], str]


def key_of(finding: Finding, relpath: RelPath) -> Key:
    return Key(relpath(finding.path), finding.code, finding.function)


def count_findings(findings: Iterable[Finding], relpath: RelPath) -> Counter[Key]:
    return Counter(key_of(finding, relpath) for finding in findings)


def dumps(counts: Counter[Key]) -> str:
    """The baseline file's text: sorted, one entry per key, ending in a newline."""
    entries = [
        {"path": key.path, "code": key.code, "function": key.function, "count": count}
        for key, count in sorted(counts.items())
        if count > 0
    ]
    payload = {_VERSION_KEY: FORMAT_VERSION, "findings": entries}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def write(path: Path, counts: Counter[Key]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(dumps(counts))


def loads(text: str, source: str = "baseline") -> Counter[Key]:
    """Parse a baseline file's text; every problem is a :class:`BaselineError` naming *source*."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{source}: not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or _VERSION_KEY not in payload:
        raise BaselineError(f"{source}: not a loopsafe baseline (no {_VERSION_KEY!r} key)")
    if payload[_VERSION_KEY] != FORMAT_VERSION:
        raise BaselineError(
            f"{source}: baseline format {payload[_VERSION_KEY]!r} is not supported "
            f"(this loopsafe reads format {FORMAT_VERSION}); rewrite it with --write-baseline"
        )
    entries = payload.get("findings")
    if not isinstance(entries, list):
        raise BaselineError(f"{source}: 'findings' must be an array")
    counts: Counter[Key] = Counter()
    for index, entry in enumerate(entries):
        where = f"{source}: findings[{index}]"
        if not isinstance(entry, dict):
            raise BaselineError(f"{where}: expected an object")
        for name in ("path", "code", "function"):
            if not isinstance(entry.get(name), str):
                raise BaselineError(f"{where}: {name!r} must be a string")
        count = entry.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise BaselineError(f"{where}: 'count' must be a positive integer")
        counts[Key(entry["path"], entry["code"].upper(), entry["function"])] += count
    return counts


def read(path: Path) -> Counter[Key]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read baseline: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path}: not valid UTF-8: {exc.reason}") from None
    return loads(text, str(path))


@dataclass(frozen=True)
class Outcome:
    #: findings beyond the baseline, in their original order
    new: list[Finding]
    #: findings the baseline absorbed
    known: list[Finding]
    #: entries recording more findings than there are now (for files that were checked)
    stale: list[tuple[Key, int, int]]


def apply(
    baseline: Counter[Key],
    findings: Sequence[Finding],
    relpath: RelPath,
    *,
    checked: Collection[str],
    codes: Collection[str],
    exists: Callable[[str], bool],
) -> Outcome:
    """Split *findings* into new and known ones, and find stale baseline entries.

    *checked* holds the project-relative paths analysed in this run and *codes* the rule
    codes that were selected: an entry is judged stale only if this run could have
    reproduced it (so checking a few files, as pre-commit does, or selecting fewer rules
    does not make the rest of the baseline look stale), or if its file no longer exists
    (*exists* takes a project-relative path).
    """
    by_key: dict[Key, list[int]] = {}
    for index, finding in enumerate(findings):
        by_key.setdefault(key_of(finding, relpath), []).append(index)
    surplus: set[int] = set()
    for key, indexes in by_key.items():
        allowed = baseline.get(key, 0)
        if len(indexes) > allowed:
            ordered = sorted(indexes, key=lambda i: findings[i].sort_key())
            surplus.update(ordered[allowed:])
    new = [finding for index, finding in enumerate(findings) if index in surplus]
    known = [finding for index, finding in enumerate(findings) if index not in surplus]
    stale = []
    for key, recorded in sorted(baseline.items()):
        current = len(by_key.get(key, ()))
        if current >= recorded:
            continue
        if (key.path in checked and key.code in codes) or not exists(key.path):
            stale.append((key, recorded, current))
    return Outcome(new, known, stale)
