"""Logs: no secret in any log line, a request id on every answer, and nothing personal in the request log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import Request
from fastapi.testclient import TestClient

from appwarden import logs
from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.session import Database
from conftest import ADMIN_KEY

MASTER_KEY = "test-secret-key-not-for-production"  # what the settings fixture exports


def test_settings_never_print_their_secrets(settings: Settings) -> None:
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert ADMIN_KEY not in text
        assert MASTER_KEY not in text
    assert settings.admin_key == ADMIN_KEY  # the value is still there for whoever asks by name


def test_internal_error_logs_no_secret_and_answers_a_generic_problem(
    settings: Settings, db: Database, capfd: pytest.CaptureFixture[str]
) -> None:
    structlog.reset_defaults()  # as in any process that builds the app: the factory configures logs
    app = create_app(settings, db)

    @app.get("/boom")
    def boom(request: Request) -> None:
        # A frame whose locals hold every secret: a traceback with locals would print them.
        current = request.app.state.settings
        master = current.master_key
        admin = current.admin_key
        raise RuntimeError(f"failed after reading {len(master) + len(admin)} bytes of keys")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "RuntimeError" in text  # the error was logged, with its traceback ...
    assert "failed after reading" in text
    for secret in (ADMIN_KEY, MASTER_KEY):  # ... and without the secrets that were in scope
        assert secret not in text
        assert secret not in response.text


def test_every_answer_carries_a_request_id_and_one_log_line(
    client: TestClient, capfd: pytest.CaptureFixture[str]
) -> None:
    logs.configure(json=True)
    response = client.get("/v1/customers/cus_AbCdEf0123456789", params={"phone": "09012345678"})
    assert response.status_code == 401
    request_id = response.headers["x-request-id"]
    assert "x-worker-pid" not in response.headers
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    (line,) = [entry for entry in lines if entry.get("event") == "request"]
    assert line["request_id"] == request_id
    assert line["route"] == "/v1/customers/{customer_id}"
    assert line["status"] == 401
    assert "cus_AbCdEf0123456789" not in json.dumps(lines)  # no concrete path, no query string
    assert "09012345678" not in json.dumps(lines)


def test_the_request_id_is_always_ours_and_a_clients_is_only_logged_beside_it(
    client: TestClient, capfd: pytest.CaptureFixture[str]
) -> None:
    logs.configure(json=True)
    first = client.get("/healthz", headers={"X-Request-Id": "edge-1234abcd"})
    second = client.get("/healthz", headers={"X-Request-Id": 'a" injected=1'})
    ours = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(rid.startswith("req_") and len(rid) == 28 for rid in ours)  # never the client's
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry.get("event") == "request"]
    assert [entry["request_id"] for entry in requests] == ours
    assert requests[0]["upstream_id"] == "edge-1234abcd"  # a proxy's id still follows the request
    assert "upstream_id" not in requests[1]  # a hostile one is dropped


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_advertises_the_port_it_binds_and_logs_requests(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPWARDEN_")}
    env |= {"APPWARDEN_DATA_DIR": str(tmp_path), "APPWARDEN_ADMIN_API_KEY": ADMIN_KEY}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "appwarden"), "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    try:
        seen: list[str] = []
        for line in server.stderr:  # uvicorn's start-up line says the socket is bound
            seen.append(line)
            if "Uvicorn running on" in line:
                break
        assert any(f"appwarden listening on http://127.0.0.1:{port}" in line for line in seen)
        metadata = httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server")
        assert metadata.json()["issuer"] == f"http://127.0.0.1:{port}"
        assert "server" not in metadata.headers
        assert "x-worker-pid" not in metadata.headers
        request_id = metadata.headers["x-request-id"]
        probe = httpx.get(f"http://127.0.0.1:{port}/v1/customers/cus_AbCdEf0123456789?phone=09012345678")
        assert probe.status_code == 401
    finally:
        server.terminate()
        rest = server.communicate(timeout=30)[1]
    request_lines = [json.loads(line) for line in rest.splitlines() if '"event": "request"' in line]
    assert [entry["request_id"] for entry in request_lines][:1] == [request_id]
    assert [entry["route"] for entry in request_lines] == [
        "/.well-known/oauth-authorization-server",
        "/v1/customers/{customer_id}",
    ]
    everything = "".join(seen) + rest
    assert "cus_AbCdEf0123456789" not in everything  # uvicorn's access line (path + query) is gone
    assert "09012345678" not in everything
    assert ADMIN_KEY not in everything
