"""The LOOP1xx rules, proved against a real event loop.

The app in ``app/`` has one endpoint per positive and negative example of the rules, all
running the same deliberately slow SQLite query (a recursive CTE calibrated to ~200 ms) on a
real database file. This module

1. scans ``app/`` with loopsafe (``check_files``) and records, per endpoint function, whether
   loopsafe reports anything in it (``Finding.function``) - the *static verdict*;
2. drives every endpoint through ``httpx.ASGITransport`` on a live asyncio loop while a ticker
   task (``asyncio.sleep(TICK)`` in a loop) measures the worst event-loop lag - the *runtime
   verdict*;
3. asserts the two agree, endpoint by endpoint, and that the flagged set is exactly the
   hand-written positive set (so a silent engine cannot make the proof vacuous);
4. checks a second, independent oracle: blockbuster, which raises ``BlockingError`` when a
   blocking call it knows about is made on a running loop.

Thresholds (chosen for a loaded 2-core CI machine; each run is judged against *its own*
request time, measured at the same moment as the lag, so a machine that gets faster or slower
between calibration and request cannot tip the verdict):

* A flagged endpoint must stall the loop for at least ``STALL_RATIO`` (60 %) of the request's
  duration. A blocking query freezes the loop for all of its ~200 ms, so the lag is ~90 % of
  the request; 60 % leaves room for routing, JSON and scheduling delays that lengthen the
  request but not the freeze.
* A silent endpoint must stall it by less than ``SILENT_MAX`` (40 ms), or ``SILENT_RATIO`` (20 %)
  of its request when the machine is so loaded that the query itself runs slower. Its
  loop-side work is routing, dependency resolution and JSON (well under 1 ms); sqlite3 releases
  the GIL while SQLite computes, so the worker thread costs the loop only GIL hand-offs (at
  most the 5 ms switch interval each); what is left is OS scheduling latency. 40 ms is 8
  ticks, and a third of the smallest flagged stall (0.6 x 200 ms).
* The query is calibrated once per session (asserted to land in 150-250 ms) and re-tuned
  before an endpoint is driven if the machine's speed has drifted out of ``DRIFT_RANGE``.
* Each endpoint is driven ``RUNS`` times and the run with the *smallest* worst-lag counts:
  noise (GC, another process, a slow CI neighbour) can only add lag, while a blocking call
  stalls the loop on every run. So one noisy run can neither fail a silent endpoint nor
  rescue a flagged one.
"""
from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

# every dependency is in the `test` extra: a missing one must fail the run, not skip the proof
import httpx
import pytest

from loopsafe.engine import check_files
from loopsafe.model import Options, SourceFile

pytestmark = pytest.mark.runtime

HERE = Path(__file__).resolve().parent
APP_DIR = HERE / "app"

TICK = 0.005
RUNS = 3
STALL_RATIO = 0.6
SILENT_MAX = 0.040
SILENT_RATIO = 0.2
#: calibration target and the range the slow query must land in
QUERY_TARGET = 0.200
QUERY_RANGE = (0.150, 0.250)
#: before an endpoint is driven, a query time outside this range triggers a re-calibration
DRIFT_RANGE = (0.120, 0.330)
PG_DSN_ENV = "LOOPSAFE_TEST_PG_DSN"


@dataclass(frozen=True)
class Endpoint:
    name: str  # the endpoint function, as loopsafe names it in Finding.function
    url: str
    module: str  # file of app/ that defines it
    backend: str = "sqlite"  # "sqlite" or "pg"
    #: why blockbuster cannot see this endpoint's blocking call, if it cannot
    blockbuster_blind: str = ""


PSYCOPG2_BLIND = (
    "psycopg2 talks to the server through libpq's own C sockets; blockbuster only wraps Python-level "
    "socket/ssl/io/sqlite3/time/os calls, so it cannot see a libpq round trip"
)

ENDPOINTS = [
    # positive: loopsafe must flag these
    Endpoint("sqla_session_in_async", "/sqla/async-direct", "main.py"),
    Endpoint("sqlmodel_session_in_async", "/sqlmodel/async-direct", "main.py"),
    Endpoint("sqlite3_in_async", "/sqlite3/async-direct", "main.py"),
    Endpoint("sqla_helper_in_async", "/sqla/async-helper", "main.py"),
    Endpoint("sqlmodel_helper_in_async", "/sqlmodel/async-helper", "main.py"),
    Endpoint("sqlite3_helper_in_async", "/sqlite3/async-helper", "main.py"),
    Endpoint("psycopg2_in_async", "/pg/psycopg2-async", "pg.py", "pg", PSYCOPG2_BLIND),
    # negative: the same work done right
    Endpoint("sqla_session_in_def", "/sqla/def-direct", "main.py"),
    Endpoint("sqlmodel_session_in_def", "/sqlmodel/def-direct", "main.py"),
    Endpoint("sqlite3_in_def", "/sqlite3/def-direct", "main.py"),
    Endpoint("sqla_helper_in_def", "/sqla/def-helper", "main.py"),
    Endpoint("sqla_helper_in_threadpool", "/sqla/threadpool", "main.py"),
    Endpoint("sqlite3_helper_in_threadpool", "/sqlite3/threadpool", "main.py"),
    Endpoint("sqlite3_helper_to_thread", "/sqlite3/to-thread", "main.py"),
    Endpoint("aiosqlite_awaited", "/aiosqlite", "main.py"),
    Endpoint("sqla_async_session_awaited", "/sqla/async-session", "main.py"),
    Endpoint("sqlmodel_async_session_awaited", "/sqlmodel/async-session", "main.py"),
    Endpoint("psycopg2_in_def", "/pg/psycopg2-def", "pg.py", "pg"),
    Endpoint("asyncpg_awaited", "/pg/asyncpg", "pg.py", "pg"),
]
BY_NAME = {e.name: e for e in ENDPOINTS}

#: what loopsafe must report, per positive endpoint (LOOP1 family only)
EXPECTED_CODES = {
    "sqla_session_in_async": {"LOOP101", "LOOP105"},
    "sqlmodel_session_in_async": {"LOOP101", "LOOP105"},
    "sqlite3_in_async": {"LOOP101", "LOOP102", "LOOP105"},
    "sqla_helper_in_async": {"LOOP103"},  # it awaits something else, so no LOOP105
    "sqlmodel_helper_in_async": {"LOOP103", "LOOP105"},
    "sqlite3_helper_in_async": {"LOOP103", "LOOP105"},
    "psycopg2_in_async": {"LOOP101", "LOOP102", "LOOP105"},
}
EXPECTED_FLAGGED = set(EXPECTED_CODES)


# --------------------------------------------------------------------------- static verdict


@pytest.fixture(scope="module")
def static_codes() -> dict[str, set[str]]:
    """Rule codes loopsafe reports in each function of app/, keyed by Finding.function."""
    files = [
        SourceFile(f"app/{p.name}", p.read_text(encoding="utf-8"), str(p))
        for p in sorted(APP_DIR.glob("*.py"))
    ]
    report = check_files(files, Options(select=("LOOP1",)), root=str(HERE), jobs=1)
    assert report.parse_errors == ()
    found: dict[str, set[str]] = {}
    for finding in report.findings:
        found.setdefault(finding.function, set()).add(finding.code)
    return found


def test_static_verdict_is_exactly_the_positive_set(static_codes: dict[str, set[str]]) -> None:
    assert set(static_codes) == EXPECTED_FLAGGED
    assert static_codes == EXPECTED_CODES


def test_endpoint_list_matches_the_app() -> None:
    """Every route of the app is in ENDPOINTS (and vice versa), so none escapes the proof."""
    from app.main import app

    def walk(routes) -> dict[str, str]:
        found = {}
        for route in routes:
            # FastAPI >= 0.16x keeps an included router as one lazy entry; older ones copy its routes
            included = getattr(route, "original_router", None)
            if included is not None:
                found.update(walk(included.routes))
            elif getattr(route, "endpoint", None) is not None and route.endpoint.__module__.startswith("app."):
                found[route.endpoint.__name__] = route.path
        return found

    assert walk(app.routes) == {e.name: e.url for e in ENDPOINTS}
    assert EXPECTED_FLAGGED <= set(BY_NAME)


# --------------------------------------------------------------------------- database


def _set_rows(path: str, n: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT OR REPLACE INTO knob (id, n) VALUES (1, ?)", (n,))
    conn.close()


def time_query(path: str) -> float:
    """Seconds the slow query takes through sqlite3 on this machine, now."""
    from app.db import SLOW_SQL

    conn = sqlite3.connect(path)
    try:
        start = time.perf_counter()
        conn.execute(SLOW_SQL).fetchone()
        return time.perf_counter() - start
    finally:
        conn.close()


def calibrate(path: str, n: int) -> tuple[int, float, list]:
    """Tune the `knob` row so the query takes QUERY_TARGET; returns (n, seconds, history)."""
    history = []
    seconds = 0.0
    for _ in range(8):
        _set_rows(path, n)
        seconds = statistics.median(time_query(path) for _ in range(3))
        history.append((n, round(seconds * 1000)))
        if QUERY_RANGE[0] <= seconds <= QUERY_RANGE[1]:
            break
        n = max(10_000, int(n * QUERY_TARGET / seconds))
    return n, seconds, history


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory, calibration_facts: dict) -> dict:
    """A SQLite file whose `knob` row makes the slow query take ~200 ms; the app points at it."""
    import app.db

    path = str(tmp_path_factory.mktemp("runtime-db") / "app.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE knob (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    conn.commit()
    conn.close()
    n, seconds, history = calibrate(path, 1_000_000)
    assert QUERY_RANGE[0] <= seconds <= QUERY_RANGE[1], f"calibration did not converge: (n, ms) = {history}"
    pg_sleep = QUERY_TARGET
    app.db.configure(path, pg_dsn=os.environ.get(PG_DSN_ENV, ""), pg_sleep=pg_sleep)
    calibration_facts.update(n=n, query_ms=seconds * 1000, tick_ms=TICK * 1000, stall_ratio=STALL_RATIO,
                             silent_max_ms=SILENT_MAX * 1000, silent_ratio=SILENT_RATIO, recalibrations=0)
    return {"path": path, "n": n, "seconds": seconds, "pg_sleep": pg_sleep}


@pytest.fixture(scope="session")
def pg_available(database: dict) -> str:
    dsn = os.environ.get(PG_DSN_ENV, "")
    if not dsn:
        pytest.skip(f"{PG_DSN_ENV} is not set: no PostgreSQL server to run the psycopg2/asyncpg endpoints against")
    psycopg2 = pytest.importorskip("psycopg2")
    pytest.importorskip("asyncpg")
    try:
        psycopg2.connect(dsn, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server reachable at {PG_DSN_ENV}={dsn!r}: {exc}".strip())
    return dsn


@pytest.fixture
def endpoint_env(request: pytest.FixtureRequest, database: dict, calibration_facts: dict) -> dict:
    endpoint: Endpoint = request.param
    if endpoint.backend == "pg":
        request.getfixturevalue("pg_available")
        return {"count": 1, "reference": database["pg_sleep"]}
    # keep the query slow enough to tell a stall from noise if the machine's speed drifted
    reference = min(time_query(database["path"]) for _ in range(2))
    if not DRIFT_RANGE[0] <= reference <= DRIFT_RANGE[1]:
        database["n"], reference, history = calibrate(database["path"], database["n"])
        calibration_facts["recalibrations"] += 1
        assert DRIFT_RANGE[0] <= reference <= DRIFT_RANGE[1], f"re-calibration did not converge: {history}"
    return {"count": database["n"], "reference": reference}


def _endpoint_params():
    return [pytest.param(e, id=e.name) for e in ENDPOINTS]


# --------------------------------------------------------------------------- the loop


async def _worst_lag_during(make_request):
    """Run `make_request()` while a ticker measures the event loop's worst lag (seconds)."""
    done = asyncio.Event()

    async def ticker() -> float:
        worst = 0.0
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            worst = max(worst, now - last - TICK)
            last = now
        return worst

    task = asyncio.create_task(ticker())
    await asyncio.sleep(TICK * 3)  # the ticker is running before the request starts
    start = time.perf_counter()
    try:
        response = await make_request()
    finally:
        elapsed = time.perf_counter() - start
        await asyncio.sleep(TICK * 3)
        done.set()
    return response, await task, elapsed


def _client():
    from app.main import app

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60)


async def _drive(endpoint: Endpoint, expected_count: int) -> list[tuple[float, float]]:
    """(worst loop lag, request duration) of each measured run, in seconds."""
    async with _client() as client:
        # warm-up, not measured: first-use imports, statement compilation, connection setup
        warm = await client.get(endpoint.url)
        assert warm.status_code == 200, warm.text
        assert warm.json() == {"count": expected_count}
        runs = []
        for _ in range(RUNS):
            response, lag, elapsed = await _worst_lag_during(lambda: client.get(endpoint.url))
            assert response.status_code == 200, response.text
            assert response.json() == {"count": expected_count}  # the slow work really ran
            runs.append((lag, elapsed))
    return runs


@pytest.mark.parametrize("endpoint_env", _endpoint_params(), indirect=True)
def test_runtime_stall_matches_static_verdict(
    endpoint_env: dict, request: pytest.FixtureRequest, static_codes: dict, stall_table: dict
) -> None:
    endpoint: Endpoint = request.node.callspec.params["endpoint_env"]
    expected_static = bool(static_codes.get(endpoint.name))
    runs = asyncio.run(_drive(endpoint, endpoint_env["count"]))
    lag, elapsed = min(runs)  # the least noisy run
    row = stall_table.setdefault(endpoint.name, {})
    row.update(flagged=expected_static, codes=sorted(static_codes.get(endpoint.name, ())),
               stall_ms=lag * 1000, runs_ms=[x * 1000 for x, _ in runs], request_ms=elapsed * 1000,
               query_ms=endpoint_env["reference"] * 1000)

    stalls = lag >= STALL_RATIO * elapsed
    quiet = lag < max(SILENT_MAX, SILENT_RATIO * elapsed)
    detail = (f"{endpoint.name}: worst loop lag / request time per run "
              f"{[f'{x * 1000:.1f}/{t * 1000:.0f} ms' for x, t in runs]}, "
              f"loopsafe {'flags' if expected_static else 'is silent on'} it")
    assert stalls or quiet, f"ambiguous: lag neither >= {STALL_RATIO:.0%} of the request nor < " \
                            f"max({SILENT_MAX * 1000:.0f} ms, {SILENT_RATIO:.0%} of it): {detail}"
    assert stalls == expected_static, detail


# --------------------------------------------------------------------------- blockbuster


@pytest.mark.parametrize("endpoint_env", _endpoint_params(), indirect=True)
def test_blockbuster_agrees(endpoint_env: dict, request: pytest.FixtureRequest, static_codes: dict,
                            stall_table: dict) -> None:
    """Second oracle: blockbuster raises BlockingError exactly for the endpoints loopsafe flags.

    What it can see (blockbuster 1.5): it patches sqlite3.Connection.execute/executemany/
    executescript/commit/rollback and sqlite3.Cursor.execute*/fetch* (with forbiddenfruit, so
    SQLAlchemy's pysqlite dialect and SQLModel are caught through the cursor it drives), plus
    Python-level socket/ssl/file/time/os calls. It raises only when the call is made on the
    thread of a running loop, which is exactly "on the event loop": calls in FastAPI's
    threadpool, asyncio.to_thread or aiosqlite's own thread are not reported.

    What it cannot see: `sqlite3.connect` (not wrapped: opening the file happens in C),
    iterating a sqlite3 cursor (`__next__` is not wrapped), and C drivers that do their own
    socket I/O, like psycopg2/libpq (see test_blockbuster_blind_spots_are_real).
    """
    from blockbuster import BlockingError, blockbuster_ctx

    endpoint: Endpoint = request.node.callspec.params["endpoint_env"]
    flagged = bool(static_codes.get(endpoint.name))
    row = stall_table.setdefault(endpoint.name, {})
    row.setdefault("flagged", flagged)
    row.setdefault("codes", sorted(static_codes.get(endpoint.name, ())))
    if flagged and endpoint.blockbuster_blind:
        row["blockbuster"] = "blind"
        pytest.skip(f"blockbuster cannot see {endpoint.name}: {endpoint.blockbuster_blind}")

    async def drive() -> None:
        async with _client() as client:
            response = await client.get(endpoint.url)
            assert response.status_code == 200, response.text
            assert response.json() == {"count": endpoint_env["count"]}

    # warm up without the oracle: first-use imports read files on the loop, which is not the point
    asyncio.run(drive())
    with blockbuster_ctx(["app"]):
        if flagged:
            with pytest.raises(BlockingError) as raised:
                asyncio.run(drive())
            row["blockbuster"] = f"BlockingError: {str(raised.value).removeprefix('Blocking call to ')}"
        else:
            asyncio.run(drive())
            row["blockbuster"] = "no error"


def test_blockbuster_blind_spots_are_real(tmp_path: Path) -> None:
    """The blind spots documented above, shown: blockbuster lets these through on a running
    loop, while loopsafe reports both connects (LOOP102)."""
    from blockbuster import BlockingError, blockbuster_ctx

    db = str(tmp_path / "x.db")
    # a cursor whose rows are computed as it is iterated (each step runs SQLite's VM)
    cursor = sqlite3.connect(db).execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT x FROM c")

    async def connect_sqlite() -> None:
        sqlite3.connect(db).close()

    async def iterate_cursor() -> int:
        return sum(1 for _ in cursor)

    async def connect_libpq() -> str:
        psycopg2 = pytest.importorskip("psycopg2")
        try:
            # nothing listens on port 1 of loopback: libpq fails at once, in C
            psycopg2.connect("host=127.0.0.1 port=1 connect_timeout=1").close()
        except psycopg2.OperationalError as exc:
            return type(exc).__name__
        return "connected"

    with blockbuster_ctx():
        asyncio.run(connect_sqlite())  # no BlockingError: sqlite3.connect is not wrapped
        assert asyncio.run(iterate_cursor()) == 100_000  # nor is Cursor.__next__
        try:
            outcome = asyncio.run(connect_libpq())
        except BlockingError as exc:  # pragma: no cover - would mean blockbuster learned libpq
            pytest.fail(f"blockbuster now sees libpq: {exc}")
    assert outcome == "OperationalError"  # libpq's own socket connect, invisible to blockbuster

    report = check_files(
        [SourceFile("blind.py", (
            "import sqlite3\nimport psycopg2\n\n"
            "async def a():\n    sqlite3.connect('x.db')\n\n"
            "async def b():\n    psycopg2.connect('dbname=x')\n"
        ))],
        Options(select=("LOOP1",)), root=str(tmp_path), jobs=1,
    )
    assert [(f.function, f.code) for f in report.findings] == [("a", "LOOP102"), ("b", "LOOP102")]
