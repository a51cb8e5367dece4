"""The rule registry. Adding a rule = a class in a family module + its line here."""
from __future__ import annotations

from loopsafe.rules.base import Emit, Rule
from loopsafe.rules.loop1 import AsyncEndpointWithoutAwait, BlockingCallViaHelper, SyncDbCallInAsync, SyncDbConnectInAsync
from loopsafe.rules.loop2 import (
    DependencyCleanupNotInFinally,
    DependencyReturnsSession,
    SessionInBackgroundTask,
    SessionNotClosed,
    SessionUsedConcurrently,
    SharedSession,
)
from loopsafe.rules.loop3 import (
    AsyncDbCallNotAwaited,
    AsyncSessionExpiresOnCommit,
    LazyLoadInAsync,
    PlainMethodAwaited,
    SyncDriverUrlInAsyncEngine,
)
from loopsafe.rules.loop4 import CommitInLoop, EnginePerRequest, QueryInLoop, QueryWithoutTimeout
from loopsafe.rules.loop5 import AsyncClientAppArgument

ALL_RULES: list[type[Rule]] = sorted(
    [SyncDbCallInAsync, SyncDbConnectInAsync, BlockingCallViaHelper, AsyncEndpointWithoutAwait,
     SessionNotClosed, DependencyReturnsSession, DependencyCleanupNotInFinally, SharedSession,
     SessionInBackgroundTask, SessionUsedConcurrently,
     AsyncDbCallNotAwaited, AsyncSessionExpiresOnCommit, SyncDriverUrlInAsyncEngine, LazyLoadInAsync,
     PlainMethodAwaited,
     QueryInLoop, CommitInLoop, EnginePerRequest, QueryWithoutTimeout,
     AsyncClientAppArgument],
    key=lambda r: r.code,
)


def rule_by_code(code: str) -> type[Rule] | None:
    for rule in ALL_RULES:
        if rule.code == code.upper():
            return rule
    return None


__all__ = ["ALL_RULES", "Emit", "Rule", "rule_by_code"]
