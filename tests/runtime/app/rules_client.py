"""In-process clients for an ASGI app: the `app=` shortcut (LOOP501) and the transport it
became. tests/runtime/test_rules_runtime.py builds both against `app.rules`."""
from __future__ import annotations

import httpx


def client_with_app_argument(asgi_app) -> httpx.AsyncClient:
    return httpx.AsyncClient(app=asgi_app, base_url="http://t")


def client_with_transport(asgi_app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi_app), base_url="http://t")
