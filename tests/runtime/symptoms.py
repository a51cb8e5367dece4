"""Observing a rule's runtime symptom where more than one proof needs the same care."""
from __future__ import annotations

import gc
import warnings
from typing import Callable

import pytest
from sqlalchemy.exc import MissingGreenlet, StatementError


def missing_greenlet(run: Callable[[], object]) -> tuple[str, list[str]]:
    """Run `run`, which must fail with MissingGreenlet; return how it was raised and the
    "never awaited" warnings the failed load left behind."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises((MissingGreenlet, StatementError)) as raised:
            run()
        # SQLAlchemy may wrap it in a StatementError carrying the lazy load's SELECT, which an
        # `except MissingGreenlet` does not catch
        failure = raised.value
        cause = failure if isinstance(failure, MissingGreenlet) else failure.orig
        assert isinstance(cause, MissingGreenlet), repr(failure)
        raised_as = type(failure).__name__ if cause is failure else f"{type(failure).__name__}({type(cause).__name__})"
        # the failed load leaves a driver coroutine in a cycle with the traceback: collect it
        # now, so its "never awaited" warning is not blamed on whatever runs next
        del raised, failure, cause
        gc.collect()
    return raised_as, sorted({str(w.message) for w in caught if "was never awaited" in str(w.message)})
