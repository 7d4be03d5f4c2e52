"""Upload caps are enforced while the body streams in, before form parsing stores it."""

from __future__ import annotations

from collections.abc import Iterator

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
