"""The `loopsafe` command's entry point: replay an unchanged run, else run the CLI.

Kept apart from :mod:`loopsafe.cli` so that a run :mod:`loopsafe.replay` can answer does
not import click, the configuration reader or the engine (their imports alone cost more
than the whole replay).
"""
from __future__ import annotations

import gc
import os
import sys


def run() -> None:
    """`main`, then exit without tearing the interpreter down.

    Freeing a whole project's summaries and model object by object at exit took 0.9 s of
    a 4.2 s run on frigate; the process is about to end, so the operating system reclaims
    it instead (as mypy does). Output is flushed first; the cache is already written.
    """
    # the collector would walk every summary again and again to find no cycles in them
    gc.disable()
    from loopsafe import replay

    argv = sys.argv[1:]
    enabled = argv[:1] == ["check"] and not os.environ.get("LOOPSAFE_NO_REPLAY")
    try:
        code = replay.replay(argv) if enabled else None
    except BrokenPipeError:  # `loopsafe check | head`
        code = 1
    if code is None:
        if enabled:  # files changed since the last identical run: have them summarised meanwhile
            from loopsafe import ahead

            ahead.start(replay.stale())
        if argv[:1] == ["check"]:
            from loopsafe import engine

            engine.RETAINED = []  # a run's model is left to the operating system, as all the rest
        recorder = replay.start(argv) if enabled else None
        code = _main()
        if recorder is not None:
            recorder.finish(code)
        if enabled:
            ahead.wait()  # a run that never needed its summaries leaves no helper behind
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a closed pipe (`loopsafe check | head`)
        code = code or 1
    os._exit(code)


def _main() -> int:
    from loopsafe.cli import main

    try:
        main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0
