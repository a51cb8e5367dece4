"""Summaries made ahead: the files an edit changed are summarised by a second process while
this one starts up.

A run that cannot be replayed (`loopsafe.replay`) because files changed since the last
identical run still has that run's record: which files it summarised, under which module
names, in which cache, with how many jobs. While this process imports the analysis, reads
the configuration and the project and loads the last state (0.13 s of the 0.30 s run after
a one-file edit of a 700-file project), a forked helper finds the changed files among
those, summarises them and stores their summaries (and the `# noqa` map of a file that has
directives) in the cache. `loopsafe.engine.parse_files` waits for the helper before it
summarises anything itself, and finds them there.

A summary depends on nothing but the file's text, its module name, whether it is a package
and loopsafe's own code (not on the caller's stack: `extract.summarise`), and its cache key
is made of all four: one made ahead is the one this process would make. A guess that no
longer holds (the file changed again, a module was renamed) leaves an entry nothing reads.

Only with a fork, a last run that used more than one job, and at most `_MAX_FILES` changed
files: more are left to the run (to its process pool from `engine._POOL_MIN_FILES` files).
The helper lets go of the standard streams and its exit status is not looked at. A run
that ends without having needed the summaries (its results were cached) still waits for
the helper, so that none outlives it.
"""
from __future__ import annotations

import os
from typing import Callable

#: more changed files than this are left to the run itself
_MAX_FILES = 8

#: the helper's process id while it may be running, and the pipe it closes once the
#: summaries are stored (in this process only)
_PID: int | None = None
_READY: int | None = None


def start(stale: tuple | None) -> None:
    """Begin summarising the files changed since the record `stale` (`replay.stale()`) was
    made, in a forked helper; nothing when there is no second job or nothing to go on."""
    global _PID, _READY
    if stale is None or _PID is not None or not hasattr(os, "fork"):
        return
    inputs, hints = stale
    if not hints or hints[1] < 2:
        return
    try:
        ready, done = os.pipe()
    except OSError:
        return
    try:
        pid = os.fork()
    except OSError:
        os.close(ready)
        os.close(done)
        return
    if pid == 0:  # pragma: no cover - the helper (coverage does not follow forks)
        try:
            os.close(ready)
            # holding the run's standard streams would keep a reader of its output waiting
            # for their end after the run is over, if it ever ended before the helper
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            summarise_changed(inputs, hints, then=lambda: os.close(done))
        finally:
            os._exit(0)
    os.close(done)
    _PID, _READY = pid, ready


def wait_summaries() -> None:
    """Wait until the helper has stored its summaries (or is gone)."""
    global _READY
    if _READY is None:
        return
    ready, _READY = _READY, None
    try:
        os.read(ready, 1)  # the helper writes nothing: this returns when it closes its end
    except OSError:
        pass
    finally:
        os.close(ready)


def wait() -> None:
    """Wait for the helper to be done."""
    global _PID
    wait_summaries()
    if _PID is None:
        return
    pid, _PID = _PID, None
    try:
        os.waitpid(pid, 0)
    except (ChildProcessError, InterruptedError):
        pass


def _forget() -> None:
    global _PID, _READY
    if _READY is not None:  # a process forked from this one has no helper of its own
        try:
            os.close(_READY)
        except OSError:
            pass
    _PID = _READY = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


def changed_files(inputs: list, modules: dict) -> list[str] | None:
    """The summarised files of a record whose stat changed since, in the record's order;
    None when more than `_MAX_FILES` did."""
    from loopsafe.replay import _stat

    changed = []
    for kind, path, sig, _content, racy in inputs:
        if kind == "f" and path in modules and (racy or _stat(path) != sig):
            changed.append(path)
            if len(changed) > _MAX_FILES:
                return None
    return changed


def summarise_changed(inputs: list, hints: tuple, then: Callable[[], None] | None = None) -> list[str]:
    """Summarise into the cache the files of `inputs` (a record's) that changed since, under
    the module names `hints` gives (`replay.note_summaries`), then (after `then`) make the
    `# noqa` maps of those with directives. Returns the files summarised; any failure leaves
    a file to the run that needs it."""
    cache_root, _jobs, modules = hints
    changed = changed_files(inputs, modules) or []
    texts = []
    done = []
    if changed:
        # what summarising needs, and no more: the run's own process is importing the rest
        from loopsafe.cache import Cache, file_key
        from loopsafe.decoding import DecodeError, decode_source
        from loopsafe.extract import summarise

        cache = Cache(cache_root)
        for path in changed:
            shown, module, is_package = modules[path]
            try:
                with open(path, "rb") as f:
                    text = decode_source(f.read())
            except (OSError, DecodeError):
                continue
            texts.append(text)
            key = file_key(text, module, is_package)
            if not cache.has_summary(key):
                cache.store_summary(key, summarise(text, shown, module, is_package))
                done.append(path)
    if then is not None:
        then()
    if texts:
        from loopsafe.suppression import FileNoqa

        for text in texts:
            FileNoqa(text, cache).prepare()
    return done
