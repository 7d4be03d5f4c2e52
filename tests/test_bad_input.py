"""No 5xx from bad input (issue 9, point 2): each case here was a 500 (or a 503) once, found by hand or by
``scripts/fuzz_api.py``; through the real ASGI app, which re-raises any unhandled error in the test."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi.testclient import TestClient

from appwarden.web.problems import PROBLEM_JSON
from conftest import World

OAUTH_ENDPOINTS = ("/oauth/token", "/oauth/revoke", "/oauth/introspect")


def problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
@pytest.mark.parametrize("credentials", [b"\xff\xfe:\xff", b"client:\xc3(", b"\xed\xa0\x80:secret"])
def test_non_utf8_basic_credentials_are_invalid_client(
    client: TestClient, world: World, path: str, credentials: bytes
) -> None:
    header = "Basic " + base64.b64encode(credentials).decode()
    form = {"grant_type": "refresh_token", "refresh_token": "x", "token": "x"}
    response = client.post(path, data=form, headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_utf8_basic_credentials_still_authenticate(client: TestClient, world: World) -> None:
    _, client_id, secret = world.apps["invoice-plus"]
    header = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = client.post("/oauth/introspect", data={"token": "nope"}, headers={"Authorization": header})
    assert response.status_code == 200 and response.json() == {"active": False}


def test_lone_surrogate_in_detokenize_is_422(client: TestClient, world: World) -> None:
    token = world.connect("booking-go", world.tenants[0])["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in (
        b'{"tokens": ["\\ud800"], "purpose": "support"}',
        b'{"tokens": ["tok_x"], "purpose": "\\udfff"}',
        b'{"tokens": ["tok_x"], "purpose": "support", "\\ud800": 1}',
    ):
        response = client.post("/v1/detokenize", content=body, headers=headers)
        assert "lone surrogate" in problem(response, 422, "invalid_parameter")["detail"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/admin/apps",
            b'{"slug": "ok-app", "name": "\\ud800", "redirect_uris": ["https://x.example/cb"], '
            b'"scopes": ["customers.name:raw"]}',
        ),
        ("/admin/incidents", b'{"apps": ["\\ud800"], "reason": "test"}'),
    ],
)
def test_lone_surrogate_in_an_admin_body_is_422(
    client: TestClient, world: World, admin_headers: dict[str, str], path: str, body: bytes
) -> None:
    """The same where the string would reach the database (SQLite cannot encode it: a 500). Pydantic
    refuses surrogates only in length-constrained strings; these fields are plain."""
    response = client.post(path, content=body, headers=admin_headers | {"Content-Type": "application/json"})
    problem(response, 422, "invalid_parameter")


@pytest.mark.parametrize("after", ["99999999999999999999999", str(2**63), str(2**31), "-1"])
def test_out_of_range_ledger_after_is_422(
    client: TestClient, admin_headers: dict[str, str], after: str
) -> None:
    response = client.get(f"/admin/ledger/entries?after={after}", headers=admin_headers)
    problem(response, 422, "invalid_parameter")


def test_largest_ledger_after_is_an_empty_page(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get(f"/admin/ledger/entries?after={2**31 - 1}", headers=admin_headers)
    assert response.status_code == 200 and response.json()["data"] == []


def test_notices_for_an_unknown_incident_are_404_without_smtp(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.post("/admin/incidents/inc_nope/notices", headers=admin_headers)
    problem(response, 404, "incident_not_found")


def _authorize(world: World, **overrides: str) -> str:
    query = {
        "response_type": "code",
        "client_id": world.apps["invoice-plus"][1],
        "redirect_uri": "https://invoice-plus.example/cb",
        "scope": "customers.name:raw",
        "state": "s1",
        "code_challenge": create_s256_code_challenge("v" * 64),
        "code_challenge_method": "S256",
    } | overrides
    return "/oauth/authorize?" + urlencode(query)


@pytest.mark.parametrize("response_type", ["0\x1b", "cödé", "co\\de", 'c"d'])
def test_unprintable_response_type_is_unsupported_response_type(
    client: TestClient, world: World, response_type: str
) -> None:
    """Authlib echoes ``response_type`` into the error description, and then refuses to build the error
    when it holds characters RFC 6749 forbids there."""
    response = client.get(_authorize(world, response_type=response_type), follow_redirects=False)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://invoice-plus.example/cb"
    assert parse_qs(location.query)["error"] == ["unsupported_response_type"]
    # Unknown client: no redirect, an error page.
    response = client.get(
        _authorize(world, response_type=response_type, client_id="app_nope"), follow_redirects=False
    )
    assert response.status_code == 400 and "unsupported_response_type" in response.text


@pytest.mark.parametrize("scope", ["customers.nämé:raw", "customers.name:raw\\", "customers.name:r\x7faw"])
def test_unprintable_scope_is_invalid_scope(client: TestClient, world: World, scope: str) -> None:
    response = client.get(_authorize(world, scope=scope), follow_redirects=False)
    assert response.status_code == 302, response.text
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_scope"]


def test_malformed_bodies_are_documented_400s(client: TestClient, admin_headers: dict[str, str]) -> None:
    """A body that cannot be parsed at all is a 400 problem, one over the route's cap a 413 (found by the
    fuzzer), and the OpenAPI says so for every route with a body (FastAPI documents only 422)."""
    schema = client.get("/openapi.json").json()
    for path, method in (
        ("/admin/incidents", "post"),
        ("/oauth/token", "post"),
        ("/admin/attributions", "post"),
    ):
        for status in ("400", "413"):
            assert PROBLEM_JSON in schema["paths"][path][method]["responses"][status]["content"], path
    response = client.post(
        "/admin/ledger/verify", json={"checkpoints": ["0" * 900_000]}, headers=admin_headers
    )
    problem(response, 413, "payload_too_large")
    response = client.post(
        "/admin/incidents",
        content=b'{"apps": ["\xff"], "reason": "x"}',
        headers=admin_headers | {"Content-Type": "application/json"},
    )
    problem(response, 400, "bad_request")
    response = client.post(
        "/oauth/token",
        content=b"--x\r\nnot a part\r\n--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    problem(response, 400, "bad_request")


def test_openapi_documents_problem_json_for_every_error(client: TestClient) -> None:
    """Every 4xx/5xx a JSON route documents is problem+json (422 included: FastAPI's generated one said
    ``application/json`` ``HTTPValidationError``), and every admin route documents its 401."""
    schema = client.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path.startswith("/admin"):
                assert "401" in responses, (method, path)
            for status, response in responses.items():
                if int(status) < 400:
                    continue
                content = response.get("content", {})
                assert PROBLEM_JSON in content or path.startswith("/oauth/"), (method, path, status)
                if PROBLEM_JSON in content:
                    assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_a_problem_never_fails_to_render() -> None:
    """A problem may echo what the client sent; a lone surrogate in it is replaced, not a 500."""
    from appwarden.web.problems import problem_response

    response = problem_response({"status": 404, "detail": "unknown token '\ud800'", "token": ["\udfff"]})
    assert response.status_code == 404
    assert b"\\ud800" not in response.body and "unknown token '?'" in response.body.decode()


def test_second_incident_for_an_app_is_a_documented_409(
    client: TestClient, world: World, admin_headers: dict[str, str]
) -> None:
    """Found by the fuzzer: the 409 was sent but not in the OpenAPI."""
    body = {"apps": ["booking-go"], "reason": "test"}
    assert client.post("/admin/incidents", json=body, headers=admin_headers).status_code == 201
    problem(client.post("/admin/incidents", json=body, headers=admin_headers), 409, "incident_already_open")
    responses = client.get("/openapi.json").json()["paths"]["/admin/incidents"]["post"]["responses"]
    assert PROBLEM_JSON in responses["409"]["content"]
