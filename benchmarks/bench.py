#!/usr/bin/env python3
"""Time loopsafe against the field's reference points, side by side, in one run.

    python benchmarks/bench.py --corpus PATH [--corpus PATH ...] [--runs 5] [--write docs/performance.md]
    python benchmarks/bench.py --mirror blakeblackshear/frigate@e3fa701893 ...

A corpus is a folder of Python files (`--corpus`), or a repository already fetched into
../.mirror (`--mirror owner/name[@commit]`, exported with git). For each corpus it runs,
each in a fresh subprocess, and reports the median wall time and the peak memory:

- loopsafe cold (empty cache), warm (nothing changed: the last run is replayed), warm with
  replay off (`LOOPSAFE_NO_REPLAY=1`: cached results after discovery, reading and hashing),
  one file changed (a function appended to the largest file, so its summary really changes),
  and the same edit of the module the most other files import (every file that imports it
  is analysed again: the worst case of re-analysis at module granularity);
- a single-process `libcst.parse_module` over every file (the floor of a naive design);
- `flake8 --select ASYNC` (flake8-async) and `ruff check --select ASYNC`, when installed;
- flake8 with the loopsafe plugin alone against flake8 with its own checks alone
  (pycodestyle and pyflakes); each flake8 run sees only the plugins it times, because
  flake8 runs every installed plugin whatever `--select` says;
- hydroid, when installed.

loopsafe's bytecode is compiled first, as an installed copy has it.

It prints the ratios the speed targets are stated in (cold / parse-only, warm / cold,
one-changed / cold) and, with `--scale`, loopsafe cold on 1x, 2x and 4x copies of the
corpus to show linear growth. With `--write FILE` it writes the tables as Markdown with
the machine and versions. It is a script, not a test: CI only runs it on a tiny corpus.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PARSE_ONLY = """
import sys, pathlib, libcst
for p in sys.argv[1:]:
    try:
        libcst.parse_module(pathlib.Path(p).read_text(encoding="utf-8", errors="replace"))
    except Exception:
        pass
"""

# flake8 runs every installed plugin whatever --select says; to time one plugin set, the
# other distributions' plugins are hidden from its plugin finder
FLAKE8_ONLY = """
import sys
from flake8.plugins import finder
keep = set(sys.argv[1].split(","))
found = finder._find_importlib_plugins
finder._find_importlib_plugins = lambda: (p for p in found()
                                          if p.entry_point.group != "flake8.extension" or p.package in keep)
from flake8.main.cli import main
sys.exit(main(sys.argv[2:]))
"""

NOTES_MARKER = "<!-- notes: written by hand, kept when the tables above are regenerated -->"


@dataclass
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)
    peak_mib: float = 0.0
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float, int]:
    """Wall time, peak RSS (MiB) of the process tree's largest process, exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        proc.stderr.close()
    return elapsed, usage.ru_maxrss / 1024, proc.returncode


def python_files(root: Path) -> list[Path]:
    skip = {".git", "node_modules", "__pycache__", ".loopsafe_cache", "venv", ".venv"}
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        out.extend(Path(dirpath, f) for f in filenames if f.endswith(".py"))
    return sorted(out)


def export_mirror(spec: str, dest: Path) -> Path:
    """Export the Python and config files of a mirrored repository at a commit.

    Mirrors may lack large blobs (images, media), so `git archive` can fail: files are read
    one by one through `git cat-file --batch` and missing ones skipped."""
    repo, _, commit = spec.partition("@")
    mirror = REPO.parent / ".mirror" / repo.replace("/", "+") / "repo"
    if not mirror.exists():
        raise SystemExit(f"no mirror of {repo} at {mirror}: fetch github:{repo} first")
    target = dest / repo.replace("/", "+")
    target.mkdir(parents=True, exist_ok=True)
    git = ["git", "--git-dir", str(mirror)]
    listing = subprocess.run(git + ["ls-tree", "-r", "-z", commit or "HEAD"], capture_output=True, check=True).stdout
    wanted = []
    for entry in listing.split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        if not entry or not path.decode().endswith((".py", ".toml", ".cfg", ".txt")):
            continue
        mode, kind, sha = meta.split()
        if kind == b"blob" and mode != b"120000":
            wanted.append((sha.decode(), path.decode()))
    batch = subprocess.run(git + ["cat-file", "--batch"], input="".join(f"{sha}\n" for sha, _ in wanted).encode(),
                           capture_output=True, check=True).stdout
    pos = 0
    for _, path in wanted:
        header_end = batch.index(b"\n", pos)
        header = batch[pos:header_end].split()
        pos = header_end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_bytes(batch[pos:pos + size])
        pos += size + 1
    return target


def copies(src: Path, factor: int, dest: Path) -> Path:
    out = dest / f"x{factor}"
    if out.exists():
        return out
    for i in range(factor):
        shutil.copytree(src, out / f"copy{i}", ignore=shutil.ignore_patterns(".loopsafe_cache", ".git"))
    return out


def loopsafe_cmd(corpus: Path, cache: Path, jobs: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "loopsafe", "check", str(corpus), "--output-format", "concise", "--quiet",
           "--exit-zero", "--cache-dir", str(cache)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    return cmd


def measure_corpus(corpus: Path, runs: int, jobs: int | None, work: Path) -> list[Timing]:
    files = python_files(corpus)
    timings: list[Timing] = []

    cold, warm, changed = Timing("loopsafe cold"), Timing("loopsafe warm (nothing changed)"), \
        Timing("loopsafe one file changed")
    # the warm path a replay cannot serve (the run differs from the last one in its arguments,
    # environment or terminal): cached results, after discovery, reading and hashing
    unreplayed = Timing("loopsafe warm, replay off (cached results)")
    victim = max(files, key=lambda p: p.stat().st_size)
    original = victim.read_text(encoding="utf-8", errors="replace")
    hub = most_imported(corpus, files)
    hub_changed = Timing(f"loopsafe one file changed: the most imported module ({hub[1]} importers)") if hub else None
    for i in range(runs):
        cache = work / f"cache-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        for timing in (cold, warm, unreplayed):
            env = {"LOOPSAFE_NO_REPLAY": "1"} if timing is unreplayed else None
            seconds, peak, _ = run(loopsafe_cmd(corpus, cache, jobs), corpus, env)
            timing.seconds.append(seconds)
            timing.peak_mib = max(timing.peak_mib, peak)
        try:
            # a code change, not a comment: the edited file's summary really differs
            victim.write_text(original + f"\n\ndef _benchmark_edit_{i}(rows):\n    return [r for r in rows if r]\n",
                              encoding="utf-8")
            seconds, peak, _ = run(loopsafe_cmd(corpus, cache, jobs), corpus)
        finally:
            victim.write_text(original, encoding="utf-8")
        changed.seconds.append(seconds)
        changed.peak_mib = max(changed.peak_mib, peak)
        if hub is not None and hub_changed is not None:
            run(loopsafe_cmd(corpus, cache, jobs), corpus)  # back to the unedited project's state
            seconds, peak = _edit_run(hub[0], i, loopsafe_cmd(corpus, cache, jobs), corpus)
            hub_changed.seconds.append(seconds)
            hub_changed.peak_mib = max(hub_changed.peak_mib, peak)
        shutil.rmtree(cache, ignore_errors=True)
    timings += [cold, warm, unreplayed, changed, *([hub_changed] if hub_changed is not None else [])]

    parse = Timing("libcst.parse_module, one process")
    listing = work / "files.txt"
    listing.write_text("\n".join(map(str, files)))
    for _ in range(runs):
        seconds, peak, _ = run([sys.executable, "-c", PARSE_ONLY, *map(str, files)], corpus)
        parse.seconds.append(seconds)
        parse.peak_mib = max(parse.peak_mib, peak)
    timings.append(parse)

    def flake8(plugins: str, *args: str) -> list[str]:
        return [sys.executable, "-c", FLAKE8_ONLY, plugins, "--exit-zero", *args, str(corpus)]

    if _has_module("flake8_async"):
        timings.append(_repeat("flake8-async alone (flake8 --select ASYNC)", flake8("flake8-async", "--select", "ASYNC"),
                               corpus, runs))
    if _has_module("flake8"):
        # the plugin target: no slower than flake8's own checks (pycodestyle + pyflakes)
        timings.append(_repeat("flake8 core checks alone (pycodestyle + pyflakes)", flake8("pycodestyle,pyflakes"), corpus, runs))
        # cold, as on a CI machine: the plugin shares the CLI's cache in the project
        timings.append(_repeat("flake8 with the loopsafe plugin alone (cold)", flake8("loopsafe", "--select", "LOO"),
                               corpus, runs, fresh=corpus / ".loopsafe_cache"))
        timings.append(_repeat("flake8 with the loopsafe plugin alone (warm)", flake8("loopsafe", "--select", "LOO"),
                               corpus, runs))
        shutil.rmtree(corpus / ".loopsafe_cache", ignore_errors=True)
    ruff = _tool("ruff")
    if ruff:
        timings.append(_repeat("ruff check --select ASYNC (cold)",
                               [ruff, "check", "--select", "ASYNC", "--exit-zero", "--no-cache", str(corpus)],
                               corpus, runs))
    hydroid = _tool("hydroid")
    if hydroid:
        timings.append(_repeat("hydroid", [hydroid, "check", str(corpus)], corpus, runs))
    return timings


def _edit_run(path: Path, i: int, cmd: list[str], corpus: Path) -> tuple[float, float]:
    """The run after appending a function to `path` (restored after): wall time, peak memory."""
    original = path.read_text(encoding="utf-8", errors="replace")
    try:
        path.write_text(original + f"\n\ndef _benchmark_edit_{i}(rows):\n    return [r for r in rows if r]\n",
                        encoding="utf-8")
        seconds, peak, _ = run(cmd, corpus)
    finally:
        path.write_text(original, encoding="utf-8")
    return seconds, peak


def most_imported(corpus: Path, files: list[Path]) -> tuple[Path, int] | None:
    """The file the most other files import (by a dotted suffix of its path, as loopsafe
    resolves imports in src/ layouts), and how many do; None when no file imports another."""
    import ast

    by_name: dict[str, list[Path]] = {}
    for path in files:
        parts = list(path.relative_to(corpus).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        for start in range(len(parts)):
            by_name.setdefault(".".join(parts[start:]), []).append(path)
    importers: dict[Path, set[Path]] = {}
    for path in files:
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        package = list(path.relative_to(corpus).parent.parts)
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package[: len(package) - node.level + 1] if node.level > 1 else package
                    base = ".".join([*up, *([base] if base else [])])
                names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for name in names:
                targets = by_name.get(name, ())
                if len(targets) == 1 and targets[0] != path:  # an ambiguous suffix names no file
                    importers.setdefault(targets[0], set()).add(path)
    if not importers:
        return None
    target, sources = max(importers.items(), key=lambda item: (len(item[1]), str(item[0])))
    return target, len(sources)


def _repeat(name: str, cmd: list[str], corpus: Path, runs: int, fresh: Path | None = None) -> Timing:
    """`runs` timings of cmd; with `fresh`, that folder (a cache) is removed before each."""
    t = Timing(name)
    for _ in range(runs):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        seconds, peak, _ = run(cmd, corpus)
        t.seconds.append(seconds)
        t.peak_mib = max(t.peak_mib, peak)
    return t


def _tool(name: str) -> str | None:
    """A command installed beside this Python (its venv) or on PATH."""
    return shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def line_count(corpus: Path) -> int:
    total = 0
    for p in python_files(corpus):
        with open(p, "rb") as f:
            total += sum(1 for _ in f)
    return total


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("loopsafe", "libcst", "flake8", "flake8-async", "ruff"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}){mem}"


def report(name: str, corpus: Path, timings: list[Timing], scale: list[tuple[int, Timing]]) -> str:
    by = {t.name: t for t in timings}
    files, lines = len(python_files(corpus)), line_count(corpus)
    out = [f"### {name}", "", f"{files} files, {lines:,} lines.", "",
           "| what | median wall time | peak memory |", "|---|---|---|"]
    for t in timings:
        out.append(f"| {t.name} | {t.median:.2f} s | {t.peak_mib:.0f} MiB |")
    cold, warm, changed = by["loopsafe cold"], by["loopsafe warm (nothing changed)"], by["loopsafe one file changed"]
    parse = by["libcst.parse_module, one process"]
    out += ["", "| ratio | measured | target |", "|---|---|---|",
            f"| cold / single-process LibCST parse | {cold.median / parse.median:.2f} | at most 0.65 |",
            f"| warm / cold | {warm.median / cold.median:.3f} | at most 0.05 |",
            f"| warm with replay off / cold | {by['loopsafe warm, replay off (cached results)'].median / cold.median:.3f}"
            " | (none: the warm path a replay cannot serve) |",
            f"| one file changed / cold | {changed.median / cold.median:.3f} | at most 0.15 |",
            *(f"| the most imported module changed / cold | {t.median / cold.median:.3f} | (none: the worst "
              "case of re-analysis, shown for what it is) |"
              for t in timings if t.name.startswith("loopsafe one file changed: ")),
            f"| peak memory (cold) | {cold.peak_mib:.0f} MiB | at most 500 MiB |"]
    plugin = by.get("flake8 with the loopsafe plugin alone (cold)")
    core = by.get("flake8 core checks alone (pycodestyle + pyflakes)")
    if plugin is not None and core is not None:
        out.append(f"| flake8 plugin (cold) / flake8 core checks | {plugin.median / core.median:.2f} | at most 1.00 |")
    if scale:
        out += ["", "| copies | files | loopsafe cold | per 1x | peak memory |", "|---|---|---|---|---|"]
        base = scale[0][1].median
        for factor, t in scale:
            out.append(f"| {factor}x | {len(python_files(corpus)) * factor} | {t.median:.2f} s | "
                       f"{t.median / base / factor:.2f} | {t.peak_mib:.0f} MiB |")
    return "\n".join(out) + "\n"


def compile_bytecode() -> None:
    """Compile loopsafe's bytecode before timing anything, as `pip install` does: from a source
    checkout under PYTHONDONTWRITEBYTECODE, every run would compile the package again (about
    50 ms a run here), which no installed copy does."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("loopsafe")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", action="append", default=[], help="a folder of Python files")
    ap.add_argument("--mirror", action="append", default=[], help="owner/name[@commit] fetched into ../.mirror")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=None, help="loopsafe --jobs (default: loopsafe's default)")
    ap.add_argument("--scale", action="store_true", help="also time 1x, 2x, 4x copies of each corpus")
    ap.add_argument("--write", metavar="FILE", help="write the Markdown report to FILE")
    args = ap.parse_args(argv)

    compile_bytecode()
    sections = []
    with tempfile.TemporaryDirectory(prefix="loopsafe-bench-") as tmp:
        work = Path(tmp)
        corpora = [(Path(c).resolve().name, Path(c).resolve()) for c in args.corpus]
        for spec in args.mirror:
            corpora.append((spec, export_mirror(spec, work / "corpora")))
        if not corpora:
            ap.error("give at least one --corpus or --mirror")
        for name, path in corpora:
            # a private copy: the one-file-changed step edits a file
            copy = work / "copy" / name.replace("/", "+")
            shutil.copytree(path, copy, ignore=shutil.ignore_patterns(".loopsafe_cache", ".git"))
            print(f"== {name}: {len(python_files(copy))} files", flush=True)
            timings = measure_corpus(copy, args.runs, args.jobs, work)
            scale: list[tuple[int, Timing]] = []
            if args.scale:
                for factor in (1, 2, 4):
                    scaled = copies(copy, factor, work / "scaled" / name.replace("/", "+"))
                    t = Timing(f"{factor}x")
                    for i in range(max(1, args.runs // 2)):
                        cache = work / f"scale-cache-{factor}-{i}"
                        seconds, peak, _ = run(loopsafe_cmd(scaled, cache, args.jobs), scaled)
                        shutil.rmtree(cache, ignore_errors=True)
                        t.seconds.append(seconds)
                        t.peak_mib = max(t.peak_mib, peak)
                    scale.append((factor, t))
            section = report(name, copy, timings, scale)
            print(section, flush=True)
            sections.append(section)
    if args.write:
        vers = ", ".join(f"{k} {v}" for k, v in versions().items())
        text = ("# Performance\n\nGenerated by `benchmarks/bench.py` (medians over "
                f"{args.runs} runs, each a fresh process).\n\nMachine: {machine()}.\n\nVersions: {vers}.\n\n"
                + "\n".join(sections))
        target = Path(args.write)
        # hand-written notes below the marker survive a regeneration
        old = target.read_text() if target.exists() else ""
        notes = old[old.index(NOTES_MARKER):] if NOTES_MARKER in old else NOTES_MARKER + "\n"
        target.write_text(text + "\n" + notes)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
