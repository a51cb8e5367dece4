"""The pre-commit hook (.pre-commit-hooks.yaml), installed and run by a real pre-commit.

``pre-commit try-repo`` builds the hook's environment the way users get it: it clones the hook
repository, creates a virtualenv and pip-installs the package (and libcst, click and rich from
the package index) into it. It clones only what is committed, so the test commits a copy of
this working tree's package files to a scratch repository first: the hook under test is the
code in front of you, committed or not.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from loopsafe.cli import main

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / ".pre-commit-hooks.yaml"
DEMO = REPO / "fixtures" / "projects" / "demo_shop"
#: what pip needs to build and install loopsafe from a clone
PACKAGE_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml")


def pre_commit(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 60):
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


def git_env(tmp: Path) -> dict[str, str]:
    """An environment isolated from the user's git configuration and pre-commit cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    empty = tmp / "gitconfig"
    empty.touch()
    env.update(
        GIT_CONFIG_GLOBAL=str(empty), GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="loopsafe tests", GIT_AUTHOR_EMAIL="tests@loopsafe.invalid",
        GIT_COMMITTER_NAME="loopsafe tests", GIT_COMMITTER_EMAIL="tests@loopsafe.invalid",
        PRE_COMMIT_HOME=str(tmp / "pre-commit-home"),
    )
    return env


def commit_all(directory: Path, env: dict[str, str]) -> None:
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(["git", *args], cwd=directory, env=env, check=True, capture_output=True, timeout=60)


# --------------------------------------------------------------------------- the manifest


def test_manifest_is_valid() -> None:
    result = pre_commit("validate-manifest", str(MANIFEST), cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_invalid_manifest_is_rejected(tmp_path: Path) -> None:
    """The validation above can fail."""
    broken = tmp_path / "hooks.yaml"
    broken.write_text("- id: loopsafe\n  name: loopsafe\n  language: python\n")  # no entry
    assert pre_commit("validate-manifest", str(broken), cwd=tmp_path).returncode != 0


def test_manifest_declares_the_hook() -> None:
    [hook] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert hook["id"] == "loopsafe"
    assert hook["entry"] == "loopsafe check --force-exclude"
    assert hook["language"] == "python"
    assert hook["types"] == ["python"]
    assert hook["require_serial"] is True
    # the entry runs: every word after the program is an option `loopsafe check` knows
    assert CliRunner().invoke(main, [*hook["entry"].split()[1:], "--help"]).exit_code == 0


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def test_readme_pre_commit_configurations_are_valid(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", readme_section("pre-commit"), re.DOTALL)
    assert len(blocks) == 2  # the loopsafe hook and the flake8 hook
    for number, block in enumerate(blocks):
        config = tmp_path / f"config{number}.yaml"
        config.write_text(block, encoding="utf-8")
        result = pre_commit("validate-config", str(config), cwd=tmp_path)
        assert result.returncode == 0, f"README block {number}:\n{block}\n{result.stdout}{result.stderr}"


# --------------------------------------------------------------------------- running the hook


@pytest.fixture(scope="module")
def hook_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(hook repository, project to check, environment), shared so the hook is installed once."""
    tmp = tmp_path_factory.mktemp("pre-commit")
    env = git_env(tmp)
    hook_repo = tmp / "hook-repo"
    hook_repo.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy2(REPO / name, hook_repo / name)
    shutil.copytree(REPO / "src", hook_repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    commit_all(hook_repo, env)
    project = tmp / "project"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("__pycache__"))
    commit_all(project, env)
    return hook_repo, project, env


def expected_headers(project: Path, monkeypatch: pytest.MonkeyPatch, *paths: str) -> list[str]:
    """The ``path:line:col: CODE`` of what loopsafe itself finds in *project* (all of it)."""
    with monkeypatch.context() as patch:
        patch.chdir(project)
        result = CliRunner().invoke(main, ["check", "--isolated", "--output-format", "concise", "--quiet"])
    headers = [" ".join(line.split()[:2]) for line in result.stdout.splitlines()]
    return [h for h in headers if not paths or h.split(":")[0] in paths]


def try_repo(hook_setup, *args: str) -> subprocess.CompletedProcess:
    hook_repo, project, env = hook_setup
    # the first run creates the hook's virtualenv and installs loopsafe from the package index
    return pre_commit("try-repo", str(hook_repo), "loopsafe", "--color", "never", *args,
                      cwd=project, env=env, timeout=900)


def test_try_repo_fails_with_findings(hook_setup, monkeypatch: pytest.MonkeyPatch) -> None:
    _, project, _ = hook_setup
    expected = expected_headers(project, monkeypatch)
    assert expected, "the demo project must have findings"
    result = try_repo(hook_setup, "--all-files")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert re.search(r"^loopsafe\.+Failed$", output, re.MULTILINE), output
    assert "- exit code: 1" in output
    for header in expected:
        assert header in output, f"{header!r} missing from the hook's output:\n{output}"
    assert re.search(r"Found \d+ findings? in \d+ files?\.", output)


def test_hook_on_one_staged_file_sees_helpers_in_other_modules(hook_setup, monkeypatch: pytest.MonkeyPatch) -> None:
    _, project, _ = hook_setup
    target = "shop/api/products.py"
    expected = expected_headers(project, monkeypatch, target)
    assert any("LOOP103" in header for header in expected)
    result = try_repo(hook_setup, "--files", target)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    missing = [header for header in expected if header not in output]
    assert not missing, f"missing from the hook's output: {missing}"
