"""The one hash loopsafe keys its cache and records with (BLAKE2b), without `hashlib`:
importing `hashlib` loads OpenSSL's bindings (2-3 ms of every run) for a hash that CPython
also builds in."""
from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without its own BLAKE2
    from hashlib import blake2b

__all__ = ["blake2b"]
