"""LOOP5xx: tests."""
from __future__ import annotations

from typing import Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.flow import FunctionFacts, facts_of
from loopsafe.rules.base import Emit, Rule
from loopsafe.semantic import ProjectModel


class AsyncClientAppArgument(Rule):
    """
    ## What it does
    Reports `httpx.AsyncClient(app=app, ...)` and `httpx.Client(app=app, ...)`: the `app=`
    shortcut for calling an ASGI/WSGI application in-process, usually in a FastAPI test.

    ## Why is this bad?
    httpx deprecated the `app=` argument in 0.27 and removed it in 0.28: with a current
    httpx the client raises `TypeError: AsyncClient.__init__() got an unexpected keyword
    argument 'app'`, and every test using it fails on upgrade (before that, each run prints
    a `DeprecationWarning`).

    ## Example
    ```python
    async def test_root():
        async with AsyncClient(app=app, base_url="http://test") as client:
            response = await client.get("/")
    ```

    ## Use instead
    ```python
    from httpx import ASGITransport, AsyncClient

    async def test_root():
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            response = await client.get("/")
    ```
    (`httpx.Client(transport=WSGITransport(app=wsgi_app))` for a WSGI app; for a FastAPI
    app in sync tests, `fastapi.testclient.TestClient(app)`.)

    ## Fix safety
    The fix replaces `app=app` with `transport=ASGITransport(app=app)` (`WSGITransport` for
    `httpx.Client`), reusing an existing import of the transport, writing
    `httpx.ASGITransport` when the module uses `import httpx`, and otherwise adding
    `from httpx import ASGITransport`. It is safe: this is what `app=` did before httpx 0.28.
    It is not offered when the call already passes `transport=` or `**kwargs`.

    ## Known limitations
    Only calls that name httpx's classes (directly, through imports or aliases) are
    checked; `**kwargs` carrying `app` are not seen.

    ## References
    - [FastAPI: Async Tests](https://fastapi.tiangolo.com/advanced/async-tests/)
    - [HTTPX: Transports, ASGI](https://www.python-httpx.org/advanced/transports/#asgi-transport)
    - [HTTPX 0.28.0 changelog](https://github.com/encode/httpx/blob/master/CHANGELOG.md#0280-28th-november-2024)
    """

    code = "LOOP501"
    name = "asyncclient-app-argument"
    summary = "`httpx.AsyncClient(app=...)`, removed in httpx 0.28"
    fix_title = "Use `AsyncClient(transport=ASGITransport(app=app), base_url=...)`"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for path, mod in model.focused_modules():
            facts: dict[str, FunctionFacts] = {}
            for site in mod.ir.sites:
                call = site.expr
                if site.kind != ir.CALL or not isinstance(call, ir.Call):
                    continue
                if not any(k == "app" for k, _ in call.kwargs):
                    continue
                ff = facts.get(site.function)
                if ff is None:
                    ff = facts[site.function] = facts_of(model, mod, mod.funcs.get(site.function))
                client = cat.HTTPX_CLIENTS.get(ff.external(call.func))
                if client is None:
                    continue
                transport = "ASGITransport" if client == "AsyncClient" else "WSGITransport"
                yield Emit(path, (path, site.id), f"`{{code}}` passes `app=` to httpx `{client}`, which httpx 0.28 "
                           f"removed: use `{client}(transport={transport}(app=...), base_url=...)`",
                           function=site.function)
