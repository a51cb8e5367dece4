"""flake8 adapter (entry point `LOO`): loopsafe's findings for the file flake8 is checking.

Cross-module findings need the whole project (found by walking up to `pyproject.toml`/
`.git`), so it is analysed once and every file looks its findings up. flake8 hands its
options to plugins in its main process before it starts its jobs (`-j`): the project of the
paths it was given is analysed there, on every core, and the jobs, forked from that process,
start with the findings in memory. A file of another project (or jobs that were spawned,
not forked) analyses its project on first sight, through the on-disk cache the CLI uses
(`.loopsafe_cache/` in the project), so a project already checked is not parsed again. The file's own text always comes from `lines`
(flake8 may be reading stdin), never from disk.

Importing this module is cheap: the analysis is imported only when a file is actually
checked, and it never imports libcst, click or rich.
"""
from __future__ import annotations

import gc
import os
import sys
from typing import Any, ClassVar, Iterator

from loopsafe import __version__

_PROJECTS: dict[tuple, "_Project"] = {}


class _Project:
    def __init__(self, root: str, config: str | None) -> None:
        from pathlib import Path

        from loopsafe import config as cfg
        from loopsafe import discovery

        settings = cfg.resolve_settings([root], cwd=Path(root),
                                        config_file=Path(config) if config else None)
        self.options = settings.options
        self.settings = settings
        found = discovery.discover([root], settings.discovery, cwd=root)
        sources, _errors = discovery.read_sources(found.files, root)
        # key files by absolute path: flake8 names files relative to its own cwd
        self.sources = {os.path.abspath(s.abspath or os.path.join(root, s.path)): s for s in sources}
        self.root = root
        self.files = [type(s)(path=p, text=s.text, abspath=p) for p, s in self.sources.items()]
        # the CLI's cache: a project checked by `loopsafe check` (or by another flake8 job) is
        # not parsed again
        self.cache_dir = os.path.join(str(settings.project_root), ".loopsafe_cache")
        self._by_path: dict[str, list] | None = None

    def _all(self, jobs: int | None = 1) -> dict[str, list]:
        """Every finding of the project, by path: computed once, then each file is a lookup
        (one analysis per flake8 process instead of one rules pass per file). `jobs`: the
        processes to parse with (None: every core; in a flake8 job, its own process only)."""
        if self._by_path is None:
            from loopsafe import engine

            # in the project's order, as the CLI has it: the order decides name clashes, and
            # the state of the last run serves only the same order (parsing starts at a file
            # of its own per process: engine.parse_files)
            report = engine.check_files(self.files, self.options, self.root, cache_dir=self.cache_dir, jobs=jobs,
                                        fixes=False)
            self._by_path = {}
            for finding in report.findings:
                self._by_path.setdefault(finding.path, []).append(finding)
        return self._by_path

    def findings(self, path: str, text: str) -> list:
        from loopsafe import engine
        from loopsafe.model import SourceFile

        known = self.sources.get(path)
        if known is not None and known.text == text:
            findings = self._all().get(path, [])
        else:
            # an edited or unknown file (stdin, outside the project): re-analyse with it swapped
            # in, in its place (the order decides name clashes, and the last run's state serves
            # only the same order)
            edited = SourceFile(path, text, path)
            files = [edited if f.path == path else f for f in self.files]
            if known is None:
                files.append(edited)
            findings = list(engine.check_files(files, self.options, self.root, cache_dir=self.cache_dir, jobs=1,
                                               focus=[path], fixes=False).findings)
        # [tool.loopsafe] per-file-ignores, as the CLI applies them
        return [f for f in findings if not self.settings.is_ignored(f, path)]


def _project_root(filename: str) -> str:
    directory = os.path.dirname(os.path.abspath(filename))
    probe = directory
    while True:
        if os.path.exists(os.path.join(probe, "pyproject.toml")) or os.path.exists(os.path.join(probe, ".git")):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return directory
        probe = parent


class Plugin:
    name = "loopsafe"
    version = __version__
    config: ClassVar[str | None] = None

    def __init__(self, tree: Any, filename: str, lines: list[str]) -> None:
        self.filename = filename
        self.lines = lines

    @classmethod
    def add_options(cls, manager: Any) -> None:
        manager.add_option(
            "--loopsafe-config", default=None, parse_from_config=True,
            help="pyproject.toml whose [tool.loopsafe] table configures loopsafe (default: the nearest one)",
        )

    @classmethod
    def parse_options(cls, *args: Any) -> None:
        # flake8 passes (option_manager, options, filenames), or (options) to older plugins
        options = args[1] if len(args) >= 2 else args[0]
        cls.config = getattr(options, "loopsafe_config", None)
        cls._prepare(list(getattr(options, "filenames", None) or ["."]))

    @classmethod
    def _prepare(cls, filenames: list[str]) -> None:
        """Analyse the project of the paths flake8 was given, before it forks its jobs.

        flake8 runs every installed plugin whatever `--select` says, so this is work its
        jobs would otherwise each do (parsing one process each, and every job repeating the
        rules): here parsing uses every core and the rules run once. Best effort: a failure
        is left for the first file to report.
        """
        if not filenames or any(f in ("-", "stdin") or not os.path.exists(f) for f in filenames):
            return
        roots = {_project_root(os.path.join(os.path.abspath(f), "-") if os.path.isdir(f) else f) for f in filenames}
        if len(roots) != 1:
            return
        try:
            _project(roots.pop(), cls.config)._all(jobs=None)
        except Exception:  # noqa: BLE001 - never make flake8 fail before it has started
            return
        # what the analysis leaves alive is large (gc.collect() took 0.35 s on frigate, to
        # free nothing): frozen, the jobs forked next do not walk it in each of their collections
        gc.freeze()

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        try:
            results = list(self._findings())
        except Exception as exc:  # noqa: BLE001 - a raising plugin makes flake8 print nothing at all
            print(f"loopsafe: internal error on {self.filename}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        for finding in results:
            yield finding.line, finding.column - 1, f"{finding.code} {finding.message}", type(self)

    def _findings(self) -> list:
        if self.filename in ("-", "stdin"):
            path = os.path.abspath("stdin.py")
        else:
            path = os.path.abspath(self.filename)
        return _project(_project_root(path), self.config).findings(path, "".join(self.lines))


def _project(root: str, config: str | None) -> _Project:
    key = (root, config)
    project = _PROJECTS.get(key)
    if project is None:
        project = _PROJECTS[key] = _Project(root, config)
    return project
