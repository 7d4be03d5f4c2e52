"""The web console over HTTP (the real ASGI app): sign-in per role, sessions and cookies, CSRF, the
security headers, role and tenant boundaries, the store owner's disconnect, language, TOTP, /docs."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.console.models import ConsoleSession
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from console_world import PASSWORD, ConsoleWorld, build_console_world, form_token, sign_in


@pytest.fixture
def cw(db: Database) -> ConsoleWorld:
    return build_console_world(db)


def events(db: Database, tag: str) -> list[SecurityEvent]:
    with db.session() as session:
        return list(session.scalars(select(SecurityEvent).where(SecurityEvent.tag == tag)))


def cookie_headers(response: object) -> list[str]:
    return response.headers.get_list("set-cookie")  # type: ignore[attr-defined]


def test_every_console_response_carries_the_security_headers(client: TestClient, cw: ConsoleWorld) -> None:
    for path in ("/console/login", "/console/static/htmx.min.js", "/console/nope"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in response.headers  # served over http here
    assert client.get("/console/login").headers["cache-control"] == "no-store"
    assert client.get("/console/nope").status_code == 404
    # Only the console: the data API's answers are not given the console's CSP.
    assert "content-security-policy" not in client.get("/healthz").headers


def test_login_page_is_japanese_by_default_and_english_on_switch(
    client: TestClient, cw: ConsoleWorld
) -> None:
    page = client.get("/console/login")
    assert '<html lang="ja">' in page.text and "ログイン" in page.text
    switched = client.post(
        "/console/lang",
        data={"lang": "en", "csrf_token": form_token(page.text), "next": "/console/login"},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    (lang_cookie,) = [c for c in cookie_headers(switched) if c.startswith("appwarden_lang=")]
    assert "httponly" in lang_cookie.lower() and "samesite=lax" in lang_cookie.lower()
    english = client.get("/console/login")
    assert '<html lang="en">' in english.text and "Sign in to the appwarden console" in english.text


def test_language_switch_without_the_form_token_is_refused(client: TestClient, cw: ConsoleWorld) -> None:
    client.get("/console/login")
    refused = client.post(
        "/console/lang", data={"lang": "en", "csrf_token": "forged"}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert '<html lang="ja">' in client.get("/console/login").text


@pytest.mark.parametrize(
    ("username", "home", "text"),
    [
        ("owner0", "/console/apps", "連携中のアプリ"),
        ("secadmin", "/console/security", "セキュリティチーム"),
        ("reviewer1", "/console/reviews", "審査"),
        ("vendor-a-dev", "/console/vendor/apps", "自社のアプリ"),
    ],
)
def test_each_role_signs_in_to_its_own_landing_page(
    client: TestClient, cw: ConsoleWorld, username: str, home: str, text: str
) -> None:
    token = form_token(client.get("/console/login").text)
    response = client.post(
        "/console/login",
        data={"username": username, "password": cw.logins[username], "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == home
    (session_cookie,) = [c for c in cookie_headers(response) if c.startswith("appwarden_console=")]
    flags = session_cookie.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "secure" not in flags
    landing = client.get("/console")
    assert landing.status_code == 200 and landing.url.path == home
    assert text in landing.text and username in landing.text
    (event,) = [e for e in events(cw.db, "user:session:login") if e.data.get("via") == "console"]
    assert event.actor == username


def test_the_session_cookie_is_an_opaque_id_kept_hashed(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    cookie = client.cookies["appwarden_console"]
    with cw.db.session() as session:
        (stored,) = session.scalars(select(ConsoleSession.token_hash))
    assert cookie not in stored and len(stored) == 64


def test_wrong_password_is_refused_recorded_and_throttled(
    client: TestClient, cw: ConsoleWorld, settings: Settings
) -> None:
    limit = settings.login_max_failures_per_account
    for _ in range(limit):
        assert sign_in(client, "owner0", "not-the-password") == 401
    failed = [e for e in events(cw.db, "user:session:login-failed") if e.data.get("via") == "console"]
    assert len(failed) == limit and {e.actor for e in failed} == {"owner0"}
    token = form_token(client.get("/console/login").text)
    locked = client.post(
        "/console/login",
        data={"username": "owner0", "password": cw.logins["owner0"], "csrf_token": token},
        follow_redirects=False,
    )
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "appwarden_console=" not in " ".join(cookie_headers(locked))  # no session
    (throttled,) = events(cw.db, "user:session:login-throttled")
    assert throttled.actor == "owner0" and throttled.data["via"] == "console"


def test_login_without_or_with_a_wrong_csrf_token_is_refused(client: TestClient, cw: ConsoleWorld) -> None:
    client.get("/console/login")
    form = {"username": "owner0", "password": cw.logins["owner0"]}
    assert client.post("/console/login", data=form, follow_redirects=False).status_code == 403
    wrong = client.post("/console/login", data=form | {"csrf_token": "x" * 64}, follow_redirects=False)
    assert wrong.status_code == 403
    # A token from another browser's pre-session cookie is no good either.
    other = TestClient(client.app, base_url="http://testserver")
    theirs = form_token(other.get("/console/login").text)
    assert client.post("/console/login", data=form | {"csrf_token": theirs}).status_code == 403
    assert not events(cw.db, "user:session:login")


def test_pages_need_a_session_and_the_right_role(client: TestClient, cw: ConsoleWorld) -> None:
    anonymous = client.get("/console/apps", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=/console/apps"
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    for path in ("/console/vendor/apps", "/console/security", "/console/reviews", "/console/account/totp"):
        assert client.get(path).status_code == 403, path
    vendor = TestClient(client.app, base_url="http://testserver")
    assert sign_in(vendor, "vendor-a-dev", PASSWORD) == 303
    assert vendor.get("/console/apps").status_code == 403


def test_a_store_owner_sees_only_its_own_companys_connections(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    page = client.get("/console/apps")
    mine = {cw.connections[("invoice-plus", 0)], cw.connections[("loyalty-stamp", 0)]}
    shown = set(re.findall(r'id="row-(con_[^"]+)"', page.text))
    assert shown == mine
    assert cw.world.tenants[0].company.name in page.text and cw.world.tenants[1].company.name not in page.text
    # Each field with its mode: invoice-plus has name and phone raw, loyalty-stamp name masked…
    assert "氏名" in page.text and "一部を伏せた値" in page.text and "仮名トークン" in page.text
    theirs = cw.connections[("invoice-plus", 1)]
    assert client.get(f"/console/apps/{theirs}").status_code == 404
    assert client.get(f"/console/apps/{cw.connections[('invoice-plus', 0)]}").status_code == 200


def test_disconnect_needs_the_sessions_csrf_token(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    conn = cw.connections[("invoice-plus", 0)]
    url = f"/console/apps/{conn}/disconnect"
    assert client.post(url, follow_redirects=False).status_code == 403
    assert client.post(url, data={"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    token = cw.tokens[("invoice-plus", 0)]
    assert client.get("/v1/customers", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert not events(cw.db, "connection:grant:revoked")


def test_disconnect_revokes_at_once_and_is_recorded_with_the_owners_name(
    client: TestClient, cw: ConsoleWorld
) -> None:
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    conn = cw.connections[("invoice-plus", 0)]
    token = cw.tokens[("invoice-plus", 0)]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/customers", headers=bearer).status_code == 200
    csrf = form_token(client.get("/console/apps").text)
    done = client.post(f"/console/apps/{conn}/disconnect", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/v1/customers", headers=bearer).status_code == 401
    (revoked,) = events(cw.db, "connection:grant:revoked")
    assert revoked.actor == "owner0" and revoked.data["connection"] == conn
    # The other company's connection to the same app is untouched.
    other = {"Authorization": f"Bearer {cw.tokens[('invoice-plus', 1)]}"}
    assert client.get("/v1/customers", headers=other).status_code == 200
    page = client.get(done.headers["location"])
    assert "連携を解除しました" in page.text
    again = client.post(f"/console/apps/{conn}/disconnect", data={"csrf_token": csrf})
    assert again.status_code == 409


def test_htmx_disconnect_answers_the_row(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    conn = cw.connections[("loyalty-stamp", 0)]
    csrf = form_token(client.get("/console/apps").text)
    row = client.post(
        f"/console/apps/{conn}/disconnect", headers={"HX-Request": "true", "X-CSRF-Token": csrf}
    )
    assert row.status_code == 200
    assert row.text.lstrip().startswith(f'<tr id="row-{conn}" class="status-revoked"')


def test_another_companys_connection_cannot_be_disconnected(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    csrf = form_token(client.get("/console/apps").text)
    theirs = cw.connections[("invoice-plus", 1)]
    assert client.post(f"/console/apps/{theirs}/disconnect", data={"csrf_token": csrf}).status_code == 404
    other = {"Authorization": f"Bearer {cw.tokens[('invoice-plus', 1)]}"}
    assert client.get("/v1/customers", headers=other).status_code == 200


def test_a_vendor_sees_only_its_own_apps(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "vendor-a-dev", PASSWORD) == 303
    page = client.get("/console/vendor/apps")
    assert "vendor-a-app" in page.text and "vendor-b-app" not in page.text
    assert client.get("/console/vendor/apps/vendor-a-app").status_code == 200
    assert client.get("/console/vendor/apps/vendor-b-app").status_code == 404
    assert client.get("/console/vendor/apps/invoice-plus").status_code == 404


def test_logout_ends_the_session_on_the_server(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    cookie = client.cookies["appwarden_console"]
    csrf = form_token(client.get("/console/apps").text)
    assert client.post("/console/logout", data={"csrf_token": "forged"}).status_code == 403
    out = client.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    with cw.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ConsoleSession)) == 0
    replay = TestClient(client.app, base_url="http://testserver", cookies={"appwarden_console": cookie})
    assert replay.get("/console/apps", follow_redirects=False).status_code == 303
    (event,) = events(cw.db, "user:session:logout")
    assert event.actor == "owner0"


def test_cookies_are_secure_and_host_prefixed_over_https(
    settings: Settings, db: Database, cw: ConsoleWorld
) -> None:
    https = settings.model_copy(update={"base_url": "https://warden.example"})
    with TestClient(create_app(https, db), base_url="https://testserver") as client:
        page = client.get("/console/login")
        assert "max-age=31536000" in page.headers["strict-transport-security"]
        (pre,) = cookie_headers(page)
        assert pre.startswith("__Host-appwarden_console_pre=") and "secure" in pre.lower()
        token = form_token(page.text)
        response = client.post(
            "/console/login",
            data={"username": "owner0", "password": cw.logins["owner0"], "csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303
        (session_cookie,) = [c for c in cookie_headers(response) if c.startswith("__Host-appwarden_console=")]
        flags = session_cookie.lower()
        assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags and "path=/" in flags


def test_a_security_admin_can_turn_on_totp_and_then_needs_a_code(
    client: TestClient, cw: ConsoleWorld
) -> None:
    assert sign_in(client, "secadmin", PASSWORD) == 303
    setup = client.get("/console/account/totp")
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', setup.text)
    assert secret is not None
    csrf = form_token(setup.text)
    wrong = client.post(
        "/console/account/totp", data={"csrf_token": csrf, "secret": secret[1], "code": "000000"}
    )
    assert wrong.status_code == 422 and secret[1] in wrong.text
    code = pyotp.TOTP(secret[1]).now()
    on = client.post("/console/account/totp", data={"csrf_token": csrf, "secret": secret[1], "code": code})
    assert on.status_code == 200 and 'data-testid="totp-on"' in on.text
    assert [e.actor for e in events(cw.db, "user:totp:enabled")] == ["secadmin"]

    fresh = TestClient(client.app, base_url="http://testserver")
    token = form_token(fresh.get("/console/login").text)
    step = fresh.post(
        "/console/login",
        data={"username": "secadmin", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert step.headers["location"] == "/console/login/totp"
    # The password alone opens nothing.
    assert fresh.get("/console/security", follow_redirects=False).status_code == 303
    totp_page = fresh.get("/console/login/totp")
    bad = fresh.post("/console/login/totp", data={"csrf_token": form_token(totp_page.text), "code": "123456"})
    assert bad.status_code == 401
    assert [e.data["reason"] for e in events(cw.db, "user:session:login-failed")] == ["bad_totp"]
    # The code that turned TOTP on is spent: the next step's code (accepted ± one step) signs in, once.
    spent = fresh.post("/console/login/totp", data={"csrf_token": form_token(totp_page.text), "code": code})
    assert spent.status_code == 401
    following = pyotp.TOTP(secret[1]).at(time.time() + 30)
    good = fresh.post(
        "/console/login/totp",
        data={"csrf_token": form_token(totp_page.text), "code": following},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/console/security"
    assert fresh.get("/console/security").status_code == 200
    replayed = TestClient(client.app, base_url="http://testserver")
    token = form_token(replayed.get("/console/login").text)
    replayed.post("/console/login", data={"username": "secadmin", "password": PASSWORD, "csrf_token": token})
    again = replayed.post(
        "/console/login/totp",
        data={"csrf_token": form_token(replayed.get("/console/login/totp").text), "code": following},
    )
    assert again.status_code == 401  # the same code never signs in twice
    logins = [e for e in events(cw.db, "user:session:login") if e.actor == "secadmin"]
    assert [e.data["factors"] for e in logins] == ["password", "password+totp"]


def test_docs_are_served_from_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "/docs/assets/swagger-ui.css" in page.text
    assert "cdn" not in page.text.lower()
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text[:200_000]
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200


def test_serve_help_promises_the_console_and_the_docs(capsys: pytest.CaptureFixture[str]) -> None:
    from appwarden.cli import run

    assert run(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "/console" in text and "/docs" in text


def test_login_returns_to_the_asked_console_page_and_nowhere_else(
    client: TestClient, cw: ConsoleWorld
) -> None:
    mine = f"/console/apps/{cw.connections[('invoice-plus', 0)]}"
    for target, lands in (
        (mine, mine),
        ("//evil.example/x", "/console/apps"),
        ("https://evil.example", "/console/apps"),
    ):
        fresh = TestClient(client.app, base_url="http://testserver")
        token = form_token(fresh.get("/console/login").text)
        response = fresh.post(
            "/console/login",
            data={"username": "owner0", "password": cw.logins["owner0"], "csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == lands, target
