"""Configuration lookup, validation and merging with command-line overrides (loopsafe.config)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopsafe.config import (
    KEYS,
    ConfigError,
    Overrides,
    PerFileIgnore,
    find_config_file,
    load_config,
    parse_selectors,
    resolve_settings,
)
from loopsafe.discovery import DEFAULT_EXCLUDE
from loopsafe.model import Finding, Options


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def pyproject(directory: Path, body: str) -> Path:
    return write(directory / "pyproject.toml", f"[tool.loopsafe]\n{body}")


def test_every_documented_key_is_accepted(tmp_path: Path) -> None:
    path = pyproject(
        tmp_path,
        """
select = ["LOOP1"]
extend-select = ["LOOP105"]
ignore = ["LOOP102"]
per-file-ignores = { "tests/**" = ["LOOP1"] }
exclude = ["migrations"]
extend-exclude = ["*_pb2.py"]
respect-gitignore = false
src = ["src", "."]
session-factories = ["app.db.SessionLocal"]
sync-session-types = ["app.db.MySession"]
async-session-types = ["app.db.MyAsyncSession"]
blocking-calls = ["app.legacy.fetch_all"]
offload-wrappers = ["app.util.in_thread"]
fastapi-version = "0.115.0"
""",
    )
    config = load_config(path)
    assert set(KEYS) == {
        "select", "extend-select", "ignore", "per-file-ignores", "exclude", "extend-exclude",
        "respect-gitignore", "src", "session-factories", "sync-session-types", "async-session-types",
        "blocking-calls", "offload-wrappers", "fixable", "unfixable", "unsafe-fixes", "fastapi-version",
    }
    assert config.select == ("LOOP1",)
    assert config.per_file_ignores == (("tests/**", ("LOOP1",)),)
    assert config.respect_gitignore is False
    # src is resolved against the configuration file's directory, not the cwd
    assert config.src == (str(tmp_path / "src"), str(tmp_path))
    assert config.offload_wrappers == ("app.util.in_thread",)
    assert config.fastapi_version == "0.115.0"


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = pyproject(tmp_path, 'extend_select = ["LOOP1"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "extend_select" in message and "unknown key" in message
    assert "did you mean 'extend-select'?" in message


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ('select = "LOOP1"\n', "select", "list of strings"),
        ("ignore = [101]\n", "ignore", "list of strings"),
        ('respect-gitignore = "yes"\n', "respect-gitignore", "true or false"),
        ('per-file-ignores = ["tests"]\n', "per-file-ignores", "table"),
        ('per-file-ignores = { "tests/*" = "LOOP1" }\n', 'per-file-ignores."tests/*"', "list of strings"),
        ('src = "src"\n', "src", "list of strings"),
        ('session-factories = ["app.db:SessionLocal"]\n', "session-factories", "qualified name"),
        ('exclude = ["[z-a]"]\n', "exclude", "invalid glob"),
        ('select = ["LOOP9"]\n', "select", "unknown rule selector 'LOOP9'"),
        ('ignore = ["loop-101"]\n', "ignore", "invalid rule selector"),
        ('fastapi-version = 0.115\n', "fastapi-version", 'a FastAPI release such as "0.115.0", got a float'),
        ('fastapi-version = ">=0.110"\n', "fastapi-version", "got '>=0.110'"),
        ('fastapi-version = "0.115.0\\n"\n', "fastapi-version", "a FastAPI release"),
        ('fastapi-version = "latest"\n', "fastapi-version", "got 'latest'"),
    ],
)
def test_wrong_types_name_file_and_key(tmp_path: Path, body: str, key: str, expected: str) -> None:
    path = pyproject(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [tool.loopsafe] {key}:"), message
    assert expected in message


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", '[tool.loopsafe]\nselect = ["LOOP1"]\nignore = [\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)  # tomllib says only "end of document" here
    path = write(tmp_path / "pyproject.toml", '[tool.loopsafe]\nselect = ["LOOP1"\nignore = []\n')
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_tool_loopsafe_must_be_a_table(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", '[tool]\nloopsafe = "yes"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        load_config(path)


def test_standalone_config_file_uses_top_level_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "loopsafe.toml", 'ignore = ["LOOP105"]\n')
    assert load_config(path).ignore == ("LOOP105",)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "other.toml", "colour = true\n"))
    assert f"{tmp_path / 'other.toml'}: colour: unknown key" in str(info.value)


def test_selectors_are_case_insensitive(tmp_path: Path) -> None:
    assert load_config(pyproject(tmp_path, 'select = ["loop1"]\n')).select == ("LOOP1",)


# --------------------------------------------------------------------------- lookup


def test_nearest_pyproject_with_a_loopsafe_table_wins(tmp_path: Path) -> None:
    outer = pyproject(tmp_path, 'ignore = ["LOOP105"]\n')
    # a sub-package's packaging file without our table does not hide the outer settings
    write(tmp_path / "pkg" / "pyproject.toml", '[project]\nname = "pkg"\n')
    write(tmp_path / "pkg" / "mod.py", "")
    assert find_config_file(tmp_path / "pkg" / "mod.py") == outer
    inner = pyproject(tmp_path / "pkg" / "sub", "")
    assert find_config_file(tmp_path / "pkg" / "sub") == inner


def test_no_config_anywhere(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    settings = resolve_settings(["app"], cwd=tmp_path)
    assert settings.config_path is None
    assert settings.options == Options()
    assert settings.discovery.exclude == DEFAULT_EXCLUDE
    assert settings.discovery.respect_gitignore is True


def test_config_found_from_first_path_not_cwd(tmp_path: Path) -> None:
    project = tmp_path / "project"
    config = pyproject(project, 'ignore = ["LOOP105"]\n')
    (project / "app").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings = resolve_settings([str(project / "app")], cwd=elsewhere)
    assert settings.config_path == config
    assert settings.project_root == project
    assert settings.options.ignore == ("LOOP105",)


def test_explicit_config_and_isolated(tmp_path: Path) -> None:
    pyproject(tmp_path, 'ignore = ["LOOP105"]\n')
    custom = write(tmp_path / "ci" / "loopsafe.toml", 'ignore = ["LOOP102"]\nsrc = ["../src"]\n')
    settings = resolve_settings(["."], cwd=tmp_path, config_file=Path("ci/loopsafe.toml"))
    assert settings.options.ignore == ("LOOP102",)
    assert settings.options.src == (str(tmp_path / "src"),)
    assert settings.config_path == custom
    isolated = resolve_settings(["."], cwd=tmp_path, isolated=True)
    assert isolated.config_path is None and isolated.options.ignore == ()


def test_fastapi_version_from_the_config_else_from_the_project_pin(tmp_path: Path) -> None:
    write(tmp_path / "requirements.txt", "fastapi==0.110.0\n")
    (tmp_path / "app").mkdir()
    assert resolve_settings(["app"], cwd=tmp_path).options.fastapi_version == "0.110.0"
    pyproject(tmp_path, 'fastapi-version = "0.118.0"\n')
    assert resolve_settings(["app"], cwd=tmp_path).options.fastapi_version == "0.118.0"
    pyproject(tmp_path, "")
    assert resolve_settings(["app"], cwd=tmp_path).options.fastapi_version == "0.110.0"
    write(tmp_path / "requirements.txt", "fastapi>=0.110\n")
    assert resolve_settings(["app"], cwd=tmp_path).options.fastapi_version == ""


def test_broken_unrelated_pyproject_on_the_way_up_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        resolve_settings(["."], cwd=tmp_path)


# --------------------------------------------------------------------------- merging


def test_cli_select_starts_selection_afresh(tmp_path: Path) -> None:
    pyproject(tmp_path, 'select = ["LOOP1"]\nextend-select = ["LOOP105"]\nignore = ["LOOP102"]\n')
    settings = resolve_settings(["."], cwd=tmp_path, overrides=Overrides(select=("LOOP103",), ignore=("LOOP1031",)))
    assert (settings.options.select, settings.options.extend_select, settings.options.ignore) == (
        ("LOOP103",), (), ("LOOP1031",),
    )


def test_cli_extend_select_and_ignore_add_to_the_file(tmp_path: Path) -> None:
    pyproject(tmp_path, 'select = ["LOOP1"]\nextend-select = ["LOOP105"]\nignore = ["LOOP102"]\n')
    settings = resolve_settings(
        ["."], cwd=tmp_path, overrides=Overrides(extend_select=("LOOP103",), ignore=("LOOP101",))
    )
    assert settings.options.select == ("LOOP1",)
    assert settings.options.extend_select == ("LOOP105", "LOOP103")
    assert settings.options.ignore == ("LOOP102", "LOOP101")


def test_gitignore_and_exclude_settings(tmp_path: Path) -> None:
    pyproject(tmp_path, 'respect-gitignore = false\nexclude = ["gen"]\nextend-exclude = ["*_pb2.py"]\n')
    settings = resolve_settings(["."], cwd=tmp_path)
    assert settings.discovery.respect_gitignore is False
    assert settings.discovery.exclude == ("gen",)
    assert settings.discovery.extend_exclude == ("*_pb2.py",)
    forced = resolve_settings(["."], cwd=tmp_path, overrides=Overrides(respect_gitignore=True, force_exclude=True))
    assert forced.discovery.respect_gitignore is True and forced.discovery.force_exclude is True


def test_parse_selectors_splits_commas_and_validates() -> None:
    assert parse_selectors(["LOOP101, loop105", "LOOP1"], "--select") == ("LOOP101", "LOOP105", "LOOP1")
    with pytest.raises(ConfigError, match=r"^--ignore: unknown rule selector 'LOOP999'"):
        parse_selectors(["LOOP999"], "--ignore")


# --------------------------------------------------------------------------- per-file ignores


def finding(code: str, path: str) -> Finding:
    return Finding(code, "msg", path, 1, 1, 1, 2, "fix")


def test_per_file_ignores(tmp_path: Path) -> None:
    root = str(tmp_path)
    tests = PerFileIgnore("tests/**/*.py", ("LOOP1",), root)
    by_name = PerFileIgnore("conftest.py", ("LOOP105",), root)
    not_app = PerFileIgnore("!app/**", ("LOOP102",), root)
    path = os.path.join(root, "tests", "unit", "test_x.py")
    assert tests.ignores(finding("LOOP101", path), path)
    assert not tests.ignores(finding("LOOP201", path), path)
    nested = os.path.join(root, "pkg", "conftest.py")
    assert by_name.ignores(finding("LOOP105", nested), nested)  # no "/": matches the file name
    app = os.path.join(root, "app", "api.py")
    assert not not_app.ignores(finding("LOOP102", app), app)
    assert not_app.ignores(finding("LOOP102", path), path)


def test_per_file_ignores_from_config(tmp_path: Path) -> None:
    pyproject(tmp_path, '[tool.loopsafe.per-file-ignores]\n"scripts/*.py" = ["LOOP1"]\n')
    settings = resolve_settings(["."], cwd=tmp_path)
    script = str(tmp_path / "scripts" / "seed.py")
    assert settings.is_ignored(finding("LOOP101", "scripts/seed.py"), script)
    assert not settings.is_ignored(finding("LOOP101", "app/api.py"), str(tmp_path / "app" / "api.py"))


def test_family_prefix_without_rules_yet_is_accepted() -> None:
    from loopsafe import config

    # the eval scorer and CI configs select whole families (LOOP2) before they have rules
    assert config.selector_problem("LOOP2") is None
    assert config.selector_problem("LOOP") is None
    assert config.selector_problem("LOOP299") is not None
