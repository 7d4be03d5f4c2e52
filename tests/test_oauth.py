"""The OAuth authorisation server's browser side: metadata, login, consent, redirects, PKCE, codes."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from appwarden.broker.auth import authenticate
from appwarden.demo.oauth_client import OAuthFlowError, connect_app
from appwarden.events.models import SecurityEvent
from appwarden.marketplace.scopes import CUSTOMER_FIELDS
from appwarden.oauth.models import AuthorizationCode, Connection
from conftest import OWNER_PASSWORD, World

CALLBACK = "https://invoice-plus.example/cb"
INVOICE_SCOPE = "customers.name:raw customers.phone:raw transactions:read"


def creds(world: World, slug: str = "invoice-plus") -> dict[str, str]:
    _, client_id, secret = world.apps[slug]
    return {"client_id": client_id, "client_secret": secret, "redirect_uri": f"https://{slug}.example/cb"}


def authorize_query(world: World, slug: str = "invoice-plus", **overrides: str | None) -> dict[str, str]:
    verifier = overrides.pop("verifier", None) or generate_token(64)
    query: dict[str, str | None] = {
        "response_type": "code",
        "client_id": world.apps[slug][1],
        "redirect_uri": f"https://{slug}.example/cb",
        "scope": INVOICE_SCOPE if slug == "invoice-plus" else None,
        "state": "st-123",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    query.update(overrides)
    return {k: v for k, v in query.items() if v is not None}


def login(client: TestClient, username: str = "owner0", password: str = OWNER_PASSWORD) -> None:
    page = client.get("/oauth/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    response = client.post(
        "/oauth/login",
        data={"username": username, "password": password, "csrf_token": csrf.group(1), "next": ""},
        follow_redirects=False,
    )
    assert response.status_code == 200, response.text


def redirect_params(response: Any) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def consent_form(page_html: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page_html):
        fields.setdefault(name, []).append(value.replace("&amp;", "&"))
    fields["grant"] = re.findall(r'name="grant" value="([^"]+)"', page_html)
    return fields


def events(world: World, tag: str) -> list[SecurityEvent]:
    with world.db.session() as session:
        return list(session.scalars(select(SecurityEvent).where(SecurityEvent.tag == tag)))


def test_metadata_is_rfc8414(client: TestClient, settings: Any) -> None:
    body = client.get("/.well-known/oauth-authorization-server").json()
    AuthorizationServerMetadata(body).validate()
    assert body["issuer"] == settings.base_url
    assert body["token_endpoint"] == f"{settings.base_url}/oauth/token"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert set(body["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    for field in CUSTOMER_FIELDS:
        assert f"customers.{field}:raw" in body["scopes_supported"]
    assert "customers.phone:token" in body["scopes_supported"]
    assert "transactions:read" in body["scopes_supported"]


def test_full_flow_gives_a_working_token(client: TestClient, world: World) -> None:
    token = connect_app(
        client, **creds(world), username="owner0", password=OWNER_PASSWORD, scope=INVOICE_SCOPE
    )
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 900
    assert set(token["scope"].split()) == set(INVOICE_SCOPE.split())
    assert token["refresh_token"]
    with world.db.session() as session:
        ctx = authenticate(session, token["access_token"])
        assert ctx.company_id == world.tenants[0].company.id
        assert set(ctx.scopes) == set(INVOICE_SCOPE.split())
    assert len(events(world, "connection:grant:created")) == 1
    assert len(events(world, "user:session:login")) == 1
    assert len(events(world, "connection:token:issued")) == 1
    # The caller's cookie jar is untouched: the flow ran in its own browser session.
    assert "appwarden_session" not in client.cookies


def test_unticking_a_field_removes_it_everywhere(client: TestClient, world: World) -> None:
    token = connect_app(
        client,
        **creds(world),
        username="owner1",
        password=OWNER_PASSWORD,
        scope=INVOICE_SCOPE,
        untick=["customers.phone:raw"],
    )
    assert "customers.phone:raw" not in token["scope"].split()
    with world.db.session() as session:
        conn = session.scalar(select(Connection).where(Connection.company_id == world.tenants[1].company.id))
        assert conn is not None and conn.scopes == ["customers.name:raw", "transactions:read"]
        ctx = authenticate(session, token["access_token"])
    assert "customers.phone:raw" not in ctx.scopes
    assert ctx.company_id == world.tenants[1].company.id
    # Reconnecting with everything ticked updates the same connection.
    again = connect_app(
        client, **creds(world), username="owner1", password=OWNER_PASSWORD, scope=INVOICE_SCOPE
    )
    with world.db.session() as session:
        assert "customers.phone:raw" in authenticate(session, again["access_token"]).scopes
    assert len(events(world, "connection:grant:updated")) == 1


def test_unauthenticated_authorize_goes_to_login_and_consent_lists_fields(
    client: TestClient, world: World
) -> None:
    query = authorize_query(world)
    first = client.get("/oauth/authorize?" + urlencode(query), follow_redirects=False)
    assert first.status_code == 303
    assert urlsplit(first.headers["location"]).path == "/oauth/login"
    login(client)
    page = client.get("/oauth/authorize?" + urlencode(query))
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "氏名" in page.text and "電話番号" in page.text and "The full value" in page.text
    assert consent_form(page.text)["grant"] == INVOICE_SCOPE.split()
    assert page.text.count("checked") == 3


def test_deny_redirects_access_denied(client: TestClient, world: World) -> None:
    login(client)
    page = client.get("/oauth/authorize?" + urlencode(authorize_query(world)))
    form = consent_form(page.text) | {"decision": ["deny"]}
    params = redirect_params(client.post("/oauth/authorize", data=form, follow_redirects=False))
    assert params["error"] == "access_denied"
    assert params["state"] == "st-123"
    assert "code" not in params
    with world.db.session() as session:
        assert session.scalar(select(Connection)) is None


def test_wrong_csrf_is_refused(client: TestClient, world: World) -> None:
    login(client)
    page = client.get("/oauth/authorize?" + urlencode(authorize_query(world)))
    form = consent_form(page.text) | {"decision": ["approve"], "csrf_token": ["forged"]}
    response = client.post("/oauth/authorize", data=form, follow_redirects=False)
    assert response.status_code == 403
    assert "location" not in response.headers
    with world.db.session() as session:
        assert session.scalar(select(Connection)) is None
        assert session.scalar(select(AuthorizationCode)) is None
    # The login form checks its CSRF token too.
    bad = client.post(
        "/oauth/login",
        data={"username": "owner0", "password": OWNER_PASSWORD, "csrf_token": "nope"},
        follow_redirects=False,
    )
    assert bad.status_code == 403


def test_wrong_password_is_refused_and_recorded(client: TestClient, world: World) -> None:
    with pytest.raises(OAuthFlowError) as err:
        connect_app(client, **creds(world), username="owner0", password="wrong-password", scope=INVOICE_SCOPE)
    assert err.value.status == 401
    failed = events(world, "user:session:login-failed")
    assert [e.actor for e in failed] == ["owner0"]
    assert "wrong-password" not in str(failed[0].data)


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"code_challenge_method": "plain", "code_challenge": "x" * 43}, "S256"),
        ({"code_challenge_method": None}, "S256"),
        ({"code_challenge": None, "code_challenge_method": None}, "code_challenge"),
    ],
    ids=["plain", "no-method", "missing"],
)
def test_pkce_other_than_s256_is_refused(
    client: TestClient, world: World, overrides: dict[str, str | None], description: str
) -> None:
    login(client)
    response = client.get(
        "/oauth/authorize?" + urlencode(authorize_query(world, **overrides)), follow_redirects=False
    )
    params = redirect_params(response)
    assert params["error"] == "invalid_request"
    assert description in params["error_description"]
    assert params["state"] == "st-123"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/cb",
        "https://invoice-plus.example/cb/extra",
        "https://invoice-plus.example/cb?x=1",
        "https://invoice-plus.example/c",
        "http://invoice-plus.example/cb",
        None,
    ],
)
def test_redirect_uri_mismatch_never_redirects(
    client: TestClient, world: World, redirect_uri: str | None
) -> None:
    login(client)
    query = authorize_query(world, redirect_uri=redirect_uri)
    response = client.get("/oauth/authorize?" + urlencode(query), follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "invalid_request" in response.text
    # Nor does the consent form post, even with a valid CSRF token.
    page = client.get("/oauth/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    posted = client.post(
        "/oauth/authorize",
        data=query | {"csrf_token": csrf.group(1), "decision": "approve"},
        follow_redirects=False,
    )
    assert posted.status_code == 400 and "location" not in posted.headers


def test_unknown_client_shows_an_error_page(client: TestClient, world: World) -> None:
    response = client.get(
        "/oauth/authorize?" + urlencode(authorize_query(world, client_id="app_nope")), follow_redirects=False
    )
    assert response.status_code in (400, 401)
    assert "location" not in response.headers
    assert "invalid_client" in response.text


def test_scope_beyond_approval_is_invalid_scope(client: TestClient, world: World) -> None:
    login(client)
    query = authorize_query(world, scope="customers.name:raw customers.email:raw")
    params = redirect_params(client.get("/oauth/authorize?" + urlencode(query), follow_redirects=False))
    assert params["error"] == "invalid_scope"
    assert params["state"] == "st-123"
    query = authorize_query(world, scope="customers.nonsense:raw")
    params = redirect_params(client.get("/oauth/authorize?" + urlencode(query), follow_redirects=False))
    assert params["error"] == "invalid_scope"


def test_response_type_other_than_code_is_refused(client: TestClient, world: World) -> None:
    query = authorize_query(world, response_type="token")
    params = redirect_params(client.get("/oauth/authorize?" + urlencode(query), follow_redirects=False))
    assert params["error"] == "unsupported_response_type"


def test_suspended_app_cannot_be_authorised(
    client: TestClient, world: World, admin_headers: dict[str, str]
) -> None:
    from appwarden.marketplace import service as marketplace

    with world.db.session() as session:
        app = marketplace.get_app(session, "invoice-plus")
        marketplace.suspend_app(session, app, actor="test")
    login(client)
    response = client.get("/oauth/authorize?" + urlencode(authorize_query(world)), follow_redirects=False)
    assert response.status_code == 403
    assert "location" not in response.headers


def test_code_is_single_use_and_replay_revokes_its_tokens(client: TestClient, world: World) -> None:
    verifier = generate_token(64)
    login(client)
    page = client.get("/oauth/authorize?" + urlencode(authorize_query(world, verifier=verifier)))
    form = consent_form(page.text) | {"decision": ["approve"]}
    code = redirect_params(client.post("/oauth/authorize", data=form, follow_redirects=False))["code"]
    c = creds(world)
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    first = client.post("/oauth/token", data=exchange, auth=(c["client_id"], c["client_secret"]))
    assert first.status_code == 200, first.text
    with world.db.session() as session:
        authenticate(session, first.json()["access_token"])
        stored = session.scalar(select(AuthorizationCode))
        assert stored is not None and stored.code_hash != code  # hashed at rest
    second = client.post("/oauth/token", data=exchange, auth=(c["client_id"], c["client_secret"]))
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    introspected = client.post(
        "/oauth/introspect",
        data={"token": first.json()["access_token"]},
        auth=(c["client_id"], c["client_secret"]),
    )
    assert introspected.json() == {"active": False}
    assert len(events(world, "connection:token:reuse-detected")) == 1


def _code(client: TestClient, world: World, verifier: str) -> str:
    login(client)
    page = client.get("/oauth/authorize?" + urlencode(authorize_query(world, verifier=verifier)))
    form = consent_form(page.text) | {"decision": ["approve"]}
    return redirect_params(client.post("/oauth/authorize", data=form, follow_redirects=False))["code"]


def test_wrong_or_missing_verifier_is_refused(client: TestClient, world: World) -> None:
    c = creds(world)
    for verifier, error in [(generate_token(64), "invalid_grant"), (None, "invalid_request")]:
        code = _code(client, world, generate_token(64))
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
        if verifier:
            data["code_verifier"] = verifier
        response = client.post("/oauth/token", data=data, auth=(c["client_id"], c["client_secret"]))
        assert response.status_code == 400
        assert response.json()["error"] == error


def test_code_bound_to_client_and_redirect_uri(client: TestClient, world: World) -> None:
    verifier = generate_token(64)
    c = creds(world)
    other = creds(world, "booking-go")
    code = _code(client, world, verifier)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    stolen = client.post("/oauth/token", data=data, auth=(other["client_id"], other["client_secret"]))
    assert stolen.json()["error"] == "invalid_grant"
    code = _code(client, world, verifier)
    moved = client.post(
        "/oauth/token",
        data=data | {"code": code, "redirect_uri": CALLBACK + "x"},
        auth=(c["client_id"], c["client_secret"]),
    )
    assert moved.json()["error"] == "invalid_grant"


def test_expired_code_is_refused(client: TestClient, world: World) -> None:
    verifier = generate_token(64)
    code = _code(client, world, verifier)
    with world.db.session() as session:
        stored = session.scalar(select(AuthorizationCode))
        assert stored is not None
        assert (stored.expires_at - stored.created_at).total_seconds() == 120
        session.execute(update(AuthorizationCode).values(expires_at=stored.created_at))
    c = creds(world)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    response = client.post("/oauth/token", data=data, auth=(c["client_id"], c["client_secret"]))
    assert response.json()["error"] == "invalid_grant"


def test_bad_client_secret_is_invalid_client(client: TestClient, world: World) -> None:
    verifier = generate_token(64)
    code = _code(client, world, verifier)
    c = creds(world)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    response = client.post("/oauth/token", data=data, auth=(c["client_id"], "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    # client_secret_post works as well, and the code was not burnt by the failed attempt.
    ok = client.post(
        "/oauth/token", data=data | {"client_id": c["client_id"], "client_secret": c["client_secret"]}
    )
    assert ok.status_code == 200, ok.text


def test_code_issued_before_suspension_cannot_be_exchanged(client: TestClient, world: World) -> None:
    from appwarden.marketplace import service as marketplace
    from appwarden.marketplace.models import LifecycleState

    verifier = generate_token(64)
    code = _code(client, world, verifier)
    with world.db.session() as session:
        app = marketplace.get_app(session, "invoice-plus")
        marketplace.transition(session, app, LifecycleState.DELISTED, actor="test")
    c = creds(world)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    response = client.post("/oauth/token", data=data, auth=(c["client_id"], c["client_secret"]))
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert "delisted" in response.json()["error_description"]
