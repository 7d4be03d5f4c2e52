"""Upload caps are enforced while the body streams in, before form parsing stores it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
from fastapi.testclient import TestClient

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.session import Database

CAP = 2_000  # bytes of dump allowed; the middleware adds 64 KiB for multipart framing
FRAMING = 64 << 10


def _client(settings: Settings, db: Database) -> TestClient:
    small = settings.model_copy(update={"attribution_upload_max_bytes": CAP})
    return TestClient(create_app(small, db), base_url="http://testserver")


def test_announced_length_over_the_cap_is_refused_unread(
    settings: Settings, db: Database, admin_headers: dict[str, str]
) -> None:
    body = b"x" * (CAP + FRAMING + 1)
    with _client(settings, db) as client:
        response = client.post(
            "/admin/attributions",
            content=body,
            headers={**admin_headers, "Content-Type": "multipart/form-data; boundary=b"},
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payload_too_large"


def test_a_chunked_body_is_stopped_once_it_passes_the_cap(
    settings: Settings, db: Database, admin_headers: dict[str, str]
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked, 800 KiB, far over the cap
        for _ in range(200):
            yield b"y" * 4096

    with _client(settings, db) as client:
        response = client.post(
            "/admin/attributions",
            content=chunks(),
            headers={**admin_headers, "Content-Type": "multipart/form-data; boundary=b"},
        )
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


def test_other_routes_and_small_uploads_are_untouched(
    settings: Settings, db: Database, admin_headers: dict[str, str]
) -> None:
    with _client(settings, db) as client:
        small = {"file": ("x.csv", b"\x00\x01\x02\xff" * 100, "text/csv")}
        response = client.post("/admin/attributions", files=small, headers=admin_headers)
        assert response.status_code == 422 and response.json()["code"] == "dump_binary"  # reached the reader
        assert client.get("/healthz").status_code == 200


JSON_CAP = 1_000  # request_body_max_bytes for the tests below: every route without a cap of its own


def _small_bodies(settings: Settings, db: Database) -> TestClient:
    small = settings.model_copy(update={"request_body_max_bytes": JSON_CAP})
    return TestClient(create_app(small, db), base_url="http://testserver")


def test_every_route_has_the_default_cap(
    settings: Settings, db: Database, admin_headers: dict[str, str]
) -> None:
    """JSON routes, the OAuth form posts and unknown paths alike: over the default cap is 413, unread."""
    big = b"a" * (JSON_CAP + 1)
    with _small_bodies(settings, db) as client:
        for path, headers in [
            ("/admin/incidents", {**admin_headers, "Content-Type": "application/json"}),
            ("/oauth/token", {"Content-Type": "application/x-www-form-urlencoded"}),
            ("/oauth/login", {"Content-Type": "application/x-www-form-urlencoded"}),
            ("/no/such/route", {"Content-Type": "application/json"}),
        ]:
            response = client.post(path, content=big, headers=headers)
            assert response.status_code == 413, path
            assert response.json() == {
                "type": "https://appwarden.dev/problems/payload_too_large",
                "title": "Payload too large",
                "status": 413,
                "detail": f"the request body is over the {JSON_CAP:,}-byte limit",
                "code": "payload_too_large",
                "instance": path,
                "limit": JSON_CAP,
            }


def test_a_chunked_json_body_is_stopped_at_the_default_cap(
    settings: Settings, db: Database, admin_headers: dict[str, str]
) -> None:
    """Driven over ASGI (the test client buffers a whole body first): count the chunks the server pulls."""
    app = create_app(settings.model_copy(update={"request_body_max_bytes": JSON_CAP}), db)
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # 200 chunks of 512 bytes, no Content-Length
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b" " * 512, "more_body": pulled < 200}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in admin_headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/admin/incidents",
        "raw_path": b"/admin/incidents",
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    anyio.run(app, scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [413]  # one answer: the app's own is dropped
    assert pulled == JSON_CAP // 512 + 1  # stopped at the chunk that passed the cap, not drained


def test_the_upload_keeps_its_own_larger_cap(
    settings: Settings, db: Database, admin_headers: dict[str, str]
) -> None:
    with _small_bodies(settings, db) as client:
        small = {"file": ("x.csv", b"\x00\x01\x02\xff" * 1000, "text/csv")}  # 4 KB: over the JSON cap
        response = client.post("/admin/attributions", files=small, headers=admin_headers)
        assert response.status_code == 422 and response.json()["code"] == "dump_binary"  # reached the reader
        ok = client.post("/admin/incidents", json={"app": "nope", "reason": "r"}, headers=admin_headers)
        assert ok.status_code != 413  # a small JSON body passes
