"""The live part of the demo: the real server on an ephemeral port, apps installed through the real
OAuth flow, and each app's traffic through the real data API, so the ledger fills as in production."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import numpy as np
import orjson
import uvicorn
from fastapi import FastAPI

from appwarden.demo.catalog import AppSpec
from appwarden.demo.oauth_client import connect_app, refresh
from appwarden.errors import AppwardenError

PAGE = 500  # the largest page the data API serves: what a syncing app asks for
LOOKUPS = 5  # single-customer reads per connection after the sync (a support screen, a receipt)
DETOKENIZE = 3  # tokens an app with token-mode fields reveals per connection (a call-back, a mailing)
TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class DemoError(AppwardenError):
    """The demo could not complete (the server refused a step it should have allowed)."""

    status = 500
    code = "demo_failed"
    title = "Demo failed"


class LiveServer:
    """uvicorn serving ``app`` in a background thread on an ephemeral port of 127.0.0.1.

    The socket is bound and listening before the thread starts, so clients may connect at once:
    the kernel queues them until the event loop accepts (no polling for readiness)."""

    def __init__(self, app: FastAPI) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="demo-server", daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join()
        self._sock.close()


@contextmanager
def client(base_url: str) -> Iterator[httpx.Client]:
    """An HTTP client of its own (each owner's login needs its own cookie jar)."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT) as http:
        yield http


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    client_secret: str


def install(
    base_url: str, spec: AppSpec, creds: Credentials, *, username: str, password: str, untick: tuple[str, ...]
) -> dict[str, Any]:
    """The owner logs in and consents (unticking ``untick``); the app exchanges the code for tokens."""
    with client(base_url) as http:
        try:
            return connect_app(
                http,
                client_id=creds.client_id,
                client_secret=creds.client_secret,
                redirect_uri=spec.redirect_uri,
                username=username,
                password=password,
                scope=" ".join(spec.scopes),
                untick=untick,
            )
        except Exception as exc:
            raise DemoError(f"installing {spec.slug} for {username} failed: {exc}") from exc


class AppSession:
    """An app's backend calling the data API: its bearer token, refreshed (and so rotated) when the
    server says it expired, as a well-behaved client does."""

    def __init__(self, http: httpx.Client, creds: Credentials, token: dict[str, Any]) -> None:
        self.http, self.creds, self.token = http, creds, token
        self.requests = 0

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One call, refreshing the token first if it expired; any answer is returned as it is."""
        response = self._send(method, url, **kwargs)
        if response.status_code == 401 and _problem_code(response) == "token_expired":
            self.token = refresh(
                self.http,
                client_id=self.creds.client_id,
                client_secret=self.creds.client_secret,
                refresh_token=str(self.token["refresh_token"]),
            )
            response = self._send(method, url, **kwargs)
        return response

    def call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self.request(method, url, **kwargs)
        if response.status_code != 200:
            raise DemoError(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
        body: dict[str, Any] = orjson.loads(response.content)
        return body

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.requests += 1
        headers = {"Authorization": f"Bearer {self.token['access_token']}"}
        return self.http.request(method, url, headers=headers, **kwargs)


def _problem_code(response: httpx.Response) -> str | None:
    try:
        return str(orjson.loads(response.content).get("code"))
    except (orjson.JSONDecodeError, AttributeError):
        return None


def drive(
    base_url: str,
    spec: AppSpec,
    creds: Credentials,
    token: dict[str, Any],
    *,
    seed: int,
    advance: Callable[[int], None],
    keep: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """One connected app's traffic: a full sync of the customer list (every page), a few single
    lookups, a few detokenize calls for token-mode fields, and its transaction pages. Returns the
    number of requests made; ``advance`` is told of every customer or transaction row received, ``keep``
    of the token in use at the end (a refresh rotated it: the next caller must use this one)."""
    granted = set(str(token.get("scope", "")).split())
    rng = np.random.default_rng(seed)
    try:
        with client(base_url) as http:
            app = AppSession(http, creds, token)
            if any(s.startswith("customers.") for s in granted):
                token_fields = [
                    s[len("customers.") : -len(":token")] for s in granted if s.endswith(":token")
                ]
                ids, tokens = _sync_customers(app, token_fields, advance)
                for i in rng.choice(len(ids), size=min(LOOKUPS, len(ids)), replace=False).tolist():
                    app.call("GET", f"/v1/customers/{ids[i]}")
                if spec.detokenize and tokens:
                    purpose = "会員からの問い合わせへの折り返し連絡"  # a call-back to a member who asked
                    app.call(
                        "POST", "/v1/detokenize", json={"purpose": purpose, "tokens": tokens[:DETOKENIZE]}
                    )
            if "transactions:read" in granted and spec.transaction_pages:
                _pages(app, "/v1/transactions", spec.transaction_pages, lambda rows: advance(len(rows)))
            if keep is not None:
                keep(app.token)
            return app.requests
    except httpx.HTTPError as exc:
        raise DemoError(f"{spec.slug}: {type(exc).__name__}: {exc}") from exc


def _sync_customers(
    app: AppSession, token_fields: list[str], advance: Callable[[int], None]
) -> tuple[list[str], list[str]]:
    """Every page of /v1/customers; the app's ids for the people, and a few tokens to reveal later."""
    ids: list[str] = []
    tokens: list[str] = []

    def take(rows: list[dict[str, Any]]) -> None:
        ids.extend(r["id"] for r in rows)
        if len(tokens) < DETOKENIZE:
            tokens.extend(r[f] for r in rows for f in token_fields if r.get(f))
        advance(len(rows))

    _pages(app, "/v1/customers", -1, take)
    return ids, tokens


def _pages(app: AppSession, url: str, limit: int, take: Callable[[list[dict[str, Any]]], None]) -> None:
    """Follow ``next_cursor`` through ``limit`` pages (-1: all of them), handing each page's rows on."""
    cursor: str | None = None
    pages = 0
    while limit < 0 or pages < limit:
        params: dict[str, Any] = {"limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        page = app.call("GET", url, params=params)
        pages += 1
        take(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return


def run_parallel(jobs: list[Callable[[], Any]], workers: int) -> list[Any]:
    """Run ``jobs`` on ``workers`` threads, results in order; the first failure is raised."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="demo-app") as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]
