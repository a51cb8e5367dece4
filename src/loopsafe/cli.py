"""The ``loopsafe`` command: ``check``, ``rules``, ``explain`` and ``--version``.

This module owns the command-line contract: flags, where output goes, and exit codes.

* ``0``: nothing found (or ``--exit-zero``);
* ``1``: findings, or files that could not be read or parsed;
* ``2``: a usage or configuration error (unknown flag, nonexistent path, bad config,
  unknown rule code). Nothing is checked in that case.

It wires the other modules together and decides nothing they can: configuration is
:mod:`loopsafe.config`, file discovery and decoding :mod:`loopsafe.discovery`, analysis
:mod:`loopsafe.engine`, ``# noqa`` comments :mod:`loopsafe.suppression`, baselines
:mod:`loopsafe.baseline`, output :mod:`loopsafe.render` and :mod:`loopsafe.sarif`.

The engine's findings are filtered in this order: per-file ignores, ``# noqa`` comments,
then the baseline. Everything printed (findings, summaries, ``--statistics``) and the
exit code count only what is left.
"""
from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Sequence

import click

from loopsafe import __version__, replay
from loopsafe.config import ConfigError, Overrides, Settings, parse_selectors, resolve_settings
from loopsafe.discovery import discover_kept, display_path, is_excluded, read_sources, source_from_bytes
from loopsafe.model import ParseError, Report, SourceFile

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

STDIN = "-"

#: the same as :data:`loopsafe.render.OUTPUT_FORMATS` (not imported: it would import rich)
OUTPUT_FORMATS = ("full", "concise", "json", "json-lines", "sarif", "github", "gitlab")
#: formats whose standard output must stay machine-readable: parse errors go to stderr
_DATA_FORMATS = ("json", "json-lines", "sarif", "gitlab")


class LoopsafeError(click.ClickException):
    """A configuration or usage problem found after option parsing; exits with 2."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"loopsafe: error: {self.format_message()}", file=file or sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="loopsafe", message="%(prog)s %(version)s")
def main() -> None:
    """Find blocking database calls on the asyncio event loop in FastAPI code."""


def run() -> None:
    """The `loopsafe` command (kept here for callers of `loopsafe.cli:run`)."""
    from loopsafe.launch import run as launch

    launch()


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
    type=click.Choice(OUTPUT_FORMATS),
    default="full",
    show_default=True,
    envvar="LOOPSAFE_OUTPUT_FORMAT",
    show_envvar=True,
    help="How findings are printed (github: workflow annotations; sarif, gitlab: code scanning reports).",
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
@click.option(
    "--add-noqa",
    is_flag=True,
    help="Add `# noqa: CODE` comments to the lines of all current findings, then exit 0.",
)
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Report only findings that FILE (see --write-baseline) does not record.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="LOOPSAFE_CACHE_DIR",
    show_envvar=True,
    help="Where to cache file summaries and results (default: .loopsafe_cache in the project root).",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes used to parse files (default: the number of CPUs). Results do not depend on it.",
)
@click.option("--fix", is_flag=True, help="Apply the fixes of the findings that have safe ones, and write the files.")
@click.option(
    "--unsafe-fixes/--no-unsafe-fixes",
    default=None,
    help="Also apply (with --fix) or show fixes that may change behaviour (default: off, or as configured).",
)
@click.option("--diff", is_flag=True, help="Print a diff of what --fix would change, write nothing; exit 1 if it would.")
@click.option("--show-fixes", is_flag=True, help="List the fixes applied (with --fix) or applicable.")
@click.option(
    "--write-baseline",
    "write_baseline_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Record all current findings in FILE, then exit 0.",
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
    add_noqa: bool,
    baseline_file: Path | None,
    write_baseline_file: Path | None,
    cache_dir: Path | None,
    no_cache: bool,
    jobs: int | None,
    fix: bool = False,
    unsafe_fixes: bool | None = None,
    diff: bool = False,
    show_fixes: bool = False,
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
    if add_noqa and write_baseline_file is not None:
        raise click.UsageError("--add-noqa cannot be used with --write-baseline")
    if from_stdin and (add_noqa or write_baseline_file is not None):
        flag = "--add-noqa" if add_noqa else "--write-baseline"
        raise click.UsageError(f"{flag} cannot be used with standard input")
    if not from_stdin:
        for path in paths:
            if not os.path.lexists(path):
                raise LoopsafeError(f"{path}: no such file or directory")
    if fix or diff:
        flag = "--fix" if fix else "--diff"
        if from_stdin:
            raise click.UsageError(f"{flag} cannot be used with standard input")
        if add_noqa or write_baseline_file is not None:
            other = "--add-noqa" if add_noqa else "--write-baseline"
            raise click.UsageError(f"{flag} cannot be used with {other}")
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
            unsafe_fixes=unsafe_fixes,
        )
        settings = resolve_settings(
            config_start, cwd=cwd, config_file=config_file, isolated=isolated, overrides=overrides
        )
    except ConfigError as exc:
        raise LoopsafeError(str(exc)) from None

    if no_cache:
        cache = None
    else:
        cache = cwd / cache_dir if cache_dir is not None else settings.project_root / ".loopsafe_cache"
    if from_stdin:
        sources, errors, abspaths = _read_stdin(stdin_filename, settings, cwd)
    else:
        sources, errors, abspaths = _read_paths(paths or (".",), settings, cwd, cache)
        if not sources and not errors:
            click.echo("warning: no Python files found under the given paths", err=True)

    recorded = _read_baseline(baseline_file) if baseline_file is not None else None

    # Files named one by one (pre-commit, editors) are checked with their whole project as
    # context, so a call into a helper in an unnamed module is still followed.
    named_files = from_stdin or bool(paths) and all(os.path.isfile(os.path.join(cwd, p)) for p in paths)
    context = _read_context(sources, settings, cwd, cache) if named_files and sources else []
    project = _ProjectPaths(settings.project_root, cwd, abspaths)
    # a run that reads stdin or writes anything but its output is never replayed
    if cache is None or from_stdin or fix or diff or add_noqa or write_baseline_file or output_file:
        replay.forbid()
    else:
        replay.allow(cache)

    def analyse(sources: list[SourceFile], *, quiet: bool, warn: bool = True) -> Report:
        report = _run(sources, errors, settings, context=context, cache_dir=cache, jobs=jobs)
        report = _apply_per_file_ignores(report, settings, abspaths, cwd)
        report = _apply_noqa(report, {source.path: source.text for source in sources}, warn=warn, cache_dir=cache)
        if recorded is not None and write_baseline_file is None:
            report = _apply_baseline(recorded, report, settings, project, quiet=quiet)
        return _strip_unfixable(report, settings)

    report = analyse(sources, quiet=quiet or fix or diff)
    texts = {source.path: source.text for source in sources}

    if write_baseline_file is not None:
        _write_baseline(write_baseline_file, report, project)
        click.get_current_context().exit(EXIT_OK)
    fixed: list = []
    if fix or diff:
        outcome = _fix_loop(report, sources, analyse, settings.unsafe_fixes)
        changed = {path: text for path, text in outcome.texts.items() if text != texts[path]}
        if diff:
            _print_diffs(texts, changed, outcome, show_fixes=show_fixes)
            failed = bool(changed or outcome.errors)
            click.get_current_context().exit(EXIT_FINDINGS if failed else EXIT_OK)
        written = _write_fixes(changed, texts, project)
        fixed = [f for f in outcome.applied if f.path in written]
        for problem in outcome.errors:
            _error(problem)
        if written == set(changed):
            report = outcome.report
        else:  # some files could not be written: report on what is on disk
            texts = {path: (changed[path] if path in written else text) for path, text in texts.items()}
            report = analyse([replace(s, text=texts[s.path]) for s in sources], quiet=True, warn=False)
        texts = {path: (changed[path] if path in written else text) for path, text in texts.items()}
    if add_noqa:
        _add_noqa(report, texts, project)
        click.get_current_context().exit(EXIT_OK)

    _write_output(
        report,
        texts,
        output_format=output_format,
        output_file=output_file,
        quiet=quiet,
        statistics=statistics,
        cwd=str(cwd),
        root=str(repository_root(settings.project_root)),
        unsafe_fixes=settings.unsafe_fixes,
        fixed=len(fixed),
    )
    if show_fixes:
        _show_fixes(fixed if fix else [f for f in report.findings if _applies(f, settings.unsafe_fixes)],
                    applied=fix, data=output_format not in ("full", "concise") or output_file is not None)
    failed = bool(report.findings or report.parse_errors or (fix and outcome.errors))
    click.get_current_context().exit(EXIT_FINDINGS if failed and not exit_zero else EXIT_OK)


def _read_paths(
    paths: Sequence[str], settings: Settings, cwd: Path, cache: Path | None = None
) -> tuple[list[SourceFile], list[ParseError], dict[str, str]]:
    found = discover_kept(paths, settings.discovery, cwd=str(cwd), cache_dir=cache)
    sources, errors = read_sources(found.files, str(cwd))
    abspaths = {item.path: item.abspath for item in sources}  # shown path -> the path found
    if errors:  # unreadable files have no SourceFile to say it
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


def _read_context(sources: list[SourceFile], settings: Settings, cwd: Path,
                  cache: Path | None = None) -> list[SourceFile]:
    """The files checked and the rest of their project, read for cross-module context, in the
    order a run over the whole project has them: the order decides which of two modules
    claiming one name an import finds, and a run over the project keeps the state (see
    `loopsafe.incremental`) a run over a few files can bring up to date."""
    found = discover_kept([str(settings.project_root)], settings.discovery, cwd=str(cwd), cache_dir=cache)
    checked = {os.path.normpath(s.abspath): s for s in sources if s.abspath}
    rest = [path for path in found.files if os.path.normpath(path) not in checked]
    context, _unreadable = read_sources(rest, str(cwd))  # unreadable context files are not reported
    read = {os.path.normpath(f.abspath): f for f in context if f.abspath}
    ordered = [checked.get(path) or read.get(path) for path in map(os.path.normpath, found.files)]
    placed = {id(f) for f in ordered if f is not None}
    # files named but not found by the walk (excluded ones, others outside it) come first
    return [*(s for s in sources if id(s) not in placed), *(f for f in ordered if f is not None)]


def _run(sources: list[SourceFile], errors: list[ParseError], settings: Settings, *,
         context: Sequence[SourceFile] = (), cache_dir: Path | None = None, jobs: int | None = None) -> Report:
    from loopsafe.engine import check_files  # the engine is heavy; `rules` and `explain` do not need it

    files = sources
    if context:
        # `context` holds the files checked too, in the project's order; the texts are the
        # ones given here (`--fix` checks the fixed texts again)
        given = {s.path: s for s in sources}
        listed = {f.path for f in context}
        files = [*(s for s in sources if s.path not in listed), *(given.get(f.path, f) for f in context)]
    if sources:
        try:
            report = check_files(files, settings.options, root=str(settings.project_root),
                                 cache_dir=cache_dir, jobs=jobs,
                                 focus=[s.path for s in sources] if context else None)
        except Exception as exc:  # noqa: BLE001
            # A crash must not look like "findings" (exit 1) to CI: report it as an error.
            import traceback

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


# --------------------------------------------------------------------------- suppression


@dataclass(frozen=True)
class _ProjectPaths:
    """Turns the paths findings are shown with into paths relative to the project root."""

    root: Path
    cwd: Path
    abspaths: dict[str, str]

    def absolute(self, display: str) -> str:
        return self.abspaths.get(display) or os.path.normpath(os.path.join(self.cwd, display))

    def relative(self, display: str) -> str:
        absolute = self.absolute(display)
        try:
            return Path(os.path.relpath(absolute, self.root)).as_posix()
        except ValueError:  # on another drive (Windows)
            return Path(absolute).as_posix()

    def exists(self, relative: str) -> bool:
        return (self.root / relative).exists()


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _apply_noqa(report: Report, texts: dict[str, str], *, warn: bool = True, cache_dir: Path | None = None) -> Report:
    from loopsafe.cache import Cache
    from loopsafe.suppression import apply_noqa

    kept, _suppressed, invalid = apply_noqa(report.findings, texts, Cache(cache_dir) if cache_dir is not None else None)
    for directive in invalid if warn else ():
        _warn(str(directive))
    return replace(report, findings=tuple(kept))


def _add_noqa(report: Report, texts: dict[str, str], project: _ProjectPaths) -> None:
    from loopsafe.suppression import add_noqa

    by_path: dict[str, list] = {}
    for finding in report.findings:
        by_path.setdefault(finding.path, []).append(finding)
    added = 0
    for path, findings in sorted(by_path.items()):
        new_text, count, skipped = add_noqa(findings, texts[path])
        for item in skipped:
            _warn(str(item))
        if not count:
            continue
        problem = _write_back(project.absolute(path), texts[path], new_text)
        if problem == _CHANGED:
            _warn(f"{path}: changed while it was being checked; no `# noqa` comments added")
        elif problem:
            _warn(f"{path}: could not add `# noqa` comments: {problem}")
        else:
            added += count
    if report.parse_errors:
        _print_parse_errors(report)
    click.echo(f"Added {_plural(added, 'noqa directive')}.", err=True)


# --------------------------------------------------------------------------- fixes


def _applies(finding, unsafe: bool) -> bool:
    from loopsafe.fixes import applicable

    return applicable(finding, unsafe)


def _strip_unfixable(report: Report, settings: Settings) -> Report:
    """Findings of codes that `fixable`/`unfixable` exclude lose their fix (no [*], no JSON fix)."""
    if settings.fixable is None and not settings.unfixable:
        return report
    findings = tuple(
        replace(f, fix=None) if f.fix is not None and not settings.is_fixable(f.code) else f for f in report.findings
    )
    return replace(report, findings=findings)


@dataclass
class _FixOutcome:
    texts: dict[str, str]
    applied: list
    errors: list[str]
    report: Report


def _fix_loop(report: Report, sources: list[SourceFile], analyse, unsafe: bool) -> _FixOutcome:
    """Apply the applicable fixes, re-analyse, and again while fixes were left out because they
    overlapped (at most MAX_PASSES passes), as ruff does. A file whose fixed text would not
    parse is left as it was (and not fixed further)."""
    from loopsafe.fixes import MAX_PASSES, apply_fixes, drop_conflicting, parse_problem

    texts = {source.path: source.text for source in sources}
    applied: list = []
    errors: list[str] = []
    broken: set[str] = set()
    for _ in range(MAX_PASSES):
        candidates = drop_conflicting(f for f in report.findings if _applies(f, unsafe) and f.path not in broken)
        by_path: dict[str, list] = {}
        for finding in candidates:
            if finding.path in texts:
                by_path.setdefault(finding.path, []).append(finding)
        progress = False
        for path, findings in sorted(by_path.items()):
            new_text, done = apply_fixes(texts[path], findings)
            if not done or new_text == texts[path]:
                continue
            problem = parse_problem(new_text, path)
            if problem is not None:
                broken.add(path)
                errors.append(f"{path}: fixes not applied, the result would not parse ({problem}); "
                              "the file is left untouched, please report this bug")
                texts[path] = next(s.text for s in sources if s.path == path)
                applied = [f for f in applied if f.path != path]
                continue
            texts[path] = new_text
            applied.extend(done)
            progress = True
        if not progress:
            break
        report = analyse([replace(s, text=texts[s.path]) for s in sources], quiet=True, warn=False)
    return _FixOutcome(texts, applied, errors, report)


def _error(message: str) -> None:
    click.echo(f"error: {message}", err=True)


def _write_fixes(changed: dict[str, str], texts: dict[str, str], project: _ProjectPaths) -> set[str]:
    """Write the fixed files (in their own encoding and line endings); the paths written."""
    written: set[str] = set()
    for path, new_text in sorted(changed.items()):
        problem = _write_back(project.absolute(path), texts[path], new_text)
        if problem == _CHANGED:
            _warn(f"{path}: changed while it was being checked; not fixed")
        elif problem:
            _warn(f"{path}: could not write the fixes: {problem}")
        else:
            written.add(path)
    return written


_CHANGED = "changed on disk"


def _write_back(target: str, expected: str, new_text: str) -> str:
    """Write `new_text` over `target` in the file's own encoding (line endings as given), if
    the file still holds `expected`: "" when written, `_CHANGED`, or why it could not be."""
    import tokenize

    from loopsafe.discovery import DecodeError, decode_source

    try:
        data = Path(target).read_bytes()
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        if decode_source(data) != expected:
            return _CHANGED
        with open(target, "w", encoding=encoding, newline="") as f:
            f.write(new_text)
    except (OSError, SyntaxError, ValueError, DecodeError) as exc:  # UnicodeError is a ValueError
        return str(exc) or type(exc).__name__
    return ""


def _print_diffs(texts: dict[str, str], changed: dict[str, str], outcome: _FixOutcome, *, show_fixes: bool) -> None:
    """--diff: a unified diff per file on stdout; counts and problems on stderr."""
    import difflib

    for path in sorted(changed):
        lines = difflib.unified_diff(
            texts[path].splitlines(keepends=True), changed[path].splitlines(keepends=True),
            fromfile=path, tofile=path,
        )
        for line in lines:
            sys.stdout.write(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n")
    sys.stdout.flush()
    for problem in outcome.errors:
        _error(problem)
    count = len([f for f in outcome.applied if f.path in changed])
    if count:
        click.echo(f"Would fix {_plural(count, 'finding')}.", err=True)
    else:
        click.echo("No fixes to apply.", err=True)
    if show_fixes:
        _show_fixes([f for f in outcome.applied if f.path in changed], applied=False, data=True)


def _show_fixes(findings: list, *, applied: bool, data: bool) -> None:
    """`Fixed N findings:` (or `N fixable findings:`) then, per file, `N × CODE (name)`."""
    from collections import Counter

    names = {rule.code: rule.name for rule in _all_rules()}
    stream = sys.stderr if data else sys.stdout
    if not findings:
        click.echo("No fixes applied." if applied else "No fixes available.", file=stream)
        return
    head = f"Fixed {_plural(len(findings), 'finding')}:" if applied else f"{_plural(len(findings), 'fixable finding')}:"
    out = [head]
    by_path: dict[str, Counter] = {}
    for finding in findings:
        by_path.setdefault(finding.path, Counter())[finding.code] += 1
    for path, counts in sorted(by_path.items()):
        out.append(f"- {path}:")
        for code, n in sorted(counts.items()):
            out.append(f"    {n} \u00d7 {code} ({names.get(code, '')})")
    click.echo("\n".join(out), file=stream)


def _read_baseline(path: Path):
    from loopsafe import baseline

    replay.note_file(str(path))
    try:
        return baseline.read(path)
    except baseline.BaselineError as exc:
        raise LoopsafeError(str(exc)) from None


def _write_baseline(path: Path, report: Report, project: _ProjectPaths) -> None:
    from loopsafe import baseline

    counts = baseline.count_findings(report.findings, project.relative)
    try:
        baseline.write(path, counts)
    except OSError as exc:
        raise LoopsafeError(f"{path}: cannot write baseline: {exc.strerror or exc}") from None
    if report.parse_errors:
        _print_parse_errors(report)
    click.echo(
        f"Wrote {path}: {_plural(len(report.findings), 'finding')} "
        f"in {_plural(len(counts), 'entry', 'entries')}.",
        err=True,
    )


def _apply_baseline(recorded, report: Report, settings: Settings, project: _ProjectPaths, *, quiet: bool) -> Report:
    from loopsafe import baseline
    from loopsafe.engine import selected_codes

    failed = {error.path for error in report.parse_errors}
    checked = {project.relative(path) for path in project.abspaths if path not in failed}
    outcome = baseline.apply(
        recorded,
        report.findings,
        project.relative,
        checked=checked,
        codes=selected_codes(settings.options),
        exists=project.exists,
    )
    if outcome.stale and not quiet:
        count = len(outcome.stale)
        verb = "entry is" if count == 1 else "entries are"
        _note(f"{count} baseline {verb} stale; rewrite with --write-baseline")
    return replace(report, findings=tuple(outcome.new))


# --------------------------------------------------------------------------- output


def repository_root(project_root: Path) -> Path:
    """What the CI formats name files relative to: the enclosing git checkout, else the project."""
    for candidate in (project_root, *project_root.parents):
        replay.note_exists(str(candidate / ".git"))
        if (candidate / ".git").exists():
            return candidate
    return project_root


def _print_parse_errors(report: Report) -> None:
    from loopsafe import render

    render.emit(sys.stderr, render.format_parse_errors(report.parse_errors))


def _write_output(
    report: Report,
    sources: dict[str, str],
    *,
    output_format: str,
    output_file: Path | None,
    quiet: bool,
    statistics: bool,
    cwd: str,
    root: str,
    unsafe_fixes: bool = False,
    fixed: int = 0,
) -> None:
    from loopsafe import render

    if output_file is not None:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        stream: IO[str] = open(output_file, "w", encoding="utf-8", newline="")
    else:
        stream = sys.stdout
    try:
        color = False if output_file is not None else None
        if statistics:
            names = {rule.code: rule.name for rule in _all_rules()}
            if output_format == "json":
                stream.write(render.format_statistics_json(report, names))
            else:
                render.emit(stream, render.format_statistics(report, names), color=color)
        elif output_format == "full":
            render.emit(stream, render.format_full(report, sources, show_summary=not quiet,
                                                    unsafe_fixes=unsafe_fixes, fixed=fixed), color=color)
        elif output_format == "concise":
            render.emit(stream, render.format_concise(report, show_summary=not quiet,
                                                       unsafe_fixes=unsafe_fixes, fixed=fixed), color=color)
        else:
            stream.write(_format_data(output_format, report, sources, cwd=cwd, root=root))
            if output_format in _DATA_FORMATS and report.parse_errors:
                _print_parse_errors(report)
        stream.flush()
    finally:
        if output_file is not None:
            stream.close()


def _format_data(output_format: str, report: Report, sources: dict[str, str], *, cwd: str, root: str) -> str:
    from loopsafe import render

    if output_format == "json":
        return render.format_json(report, cwd)
    if output_format == "json-lines":
        return render.format_json_lines(report, cwd)
    if output_format == "github":
        levels = {rule.code: render.rule_level(rule.default_enabled) for rule in _all_rules()}
        return render.format_github(report, cwd=cwd, root=root, levels=levels)
    if output_format == "gitlab":
        return render.format_gitlab(report, sources, cwd=cwd, root=root)
    if output_format == "sarif":
        from loopsafe.sarif import format_sarif

        return format_sarif(report, sources, cwd=cwd, root=root, rules=_all_rules())
    raise AssertionError(f"unhandled output format {output_format!r}")  # pragma: no cover


def _all_rules() -> list:
    from loopsafe.rules import ALL_RULES

    return list(ALL_RULES)


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
