"""The ``sarif`` output format: SARIF 2.1.0, as GitHub code scanning and other services read it.

One run, whose ``tool.driver`` describes loopsafe and every rule of the catalogue (so a
result's ``ruleIndex`` is stable whatever was selected). Each finding becomes a result with:

* ``ruleId`` / ``ruleIndex`` / ``level`` / ``message.text``;
* one location: the file relative to the ``%SRCROOT%`` base (the repository root, also
  given as an absolute ``file:`` URI in ``originalUriBaseIds``) and the finding's region,
  columns counted in Unicode code points (``run.columnKind``), the end column exclusive;
* ``partialFingerprints["loopsafe/v1"]``: see :func:`loopsafe.render.fingerprints`, so
  alerts keep their identity when code moves;
* for findings through helpers, a ``codeFlows`` entry: the call site, then every step of
  the chain down to the blocking operation.

Files that could not be parsed become ``toolExecutionNotifications`` of the invocation.
Like the other formatters, :func:`format_sarif` is a pure function of its arguments.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import quote

from loopsafe import __version__
from loopsafe.model import Finding, Frame, Report
from loopsafe.render import PARSE_ERROR_CODE, SourceLines, fingerprints, normalised_line, root_relative, rule_level

if TYPE_CHECKING:  # pragma: no cover
    from loopsafe.rules.base import Rule

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "loopsafe"
INFORMATION_URI = "https://github.com/loopsafe/loopsafe"
#: where the generated rule pages live; each rule's ``helpUri`` is ``<this><CODE>.md``
RULE_DOCS_URI = f"{INFORMATION_URI}/blob/main/docs/rules/"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "loopsafe/v1"


def _section(markdown: str, title: str) -> str:
    """The text of the ``## title`` section of a rule's documentation, on one line."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    return " ".join(match.group(1).split()) if match else ""


def markdown_to_text(markdown: str) -> str:
    """Rule documentation as plain text: headings without ``#``, code blocks indented."""
    out = []
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            out.append(f"    {line}" if line else "")
        else:
            out.append(re.sub(r"^#+\s*", "", line))
    return "\n".join(out).strip() + "\n"


def rule_descriptor(rule: type[Rule]) -> dict[str, Any]:
    doc = rule.doc().strip()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": _section(doc, "What it does") or rule.summary},
        "help": {"text": markdown_to_text(doc), "markdown": doc + "\n"},
        "helpUri": f"{RULE_DOCS_URI}{rule.code}.md",
        "defaultConfiguration": {"level": rule_level(rule.default_enabled)},
        "properties": {"tags": [rule.family()]},
    }


class _Locator:
    """Builds ``physicalLocation`` objects relative to the root."""

    def __init__(self, cwd: str, root: str) -> None:
        self.cwd = cwd
        self.root = root

    def artifact(self, path: str) -> dict[str, Any]:
        rel = root_relative(path, self.cwd, self.root)
        if rel is None:
            return {"uri": Path(os.path.normpath(os.path.join(self.cwd, path))).as_uri()}
        return {"uri": quote(rel), "uriBaseId": SRCROOT}

    def physical(self, path: str, region: dict[str, int]) -> dict[str, Any]:
        return {"physicalLocation": {"artifactLocation": self.artifact(path), "region": region}}


def _region(finding: Finding) -> dict[str, int]:
    return {
        "startLine": finding.line,
        "startColumn": finding.column,
        "endLine": finding.end_line,
        "endColumn": max(finding.end_column, 1),
    }


def _code_flow(finding: Finding, locate: _Locator, lines: SourceLines) -> dict[str, Any]:
    site = normalised_line(lines.line(finding.path, finding.line))
    steps = [{
        "location": {
            **locate.physical(finding.path, _region(finding)),
            "message": {"text": _step_text(finding.function, site)},
        },
    }]
    for frame in finding.chain:
        steps.append({
            "location": {
                **locate.physical(frame.path, {"startLine": frame.line}),
                "message": {"text": _frame_text(frame)},
            },
        })
    return {"threadFlows": [{"locations": steps}]}


def _step_text(function: str, code: str) -> str:
    where = function or "<module>"
    return f"{where}: {code}" if code else where


def _frame_text(frame: Frame) -> str:
    return _step_text(frame.function, " ".join(frame.code.split()))


def sarif_log(
    report: Report,
    sources: Mapping[str, str],
    *,
    cwd: str,
    root: str,
    rules: Sequence[type[Rule]],
) -> dict[str, Any]:
    """The SARIF log as a dictionary. *root* is what ``%SRCROOT%`` stands for."""
    locate = _Locator(cwd, root)
    lines = SourceLines(sources)
    index = {rule.code: i for i, rule in enumerate(rules)}
    levels = {rule.code: rule_level(rule.default_enabled) for rule in rules}
    prints = fingerprints(report.findings, sources, cwd=cwd, root=root)
    results = []
    for finding in sorted(report.findings, key=Finding.sort_key):
        digest, occurrence = prints[finding]
        result: dict[str, Any] = {"ruleId": finding.code}
        if finding.code in index:
            result["ruleIndex"] = index[finding.code]
        result.update({
            "level": levels.get(finding.code, "error"),
            "message": {"text": finding.message},
            "locations": [locate.physical(finding.path, _region(finding))],
            "partialFingerprints": {FINGERPRINT_KEY: f"{digest}:{occurrence}"},
        })
        if finding.chain:
            result["codeFlows"] = [_code_flow(finding, locate, lines)]
        results.append(result)
    notifications = [
        {
            "level": "error",
            "message": {"text": error.message},
            "descriptor": {"id": PARSE_ERROR_CODE},
            "locations": [locate.physical(error.path, {"startLine": error.line, "startColumn": error.column})],
        }
        for error in sorted(report.parse_errors, key=lambda e: (e.path, e.line, e.column, e.message))
    ]
    root_uri = Path(root).resolve().as_uri().rstrip("/") + "/"
    run = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [rule_descriptor(rule) for rule in rules],
            },
        },
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "originalUriBaseIds": {SRCROOT: {"uri": root_uri}},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def format_sarif(
    report: Report,
    sources: Mapping[str, str],
    *,
    cwd: str,
    root: str,
    rules: Sequence[type[Rule]],
) -> str:
    """The ``sarif`` format, as text ending in a newline."""
    log = sarif_log(report, sources, cwd=cwd, root=root, rules=rules)
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
