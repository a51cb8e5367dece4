"""The one analysis entry point: source files in, frozen findings out.

`check_files` parses each file once with CPython's parser and summarises it in one
traversal (in a process pool when there are many; `loopsafe.extract` says why not LibCST),
builds the project-wide semantic model, runs the selected rules file by file (each file in
its own frame, see `ProjectModel.frame`), and turns their emissions into `Finding`s. With a
cache directory, file summaries and whole-run results are reused, a run where nothing
changed parses nothing, and a run after an edit analyses again only the files whose frame
read a changed one (`loopsafe.incremental`). Front ends (CLI, flake8 plugin, pre-commit)
call this only.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from loopsafe import ir, replay
from loopsafe.cache import Cache, file_key, run_key
from loopsafe.model import Finding, Frame, FrameResult, Options, ParseError, Report, SourceFile

if TYPE_CHECKING:  # pragma: no cover - imported where used: a warm run needs neither
    from loopsafe.rules import Rule
    from loopsafe.semantic import ProjectModel

_SNIPPET_MAX = 60
#: below this many files to parse, a process pool costs more than it saves
_POOL_MIN_FILES = 24
#: where the last run's model and states are kept instead of being freed, when the process
#: is to end after the run (`loopsafe.launch` sets a list): freeing them object by object
#: took 4 ms of the 0.26 s run after a one-file edit of a 700-file project
RETAINED: list | None = None


def selected_codes(options: Options) -> set[str]:
    """ruff-style selection: select (default: rules on by default) + extend-select - ignore.

    The longest matching prefix wins, so `--select LOOP1 --ignore LOOP105` drops LOOP105 and
    `--ignore LOOP1 --select LOOP103` keeps LOOP103.
    """
    from loopsafe.rules import ALL_RULES

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


def module_name_for(path: str, known: set[str], src_roots: Sequence[str] = (),
                    folders: dict[str, bool] | None = None) -> tuple[str, bool]:
    """Dotted module name of a file and whether it is a package `__init__`.

    The source root is the first folder above the file without an `__init__.py`
    (among the files given, or on disk), unless a configured `src` root contains it.
    `folders` remembers which folders have one, across the calls for one project's files.
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
    if folders is None:
        folders = {}

    def has_init(folder: str) -> bool:
        found = folders.get(folder)
        if found is None:
            init = os.path.join(folder, "__init__.py")
            found = init in known
            if not found:
                replay.note_exists(init)  # outside the files checked: one created there renames modules
                found = os.path.isfile(init)
            folders[folder] = found
        return found

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


def module_names(files: Sequence[SourceFile], root: str, src_roots: Sequence[str] = ()) -> dict[str, tuple[str, bool]]:
    """Each file's dotted module name and whether it is a package (`module_name_for`), the
    folders holding an `__init__.py` looked up once for the whole project."""
    abspaths = {f.path: (f.abspath or os.path.abspath(os.path.join(root, f.path))) for f in files}
    known = {os.path.normpath(p) for p in abspaths.values()}
    folders: dict[str, bool] = {}
    return {f.path: module_name_for(abspaths[f.path], known, src_roots, folders) for f in files}


@dataclass
class _Parsed:
    source: SourceFile
    ir: ir.ModuleIR


def _parse(source: SourceFile, name: str, is_package: bool) -> _Parsed | ParseError:
    summary = summarise(source, name, is_package)
    return summary if isinstance(summary, ParseError) else _Parsed(source, summary)


def summarise(source: SourceFile, name: str, is_package: bool) -> ir.ModuleIR | ParseError:
    """Parse one file and summarise it (`loopsafe.extract.summarise`); never raises for any input."""
    from loopsafe import extract

    return extract.summarise(source.text, source.path, name, is_package)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector.

    Syntax trees and summaries hold no reference cycles, so reference counting frees them;
    but building them allocates millions of objects, and each allocation burst triggers a
    collection that walks the whole heap. Measured on frigate: ast.parse 1.9 s -> 0.5 s,
    extraction 1.1 s -> 0.6 s, model and rules (over every summary) about 2x.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_Work = tuple[SourceFile, str, bool, str]  # a file, its module name, is it a package, its cache key


def _summarise_chunk(chunk: list[_Work], cache: Cache | None = None, unstored: list | None = None) -> list:
    """Summarise files, storing each summary in the cache where it is made (in the worker:
    pickling it again in the parent cost 0.4 s on frigate), or, with `unstored`, leaving
    (key, summary) there for the caller to store."""
    out = []
    with _no_cyclic_gc():
        for source, name, is_package, key in chunk:
            # another process analysing the same project (a flake8 job) may have stored it by now
            summary = _from_cache(cache, key, source.path) if cache is not None else None
            if summary is None:
                summary = summarise(source, name, is_package)
                if unstored is not None:
                    unstored.append((key, summary))
                elif cache is not None:
                    cache.store_summary(key, summary)
            out.append(summary)
    return out


def _from_cache(cache: Cache, key: str, path: str) -> ir.ModuleIR | ParseError | None:
    hit = cache.load_summary(key)
    if isinstance(hit, ParseError):
        return ParseError(path, hit.line, hit.column, hit.message)
    if isinstance(hit, ir.ModuleIR):
        # the same file may be shown under another path (another cwd)
        return hit if hit.path == path else hit._replace(path=path)
    return None


def _load_summary(cache: Cache, key: str, source: SourceFile, name: str, is_package: bool) -> ir.ModuleIR:
    """A summary the last run made of this very text: from the cache, else made again."""
    hit = _from_cache(cache, key, source.path)
    if not isinstance(hit, ir.ModuleIR):
        hit = summarise(source, name, is_package)  # the entry went missing since
        if not isinstance(hit, ir.ModuleIR):  # pragma: no cover - it parsed last time
            hit = summarise(SourceFile(source.path, "", source.abspath), name, is_package)
    return hit


def _summarise_all(work: list[_Work], jobs: int, cache: Cache | None = None, unstored: list | None = None) -> list:
    """Summaries in the order of `work`; in a process pool when it pays off (its workers
    store what they make: `unstored` is for summaries made here)."""
    if jobs <= 1 or len(work) < _POOL_MIN_FILES:
        return _summarise_chunk(work, cache, unstored)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    # interleaved chunks balance big and small files without a per-file round trip
    chunks = [work[i::jobs * 4] for i in range(jobs * 4)]
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            results = list(pool.map(functools.partial(_summarise_chunk, cache=cache), chunks))
    except (OSError, RuntimeError):
        # no processes to be had here (sandbox limits, broken pool): do it in-process
        return _summarise_chunk(work, cache)
    out: list = [None] * len(work)
    for i, chunk_results in enumerate(results):
        for j, result in enumerate(chunk_results):
            out[i + j * jobs * 4] = result
    return out


def parse_files(files: Sequence[SourceFile], options: Options, root: str = ".", *,
                cache: Cache | None = None, jobs: int = 1, lazy: dict[str, str] | None = None,
                names: dict[str, tuple[str, bool]] | None = None, keys: dict[str, str] | None = None,
                unstored: list | None = None) -> tuple[dict[str, "_Parsed"], list[ParseError]]:
    """Summarise every file once (from the cache when it has it); failures become ParseErrors.

    `lazy` (path -> file key) names files whose summary the cache has, for a run that may not
    need them all: they are loaded when the model first reads them (`semantic.Pending`).
    `names`: each file's module name and whether it is a package, and `keys` its cache key
    (`file_key`), when already known. With `unstored`, summaries made in this process are
    left there, as (key, summary), for the caller to store in the cache."""
    from loopsafe.semantic import Pending

    if names is None:
        names = module_names(files, root, options.src)
    results: dict[str, ir.ModuleIR | ParseError | Pending] = {}
    work: list[_Work] = []
    for source in files:
        name, is_package = names[source.path]
        key = ""
        if cache is not None:
            key = keys.get(source.path) if keys is not None else None
            if key is None:
                key = file_key(source.text, name, is_package)
            if lazy is not None and lazy.get(source.path) == key:
                results[source.path] = Pending(source.path, name, functools.partial(
                    _load_summary, cache, key, source, name, is_package))
                continue
            hit = _from_cache(cache, key, source.path)
            if hit is not None:
                results[source.path] = hit
                continue
        work.append((source, name, is_package, key))
    if cache is not None and len(work) > 1:
        # processes analysing one project at the same time (flake8's jobs) each start at a
        # file of their own, and find in the cache what the others have summarised by then
        start = (os.getpid() * 2654435761) % len(work)  # consecutive pids, distant starts
        work = work[start:] + work[:start]
    if work and cache is not None:
        from loopsafe import ahead

        ahead.wait_summaries()  # a helper summarising changed files at start-up may have made these
    for item, summary in zip(work, _summarise_all(work, jobs, cache, unstored)):
        results[item[0].path] = summary
    parsed: dict[str, _Parsed] = {}
    errors: list[ParseError] = []
    by_path = {f.path: f for f in files}
    for source in files:
        result = results[source.path]
        if isinstance(result, ParseError):
            errors.append(result)
        else:
            parsed[source.path] = _Parsed(by_path[source.path], result)
    return parsed, errors


def build_model(parsed: dict[str, "_Parsed"], options: Options) -> ProjectModel:
    from loopsafe.semantic import ProjectModel

    return ProjectModel([p.ir for p in parsed.values()], options)


def run_rules(parsed: dict[str, "_Parsed"], model: ProjectModel, options: Options,
              focus: Iterable[str] | None = None, *, fixes: bool = True, jobs: int = 1) -> list[Finding]:
    """Findings of the selected rules; with `focus`, only those located in these paths;
    without `fixes`, none carries its automatic fix (computing them is an eighth of the rules' time)."""
    wanted = set(focus) if focus is not None else None
    paths = [p for p in model.module_paths() if wanted is None or p in wanted]
    return merge_frames(run_frames(parsed, model, options, paths, fixes=fixes, jobs=jobs).values())


#: below this much source in the files whose frames are to be made (characters), forking
#: costs more than it saves (a fork and its results' trip back take a few milliseconds;
#: frames take about 0.3 s per million characters)
_FORK_MIN_CHARS = 100_000


def run_frames(parsed: dict[str, "_Parsed"], model: ProjectModel, options: Options, paths: Iterable[str], *,
               fixes: bool = True, jobs: int = 1) -> dict[str, FrameResult]:
    """Each file's findings, made in its own frame (`ProjectModel.frame`): with what it read.
    Frames do not depend on one another, so with `jobs` > 1 they are shared out among forked
    processes (results do not depend on the job count)."""
    paths = list(paths)
    if jobs > 1 and len(paths) > 1 and hasattr(os, "fork"):
        sizes = {path: len(parsed[path].source.text) for path in paths}
        if sum(sizes.values()) >= _FORK_MIN_CHARS:
            return _frames_forked(parsed, model, options, paths, sizes, fixes, jobs)
    return _frames(parsed, model, options, paths, fixes)


def start_frames(parsed: dict[str, "_Parsed"], model: ProjectModel, options: Options, paths: list[str], *,
                 fixes: bool = True, jobs: int = 1, then: Callable[[], object] | None = None) -> "_Child | None":
    """The frames of `paths` begun in a forked process, while this one goes on (with the
    files an edit changed, whose frames are made whatever else changed: while they are made,
    this process finds which other frames must be). `then` is done there too, after the
    frames (`_Child.done` says whether it was). None when there is no second job or no fork,
    or too little source to be worth one: `run_frames` makes them then."""
    if jobs > 1 and paths and hasattr(os, "fork") and \
            sum(len(parsed[path].source.text) for path in paths) >= _FORK_MIN_CHARS:
        return _Child.fork(parsed, model, options, paths, fixes, then)
    return None


def _frames_forked(parsed: dict[str, "_Parsed"], model: ProjectModel, options: Options, paths: list[str],
                   sizes: dict[str, int], fixes: bool, jobs: int) -> dict[str, FrameResult]:
    """`_frames`, shared between this process and `jobs` - 1 forked ones. A fork inherits the
    model (summaries, facts) as it is: nothing is pickled on the way there, and on the way
    back only the frames and the facts the child computed. Biggest files first, each to the
    least loaded process; a child that fails has its frames made here."""
    shares: list[list[str]] = [[] for _ in range(min(jobs, len(paths)))]
    loads = [0] * len(shares)
    for path in sorted(paths, key=lambda p: -sizes[p]):
        i = loads.index(min(loads))
        shares[i].append(path)
        loads[i] += sizes[path]
    children: list[_Child] = []
    mine = shares[0]
    try:
        for share in shares[1:]:
            child = _Child.fork(parsed, model, options, share, fixes)
            if child is None:  # no pipe or process to be had: made in this process
                mine = mine + share
            else:
                children.append(child)
        made = _frames(parsed, model, options, mine, fixes)
        while children:
            made.update(children[-1].collect())
            children.pop()
    finally:
        for child in children:  # this process failed: leave no child behind
            child.cancel()
    return {path: made[path] for path in paths}


class _Child:
    """Frames being made in a forked process (`_frames_forked`, `start_frames`)."""

    def __init__(self, pid: int, read_end: int, paths: list[str], model: ProjectModel,
                 made_here: Callable[[], dict[str, FrameResult]]) -> None:
        self.pid = pid
        self.read_end = read_end
        self.paths = paths
        self.model = model
        self._made_here = made_here
        #: the child did all it was given (its frames were made here otherwise)
        self.done = False

    @classmethod
    def fork(cls, parsed: dict[str, "_Parsed"], model: ProjectModel, options: Options, paths: list[str],
             fixes: bool, then: Callable[[], object] | None = None) -> "_Child | None":
        import pickle

        known = (set(model.facts), set(model.fact_reads_of), set(model.contributions), set(model.contribution_reads))
        try:
            read_end, write_end = os.pipe()
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:  # pragma: no cover - the child (coverage does not follow forks)
            os.close(read_end)
            code = 1
            try:
                frames = _frames(parsed, model, options, paths, fixes)
                if then is not None:
                    then()
                with os.fdopen(write_end, "wb") as out:
                    out.write(pickle.dumps((frames, *_computed(model, known)), protocol=pickle.HIGHEST_PROTOCOL))
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        return cls(pid, read_end, paths, model, lambda: _frames(parsed, model, options, paths, fixes))

    def collect(self) -> dict[str, FrameResult]:
        """The child's frames, with the facts it computed merged into this process's model;
        made here if the child failed."""
        import pickle

        with os.fdopen(self.read_end, "rb", closefd=False) as inp:
            data = inp.read()
        os.close(self.read_end)
        self.read_end = -1
        _, status = os.waitpid(self.pid, 0)
        self.pid = -1
        try:
            result = pickle.loads(data) if status == 0 and data else None
        except Exception:  # noqa: BLE001 - whatever the child sent, its frames are made here
            result = None
        if result is None:
            return self._made_here()
        _take_computed(self.model, *result[1:])
        self.done = True
        return result[0]

    def cancel(self) -> None:
        """Stop the child if it is still running (this process failed or was interrupted)."""
        if self.pid < 0:
            return
        with contextlib.suppress(OSError):
            if self.read_end >= 0:
                os.close(self.read_end)
            os.kill(self.pid, 9)
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)
        self.pid = -1


def _computed(model: ProjectModel, known: tuple[set, ...]) -> tuple[dict, dict, dict, dict]:
    """The facts (values and reads) and module facts' parts computed since `known` was taken,
    as far as the state of this run needs them (`incremental.analyse`): a module fact's
    combined value is not kept, and a part kept from the last run is in its state."""
    from loopsafe.semantic import MODULE_FACTS

    reuse = model.reuse
    old_reads = reuse.contribution_reads if reuse is not None else {}
    facts = {k: None if k in MODULE_FACTS else v for k, v in model.facts.items() if k not in known[0]}
    fact_reads = {k: v for k, v in model.fact_reads_of.items() if k not in known[1]}
    reads = {k: v for k, v in model.contribution_reads.items() if k not in known[3] and v is not old_reads.get(k)}
    parts = {k: model.contributions[k] for k in reads if k in model.contributions}
    return facts, fact_reads, parts, reads


def _take_computed(model: ProjectModel, facts: dict, fact_reads: dict, contributions: dict,
                   contribution_reads: dict) -> None:
    """Merge what a forked process computed (`_computed`) into this one's model (which may
    have computed some of it too: the same)."""
    from loopsafe.semantic import MODULE_FACTS

    for name, value in facts.items():
        if name in MODULE_FACTS:  # its parts are what counts (the value is not sent)
            model.module_facts_elsewhere.add(name)
        else:
            model.facts.setdefault(name, value)
    for name, meta in fact_reads.items():
        model.fact_reads_of.setdefault(name, meta)
    for key, value in contributions.items():
        model.contributions.setdefault(key, value)
    for key, meta in contribution_reads.items():
        model.contribution_reads.setdefault(key, meta)


def _frames(parsed: dict[str, "_Parsed"], model: ProjectModel, options: Options, paths: Iterable[str],
            fixes: bool) -> dict[str, FrameResult]:
    from loopsafe.rules import ALL_RULES

    codes = selected_codes(options)
    selected = [r for r in ALL_RULES if r.code in codes]
    reporter = _Reporter(parsed, model, fixes)
    out: dict[str, FrameResult] = {}
    for path in paths:
        with model.frame(path) as (reads, fact_reads):
            # rule objects are made per frame: nothing a rule keeps may outlive what it read
            found = reporter.findings([r() for r in selected], model, reads)
        out[path] = FrameResult(tuple(f for f in found if f.path == path), frozenset(reads), frozenset(fact_reads))
    return out


def merge_frames(frames: Iterable[FrameResult]) -> list[Finding]:
    out: dict[tuple, Finding] = {}
    for frame in frames:
        for f in frame.findings:
            out.setdefault((f.code, f.path, f.line, f.column, f.end_line, f.end_column), f)
    return sorted(out.values(), key=Finding.sort_key)


def check_files(files: Sequence[SourceFile], options: Options, root: str = ".", *,
                cache_dir: str | os.PathLike[str] | None = None, jobs: int | None = None,
                focus: Iterable[str] | None = None, fixes: bool = True) -> Report:
    """Analyse `files` as one project.

    `cache_dir` enables the on-disk cache; `jobs` is the number of processes used to parse
    (default: the number of CPUs). Results do not depend on either. With `focus` (paths as
    in `files`), only findings and parse errors in those files are reported, but the whole
    project is still analysed: a staged file's call into an unstaged helper is seen. Without
    `fixes`, findings carry no automatic fix (the flake8 plugin has no use for them).
    """
    focus = set(focus) if focus is not None else None
    if RETAINED:
        RETAINED.clear()  # the last run's model goes before this one's is made (a `--fix` loop)
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    cache = Cache(cache_dir) if cache_dir is not None else None
    run = None
    keys: list[tuple[str, str]] = []
    names: dict[str, tuple[str, bool]] = {}
    if cache is not None:
        names = module_names(files, root, options.src)
        keys = [(f.path, file_key(f.text, *names[f.path])) for f in files]
        if replay.recording():
            replay.note_summaries(os.fspath(cache.root), jobs,
                                  {os.path.abspath(f.abspath): (f.path, *names[f.path]) for f in files if f.abspath})
        # the options decide the rule selection; the rules themselves are in the cache's salt
        run = run_key(keys, (options, sorted(focus) if focus is not None else None, fixes))
        hit = cache.load_results(run)
        if isinstance(hit, tuple) and len(hit) == 2:
            return Report(tuple(hit[0]), tuple(hit[1]), len(files) if focus is None else len(focus))
    with _no_cyclic_gc():
        if cache is not None:
            findings, errors = _incremental(files, options, root, cache, dict(keys), names, fixes, jobs, focus)
        else:
            parsed, errors = parse_files(files, options, root, jobs=jobs)
            model = build_model(parsed, options)
            findings = run_rules(parsed, model, options, focus=focus, fixes=fixes, jobs=jobs)
            if RETAINED is not None:
                RETAINED[:] = [(parsed, model)]
    if focus is not None:
        errors = [e for e in errors if e.path in focus]
    if cache is not None and run is not None:
        cache.store_results(run, (tuple(findings), tuple(errors)))
    return Report(tuple(findings), tuple(errors), len(files) if focus is None else len(focus))


#: a focused run (pre-commit's staged files) brings the last whole-project run's state up to
#: date, rather than making only its own files' frames, when at most this many files changed
#: since (or this share of them): each changed file costs its frame and its readers' frames
_FOCUS_STATE_MAX_CHANGED = 8
_FOCUS_STATE_MAX_SHARE = 0.05


def _incremental(files: Sequence[SourceFile], options: Options, root: str, cache: Cache, keys: dict[str, str],
                 names: dict[str, tuple[str, bool]], fixes: bool, jobs: int,
                 focus: set[str] | None = None) -> tuple[list[Finding], list[ParseError]]:
    """A whole-project run that makes again only the findings the changes since the last run
    can touch (`loopsafe.incremental`), and keeps this run's state for the next. The files
    that did not change are loaded only if something reads them.

    With `focus`, only the findings in those files are wanted: the last run's state is
    brought up to date (and kept) when few files changed since and the same modules parse;
    otherwise only the focused files' frames are made, and no state is kept. Either way the
    findings are those of the focused files' frames."""
    from loopsafe import incremental

    key = incremental.state_key(list(keys), options, fixes)
    kept = incremental.load_state(cache, key)
    previous = kept.state if kept is not None else None
    if focus is not None and previous is not None:
        changed = sum(1 for path, k in keys.items() if previous.keys.get(path) != k)
        if changed > max(_FOCUS_STATE_MAX_CHANGED, _FOCUS_STATE_MAX_SHARE * len(keys)):
            previous = None
    lazy = {p: previous.keys[p] for p in previous.paths} if previous is not None else None
    # the changed files' summaries are stored by the process that makes their frames, if one does
    unstored: list = []
    parsed, errors = parse_files(files, options, root, cache=cache, jobs=jobs, lazy=lazy, names=names, keys=keys,
                                 unstored=unstored)

    def store_summaries() -> None:
        for file_key_, summary in unstored:
            cache.store_summary(file_key_, summary)

    model = build_model(parsed, options)
    if focus is not None and (previous is None or previous.paths != tuple(model.module_paths())):
        store_summaries()
        return run_rules(parsed, model, options, focus=focus, fixes=fixes, jobs=jobs), errors
    started: list = []

    def start(paths: list[str]):
        child = start_frames(parsed, model, options, paths, fixes=fixes, jobs=jobs, then=store_summaries)
        started.extend([child] if child is not None else [])
        return child

    def run(paths: list[str]) -> dict[str, FrameResult]:
        # a process started on the changed files' frames takes one of the jobs
        return run_frames(parsed, model, options, paths, fixes=fixes, jobs=jobs - len(started))

    try:
        state = incremental.analyse(model, keys, previous, run, start)
    finally:
        if not any(child.done for child in started):
            store_summaries()
    incremental.store_state(cache, key, state, kept if previous is not None else None)
    frames = state.frames.values() if focus is None else [state.frames[p] for p in state.paths if p in focus]
    if RETAINED is not None:
        RETAINED[:] = [(parsed, model, kept, state)]
    return merge_frames(frames), errors


def check_source(text: str, path: str = "<stdin>", options: Options | None = None) -> Report:
    return check_files([SourceFile(path, text)], options or Options(), root=os.path.dirname(path) or ".")


def _without_comments(text: str) -> str:
    """A multi-line expression's text without its comments (`# noqa`, notes between arguments)."""
    if "#" not in text:
        return text
    import io
    import tokenize

    lines = text.splitlines(keepends=True)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                lines[row - 1] = lines[row - 1][:col] + lines[row - 1][tok.end[1]:]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return text
    return "".join(lines)


class _Reporter:
    """Turns emissions into findings: positions come with the summaries, snippets from the text."""

    def __init__(self, parsed: dict[str, _Parsed], model: ProjectModel, fixes: bool = True) -> None:
        self.parsed = parsed
        # summaries through the model: an incremental run loads them as they are read
        self.modules = model.mods
        self.fixes = fixes
        self._lines: dict[str, list[str]] = {}
        self._sources: dict[str, object] = {}
        self._fix_cache: dict[str, dict] = {}

    def _span(self, path: str, sid: int) -> tuple[int, int, int, int]:
        span = self.modules[path].ir.spans[sid]
        return span if span is not None else (1, 1, 1, 1)

    def _code(self, path: str, sid: int) -> str:
        p = self.parsed[path]
        site = self.modules[path].ir.sites[sid]
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
            text = _without_comments("\n".join([chunk[0][col - 1:], *chunk[1:-1], chunk[-1][: end_col - 1]]))
        text = re.sub(r"\s+", " ", text).strip()
        text = re.sub(r"([(\[{]) ", r"\1", text)
        text = re.sub(r",? ([)\]}])", r"\1", text)
        return text if len(text) <= _SNIPPET_MAX else text[: _SNIPPET_MAX - 3] + "..."

    def _fix(self, code: str, message: str, path: str, sid: int, function: str, model: ProjectModel,
             kind: str = ""):
        """The finding's automatic fix, computed by the fixer registered for its code."""
        from loopsafe import fixes

        if code not in fixes.FIXERS:
            return None
        p = self.parsed[path]
        summary = self.modules[path].ir
        if summary.newer_syntax:
            return None
        span = summary.spans[sid] if sid < len(summary.spans) else None
        if span is None:
            return None
        source = self._sources.get(path)
        if source is None:
            source = self._sources[path] = fixes.Source(p.source.text)
        ctx = fixes.FixContext(code, message, function, summary, summary.sites[sid], span, source, model,
                               kind=kind, _cache=self._fix_cache.setdefault(path, {}))
        return fixes.compute_fix(ctx)

    def findings(self, rules: Iterable[Rule], model: ProjectModel, reads: set | None = None) -> list[Finding]:
        """The rules' findings; `reads` gets the files whose text or positions they show."""
        out: dict[tuple, Finding] = {}
        for rule in rules:
            for emit in rule.check(model):
                path, sid = emit.site
                if reads is not None:
                    reads.add(path)
                    reads.update(fpath for (fpath, _fsid), _func in emit.chain)
                line, col, end_line, end_col = self._span(path, sid)
                frames = []
                for (fpath, fsid), func in emit.chain:
                    frames.append(Frame(fpath, self._span(fpath, fsid)[0], ir.redefined(func), self._code(fpath, fsid)))
                short = " -> ".join([*(f.function.rpartition(".")[2] for f in frames),
                                     frames[-1].code] if frames else [])
                message = emit.message.replace("{chain}", short).replace("{code}", self._code(path, sid))
                site = self.modules[path].ir.sites[sid]
                fn = model.by_path[path].funcs.get(emit.function or site.function)
                finding = Finding(
                    code=rule.code, message=message, path=path, line=line, column=col,
                    end_line=end_line, end_column=end_col, fix_title=rule.fix_title,
                    chain=tuple(frames), function=emit.function or site.function,
                    route=model.route_of(fn) if fn is not None else "",
                    fix=self._fix(rule.code, message, path, sid, emit.function or site.function, model,
                                  emit.kind) if self.fixes else None,
                )
                out.setdefault((rule.code, path, line, col, sid), finding)
        return list(out.values())
