"""Rule documentation (loopsafe.docs): completeness of every rule's doc, and freshness of the
generated files committed to the repository."""
from __future__ import annotations

from pathlib import Path

import pytest

from loopsafe import docs
from loopsafe.rules import ALL_RULES
from loopsafe.rules.base import Rule

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "run `python -m loopsafe.docs` and commit the result"


# --------------------------------------------------------------------------- the real rules


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_doc_has_required_sections(rule: type[Rule]) -> None:
    doc = rule.doc()
    assert doc.strip(), f"{rule.code} has no docstring"
    lines = doc.splitlines()
    for section in docs.REQUIRED_SECTIONS:
        assert section in lines, f"{rule.code} docstring lacks a {section!r} heading"
    # sections must have content, not just a heading
    for i, line in enumerate(lines):
        if line.startswith("## "):
            following = next((text for text in lines[i + 1:] if text.strip()), "## end")
            assert not following.startswith("## "), f"{rule.code}: {line!r} is empty"


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_metadata_is_usable(rule: type[Rule]) -> None:
    assert rule.name and rule.name == rule.name.lower() and " " not in rule.name
    assert rule.summary.strip() and "\n" not in rule.summary
    assert rule.fix_title.strip()
    assert rule.family()  # the code's family digit is known


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_every_rule_has_a_committed_page(rule: type[Rule]) -> None:
    page = ROOT / docs.RULES_DIR / f"{rule.code}.md"
    assert page.is_file(), f"{page} is missing; {REGENERATE}"


def test_committed_rule_pages_are_current() -> None:
    assert docs.stale_pages(ROOT) == [], REGENERATE


def test_readme_rules_table_is_current() -> None:
    assert docs.stale_readme(ROOT) == [], REGENERATE


# --------------------------------------------------------------------------- the generator


class FakeRule(Rule):
    """## What it does
    Something.

    ## Why is this bad?
    Because.

    ## Example
    ```python
    bad()
    ```

    ## Use instead
    ```python
    good()
    ```
    """

    code = "LOOP201"
    name = "fake-rule"
    summary = "A rule | with a pipe"
    fix_title = "Do the other thing"
    default_enabled = False


class OtherRule(FakeRule):
    code = "LOOP101"
    name = "other-rule"
    summary = "Another"
    default_enabled = True


FAKE = [FakeRule, OtherRule]
README = f"# Project\n\nIntro.\n\n{docs.TABLE_START}\nold table\n{docs.TABLE_END}\n\nMore text.\n"


def test_rule_page() -> None:
    page = docs.rule_page(FakeRule)
    assert page.startswith(docs.GENERATED_NOTE + "\n\n# LOOP201: fake-rule\n\n")
    assert "**Family:** Session lifecycle · **Default:** off · **Fix:** Do the other thing" in page
    assert "## What it does\nSomething." in page
    assert page.endswith("```\n") and not page.endswith("\n\n")


def test_tables_escape_pipes_and_link_pages() -> None:
    table = docs.rules_table([FakeRule], "docs/rules/")
    assert "| [LOOP201](docs/rules/LOOP201.md) | fake-rule | A rule \\| with a pipe | off |" in table
    index = docs.rules_index(FAKE)
    # grouped by family, in code order
    assert index.index("## Blocking work on the event loop") < index.index("## Session lifecycle")
    assert "[LOOP101](LOOP101.md)" in index


def test_replace_table_keeps_the_hand_written_text() -> None:
    new = docs.replace_table(README, "| table |\n")
    assert new == f"# Project\n\nIntro.\n\n{docs.TABLE_START}\n| table |\n{docs.TABLE_END}\n\nMore text.\n"
    assert docs.replace_table(new, "| table |\n") == new  # idempotent
    with pytest.raises(docs.DocsError):
        docs.replace_table("# no markers\n", "| table |\n")


def test_write_then_check_round_trip(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    assert sorted(docs.stale_files(tmp_path, FAKE)) == [
        "README.md: rules table out of date",
        "docs/rules/LOOP101.md: missing",
        "docs/rules/LOOP201.md: missing",
        "docs/rules/README.md: missing",
    ]
    written = docs.write_docs(tmp_path, FAKE)
    assert len(written) == 4
    assert docs.stale_files(tmp_path, FAKE) == []
    assert docs.write_docs(tmp_path, FAKE) == []  # nothing to do the second time
    assert "More text." in (tmp_path / "README.md").read_text(encoding="utf-8")

    page = tmp_path / "docs" / "rules" / "LOOP201.md"
    page.write_text(page.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    (tmp_path / "docs" / "rules" / "LOOP999.md").write_text("gone\n", encoding="utf-8")
    (tmp_path / "docs" / "rules" / "guide.md").write_text("hand-written\n", encoding="utf-8")
    assert docs.stale_files(tmp_path, FAKE) == [
        "docs/rules/LOOP201.md: out of date",
        "docs/rules/LOOP999.md: no such rule; delete it",
    ]
    docs.write_docs(tmp_path, FAKE)
    assert not (tmp_path / "docs" / "rules" / "LOOP999.md").exists()
    assert (tmp_path / "docs" / "rules" / "guide.md").exists()  # not ours: left alone


def test_main_check_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(docs, "all_rules", lambda: list(FAKE))
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    assert docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert "docs/rules/LOOP201.md: missing" in capsys.readouterr().out
    assert docs.main(["--root", str(tmp_path)]) == 0
    assert docs.main(["--check", "--root", str(tmp_path)]) == 0


def test_main_without_readme_markers_fails_but_writes_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(docs, "all_rules", lambda: list(FAKE))
    (tmp_path / "README.md").write_text("# no markers\n", encoding="utf-8")
    assert docs.main(["--root", str(tmp_path)]) == 1
    assert "rules-table:start" in capsys.readouterr().err
    assert (tmp_path / "docs" / "rules" / "LOOP201.md").is_file()
