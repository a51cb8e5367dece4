"""The ``loopsafe`` command: ``check``, ``rules``, ``explain`` and ``--version``.

This module owns the command-line contract: flags, where output goes, and exit codes.

* ``0``: nothing found (or ``--exit-zero``);
* ``1``: findings, or files that could not be read or parsed;
* ``2``: a usage or configuration error (unknown flag, nonexistent path, bad config,
  unknown rule code). Nothing is checked in that case.

It wires the other modules together and decides nothing they can: configuration is
:mod:`loopsafe.config`, file discovery and decoding :mod:`loopsafe.discovery`, analysis
:mod:`loopsafe.engine`, output :mod:`loopsafe.render`.
"""
from __future__ import annotations

import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import IO, Sequence

import click

from loopsafe import __version__
from loopsafe.config import ConfigError, Overrides, Settings, parse_selectors, resolve_settings
from loopsafe.discovery import discover, display_path, is_excluded, read_sources, source_from_bytes
from loopsafe.model import ParseError, Report, SourceFile

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

STDIN = "-"


class LoopsafeError(click.ClickException):
    """A configuration or usage problem found after option parsing; exits with 2."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"loopsafe: error: {self.format_message()}", file=file or sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="loopsafe", message="%(prog)s %(version)s")
def main() -> None:
    """Find blocking database calls on the asyncio event loop in FastAPI code."""


# --------------------------------------------------------------------------- check


def _selector_option(flag: str, help_text: str):
    return click.option(
        flag,
        multiple=True,
        metavar="CODES",
        help=f"{help_text} Comma-separated code prefixes, e.g. LOOP1,LOOP201.",
    )


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@_selector_option("--select", "Check only these rules (replaces the configured selection).")
@_selector_option("--extend-select", "Check these rules in addition to the selected ones.")
@_selector_option("--ignore", "Do not check these rules.")
@click.option("--exit-zero", is_flag=True, help="Exit with 0 even when something is found.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, without the summary.")
@click.option(
    "--output-format",
    type=click.Choice(["full", "concise", "json"]),
    default="full",
    show_default=True,
    envvar="LOOPSAFE_OUTPUT_FORMAT",
    show_envvar=True,
    help="How findings are printed.",
)
@click.option(
    "-o",
    "--output-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write findings to FILE instead of standard output.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read settings from FILE instead of the nearest pyproject.toml.",
)
@click.option("--isolated", is_flag=True, help="Ignore all configuration files.")
@click.option(
    "--respect-gitignore/--no-respect-gitignore",
    default=None,
    help="Skip files ignored by .gitignore (default: on, or as configured).",
)
@click.option(
    "--force-exclude",
    is_flag=True,
    help="Apply exclusions even to paths passed explicitly (for pre-commit).",
)
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule instead of the findings.")
@click.option(
    "--stdin-filename",
    metavar="PATH",
    help="The path of the code read from standard input (with PATH '-'), for messages, config and per-file ignores.",
)
def check(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    exit_zero: bool,
    quiet: bool,
    output_format: str,
    output_file: Path | None,
    config_file: Path | None,
    isolated: bool,
    respect_gitignore: bool | None,
    force_exclude: bool,
    statistics: bool,
    stdin_filename: str | None,
) -> None:
    """Check PATHS (files or directories; default: the current directory).

    Use '-' as the only path to read code from standard input.
    """
    cwd = Path.cwd()
    from_stdin = paths == (STDIN,) or (not paths and stdin_filename is not None)
    if STDIN in paths and not from_stdin:
        raise click.UsageError("'-' (standard input) cannot be combined with other paths")
    if stdin_filename is not None and not from_stdin:
        raise click.UsageError("--stdin-filename needs '-' as the only path")
    if not from_stdin:
        for path in paths:
            if not os.path.lexists(path):
                raise LoopsafeError(f"{path}: no such file or directory")
    if config_file is not None and isolated:
        raise click.UsageError("--config cannot be used with --isolated")

    # The configuration is looked up from the first path (for stdin: from the file it stands for).
    if from_stdin:
        config_start = [stdin_filename] if stdin_filename else []
    else:
        config_start = list(paths)
    try:
        overrides = Overrides(
            select=parse_selectors(select, "--select") if select else None,
            extend_select=parse_selectors(extend_select, "--extend-select"),
            ignore=parse_selectors(ignore, "--ignore"),
            respect_gitignore=respect_gitignore,
            force_exclude=force_exclude,
        )
        settings = resolve_settings(
            config_start, cwd=cwd, config_file=config_file, isolated=isolated, overrides=overrides
        )
    except ConfigError as exc:
        raise LoopsafeError(str(exc)) from None

    if from_stdin:
        sources, errors, abspaths = _read_stdin(stdin_filename, settings, cwd)
    else:
        sources, errors, abspaths = _read_paths(paths or (".",), settings, cwd)
        if not sources and not errors:
            click.echo("warning: no Python files found under the given paths", err=True)

    report = _run(sources, errors, settings)
    report = _apply_per_file_ignores(report, settings, abspaths, cwd)
    _write_output(
        report,
        {source.path: source.text for source in sources},
        output_format=output_format,
        output_file=output_file,
        quiet=quiet,
        statistics=statistics,
        cwd=str(cwd),
    )
    failed = bool(report.findings or report.parse_errors)
    click.get_current_context().exit(EXIT_FINDINGS if failed and not exit_zero else EXIT_OK)


def _read_paths(
    paths: Sequence[str], settings: Settings, cwd: Path
) -> tuple[list[SourceFile], list[ParseError], dict[str, str]]:
    found = discover(paths, settings.discovery, cwd=str(cwd))
    sources, errors = read_sources(found.files, str(cwd))
    abspaths = {display_path(path, cwd): path for path in found.files}
    return sources, found.errors + errors, abspaths


def _read_stdin(
    stdin_filename: str | None, settings: Settings, cwd: Path
) -> tuple[list[SourceFile], list[ParseError], dict[str, str]]:
    data = sys.stdin.buffer.read()
    if stdin_filename is None:
        display, abspath = STDIN, ""
    else:
        # As ruff does: with --force-exclude, an excluded file piped in by an editor is skipped.
        if settings.discovery.force_exclude and is_excluded(stdin_filename, settings.discovery, cwd=str(cwd)):
            return [], [], {}
        display = display_path(stdin_filename, cwd)
        abspath = os.path.normpath(os.path.join(cwd, stdin_filename))
    item = source_from_bytes(data, display, abspath=abspath)
    if isinstance(item, ParseError):
        return [], [item], {display: abspath}
    return [item], [], {display: abspath}


def _run(sources: list[SourceFile], errors: list[ParseError], settings: Settings) -> Report:
    from loopsafe.engine import check_files  # the engine is heavy; `rules` and `explain` do not need it

    if sources:
        try:
            report = check_files(sources, settings.options, root=str(settings.project_root))
        except Exception as exc:  # noqa: BLE001
            # A crash must not look like "findings" (exit 1) to CI: report it as an error.
            traceback.print_exc(file=sys.stderr)
            raise LoopsafeError(
                f"internal error while analysing ({type(exc).__name__}: {exc}); please report this bug"
            ) from None
    else:
        report = Report(findings=(), parse_errors=(), files_checked=0)
    return replace(
        report,
        parse_errors=(*errors, *report.parse_errors),
        files_checked=report.files_checked + len(errors),
    )


def _apply_per_file_ignores(report: Report, settings: Settings, abspaths: dict[str, str], cwd: Path) -> Report:
    if not settings.per_file_ignores:
        return report
    kept = tuple(
        finding
        for finding in report.findings
        if not settings.is_ignored(finding, abspaths.get(finding.path) or os.path.join(cwd, finding.path))
    )
    return replace(report, findings=kept)


def _write_output(
    report: Report,
    sources: dict[str, str],
    *,
    output_format: str,
    output_file: Path | None,
    quiet: bool,
    statistics: bool,
    cwd: str,
) -> None:
    from loopsafe import render

    if output_file is not None:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        stream: IO[str] = open(output_file, "w", encoding="utf-8", newline="")
    else:
        stream = sys.stdout
    try:
        console = render.make_console(stream, color=False if output_file is not None else None)
        if statistics:
            names = _rule_names()
            if output_format == "json":
                stream.write(render.format_statistics_json(report, names))
            else:
                render.emit(console, render.format_statistics(report, names))
        elif output_format == "json":
            stream.write(render.format_json(report, cwd))
            if report.parse_errors:
                render.emit(render.make_console(sys.stderr), render.format_parse_errors(report.parse_errors))
        elif output_format == "concise":
            render.emit(console, render.format_concise(report, show_summary=not quiet))
        else:
            render.emit(console, render.format_full(report, sources, show_summary=not quiet))
        stream.flush()
    finally:
        if output_file is not None:
            stream.close()


def _rule_names() -> dict[str, str]:
    from loopsafe.rules import ALL_RULES

    return {rule.code: rule.name for rule in ALL_RULES}


# --------------------------------------------------------------------------- rules / explain


@main.command()
def rules() -> None:
    """List every rule: code, name, whether it is on by default, summary."""
    from loopsafe.rules import ALL_RULES

    if not ALL_RULES:
        return
    name_width = max(len(rule.name) for rule in ALL_RULES)
    code_width = max(len(rule.code) for rule in ALL_RULES)
    for rule in ALL_RULES:
        default = "on" if rule.default_enabled else "off"
        click.echo(f"{rule.code:<{code_width}}  {rule.name:<{name_width}}  {default:<3}  {rule.summary}")


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Explain the rule CODE (for example LOOP101)."""
    from loopsafe import render
    from loopsafe.docs import rule_markdown
    from loopsafe.rules import rule_by_code

    rule = rule_by_code(code.strip().upper())
    if rule is None:
        raise LoopsafeError(f"unknown rule code {code!r}; `loopsafe rules` lists them")
    render.print_markdown(render.make_console(sys.stdout), rule_markdown(rule))


if __name__ == "__main__":  # pragma: no cover
    main()
