"""The one analysis entry point: source files in, frozen findings out.

`check_files` parses each file once with LibCST, extracts its summary in one traversal,
builds the project-wide semantic model, runs the selected rules, and turns their emissions
into `Finding`s, computing positions only for files that report something. Front ends
(CLI, flake8 plugin, pre-commit) call this and nothing else.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import libcst as cst

from loopsafe import extract as ex
from loopsafe import ir
from loopsafe.model import Finding, Frame, Options, ParseError, Report, SourceFile
from loopsafe.rules import ALL_RULES, Rule
from loopsafe.semantic import ProjectModel

_SNIPPET_MAX = 60


def selected_codes(options: Options) -> set[str]:
    """ruff-style selection: select (default: rules on by default) + extend-select - ignore.

    The longest matching prefix wins, so `--select LOOP1 --ignore LOOP105` drops LOOP105 and
    `--ignore LOOP1 --select LOOP103` keeps LOOP103.
    """
    codes = [r.code for r in ALL_RULES]
    chosen: set[str] = set()
    for code in codes:
        rule = next(r for r in ALL_RULES if r.code == code)
        best_len, on = -1, False
        if not options.select:
            best_len, on = 0, rule.default_enabled
        for prefix in (*options.select, *options.extend_select):
            if code.startswith(prefix.upper()) and len(prefix) > best_len:
                best_len, on = len(prefix), True
        for prefix in options.ignore:
            if code.startswith(prefix.upper()) and len(prefix) >= best_len:
                best_len, on = len(prefix), False
        if on:
            chosen.add(code)
    return chosen


def module_name_for(path: str, known: set[str], src_roots: Sequence[str] = ()) -> tuple[str, bool]:
    """Dotted module name of a file and whether it is a package `__init__`.

    The source root is the first folder above the file without an `__init__.py`
    (among the files given, or on disk), unless a configured `src` root contains it.
    """
    norm = os.path.normpath(path)
    directory, filename = os.path.split(norm)
    stem = filename[:-3] if filename.endswith(".py") else filename
    is_package = stem == "__init__"
    for root in sorted(src_roots, key=len, reverse=True):
        root = os.path.normpath(root)
        if norm.startswith(root + os.sep):
            rel = os.path.relpath(norm, root)[:-3].split(os.sep)
            if is_package:
                rel = rel[:-1]
            return ".".join(rel), is_package
    parts = [] if is_package else [stem]

    def has_init(folder: str) -> bool:
        init = os.path.join(folder, "__init__.py")
        return init in known or os.path.isfile(init)

    while directory:
        # a folder without __init__.py inside a regular package is a namespace
        # subpackage, still part of the dotted name
        if not has_init(directory) and not has_init(os.path.dirname(directory)):
            break
        directory, pkg = os.path.split(directory)
        if not pkg:
            break
        parts.insert(0, pkg)
    return ".".join(parts) or stem, is_package


@dataclass
class _Parsed:
    source: SourceFile
    ir: ir.ModuleIR


def _parse(source: SourceFile, name: str, is_package: bool) -> _Parsed | ParseError:
    try:
        module = cst.parse_module(source.text)
    except cst.ParserSyntaxError as err:
        return _syntax_error(source, err)
    except RecursionError:
        return ParseError(source.path, 1, 1, "too deeply nested to analyse")
    except Exception as err:  # noqa: BLE001 - the parser must never take the run down
        return ParseError(source.path, 1, 1, f"could not parse: {type(err).__name__}: {err}")
    try:
        summary = ex.extract(module, source.text, source.path, name, is_package)
    except RecursionError:
        return ParseError(source.path, 1, 1, "too deeply nested to analyse")
    return _Parsed(source, summary)


def parse_files(files: Sequence[SourceFile], options: Options, root: str = ".") -> tuple[dict[str, "_Parsed"], list[ParseError]]:
    """Parse and summarise every file once; files that fail become ParseErrors."""
    abspaths = {f.path: (f.abspath or os.path.abspath(os.path.join(root, f.path))) for f in files}
    known = {os.path.normpath(p) for p in abspaths.values()}
    parsed: dict[str, _Parsed] = {}
    errors: list[ParseError] = []
    for source in files:
        name, is_package = module_name_for(abspaths[source.path], known, options.src)
        result = _parse(source, name, is_package)
        if isinstance(result, ParseError):
            errors.append(result)
        else:
            parsed[source.path] = result
    return parsed, errors


def build_model(parsed: dict[str, "_Parsed"], options: Options) -> ProjectModel:
    return ProjectModel([p.ir for p in parsed.values()], options)


def run_rules(parsed: dict[str, "_Parsed"], model: ProjectModel, options: Options,
              focus: Iterable[str] | None = None) -> list[Finding]:
    """Findings of the selected rules; with `focus`, only those located in these paths."""
    codes = selected_codes(options)
    rules: list[Rule] = [r() for r in ALL_RULES if r.code in codes]
    model.focus = set(focus) if focus is not None else None
    try:
        return sorted(_Reporter(parsed).findings(rules, model), key=Finding.sort_key)
    finally:
        model.focus = None


def _syntax_error(source: SourceFile, err: "cst.ParserSyntaxError") -> ParseError:
    """Report a syntax error where CPython would: LibCST's native parser positions are coarse."""
    try:
        compile(source.text, source.path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return ParseError(source.path, exc.lineno or 1, exc.offset or 1, f"SyntaxError: {exc.msg}")
    except (ValueError, RecursionError, MemoryError):
        pass
    return ParseError(source.path, err.raw_line, err.raw_column + 1, f"SyntaxError: {err.message}")


def check_files(files: Sequence[SourceFile], options: Options, root: str = ".") -> Report:
    parsed, errors = parse_files(files, options, root)
    model = build_model(parsed, options)
    findings = run_rules(parsed, model, options)
    return Report(tuple(findings), tuple(errors), len(files))


def check_source(text: str, path: str = "<stdin>", options: Options | None = None) -> Report:
    return check_files([SourceFile(path, text)], options or Options(), root=os.path.dirname(path) or ".")


class _Reporter:
    """Turns emissions into findings: positions come with the summaries, snippets from the text."""

    def __init__(self, parsed: dict[str, _Parsed]) -> None:
        self.parsed = parsed
        self._lines: dict[str, list[str]] = {}

    def _span(self, path: str, sid: int) -> tuple[int, int, int, int]:
        span = self.parsed[path].ir.spans[sid]
        return span if span is not None else (1, 1, 1, 1)

    def _code(self, path: str, sid: int) -> str:
        p = self.parsed[path]
        site = p.ir.sites[sid]
        if site.kind == ir.DEF:
            return "def " + site.function.rpartition(".")[2]
        lines = self._lines.get(path)
        if lines is None:
            lines = self._lines[path] = re.split(r"\r\n|\r|\n", p.source.text.lstrip("\ufeff"))
        line, col, end_line, end_col = self._span(path, sid)
        chunk = lines[line - 1: end_line]
        if not chunk:
            return ""
        if len(chunk) == 1:
            text = chunk[0][col - 1: end_col - 1]
        else:
            text = "\n".join([chunk[0][col - 1:], *chunk[1:-1], chunk[-1][: end_col - 1]])
        text = re.sub(r"\s+", " ", text).strip()
        text = re.sub(r"([(\[{]) ", r"\1", text)
        text = re.sub(r",? ([)\]}])", r"\1", text)
        return text if len(text) <= _SNIPPET_MAX else text[: _SNIPPET_MAX - 3] + "..."

    def findings(self, rules: Iterable[Rule], model: ProjectModel) -> list[Finding]:
        out: dict[tuple, Finding] = {}
        for rule in rules:
            for emit in rule.check(model):
                path, sid = emit.site
                line, col, end_line, end_col = self._span(path, sid)
                frames = []
                for (fpath, fsid), func in emit.chain:
                    frames.append(Frame(fpath, self._span(fpath, fsid)[0], func, self._code(fpath, fsid)))
                short = " -> ".join([*(f.function.rpartition(".")[2] for f in frames),
                                     frames[-1].code] if frames else [])
                message = emit.message.replace("{chain}", short).replace("{code}", self._code(path, sid))
                site = self.parsed[path].ir.sites[sid]
                fn = model.by_path[path].funcs.get(emit.function or site.function)
                finding = Finding(
                    code=rule.code, message=message, path=path, line=line, column=col,
                    end_line=end_line, end_column=end_col, fix_title=rule.fix_title,
                    chain=tuple(frames), function=emit.function or site.function,
                    route=model.route_of(fn) if fn is not None else "",
                )
                out.setdefault((rule.code, path, line, col, sid), finding)
        return list(out.values())
