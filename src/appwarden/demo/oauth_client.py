"""A client-side OAuth helper that drives the real pages, as a browser and an app's backend would.

``connect_app`` walks the authorisation code flow with PKCE S256: authorize → owner login form →
consent form (unticking what it is told to) → the redirect to the app (read, never fetched) → token
exchange. ``http`` is any ``httpx.Client`` (a FastAPI ``TestClient`` or one with a live server's
``base_url``). The flow runs in a fresh cookie jar, so the caller's cookies are left as they were.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge


class OAuthFlowError(RuntimeError):
    """The server refused a step; ``error`` is the OAuth error code (or a step name)."""

    def __init__(self, error: str, detail: str = "", *, status: int | None = None) -> None:
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error
        self.detail = detail
        self.status = status


class _FormParser(HTMLParser):
    """Collects the fields of the page's forms: hidden/text inputs and checkboxes."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": [], "checkboxes": []})
        elif tag == "input" and self.forms and a.get("name"):
            if a.get("type") == "checkbox":
                self.forms[-1]["checkboxes"].append((a["name"], a.get("value", ""), "checked" in a))
            else:
                self.forms[-1]["fields"].append((a["name"], a.get("value", "")))


def _form(html: str, action: str) -> dict[str, Any]:
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if form["action"] == action:
            return form
    raise OAuthFlowError("form_not_found", f"no form posting to {action}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise OAuthFlowError("invalid_response", response.text[:200], status=response.status_code) from None
    if response.status_code != 200 or "error" in body:
        raise OAuthFlowError(
            str(body.get("error", "http_error")),
            str(body.get("error_description", "")),
            status=response.status_code,
        )
    return body


@contextmanager
def _fresh_cookies(http: httpx.Client) -> Iterator[None]:
    saved = list(http.cookies.jar)
    http.cookies.clear()
    try:
        yield
    finally:
        http.cookies.clear()
        for cookie in saved:
            http.cookies.jar.set_cookie(cookie)


def _unticked(scope: str, untick: set[str]) -> bool:
    """Untick by exact scope (``customers.phone:raw``) or by field name (``phone``)."""
    field = scope.split(":", 1)[0].removeprefix("customers.")
    return scope in untick or field in untick


def connect_app(
    http: httpx.Client,
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    username: str,
    password: str,
    scope: str,
    untick: Iterable[str] = (),
) -> dict[str, Any]:
    """Connect an app for the owner's company through the real pages; return the token response."""
    state = generate_token(24)
    verifier = generate_token(64)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    with _fresh_cookies(http):
        page = http.get("/oauth/authorize?" + urlencode(query), follow_redirects=False)
        if page.status_code in (302, 303) and urlsplit(page.headers["location"]).path == "/oauth/login":
            login_page = http.get(page.headers["location"], follow_redirects=False)
            form = _form(login_page.text, "/oauth/login")
            data = dict(form["fields"])
            data.update(username=username, password=password)
            page = http.post("/oauth/login", data=data, follow_redirects=False)
            if page.status_code != 303:
                raise OAuthFlowError(
                    "login_failed", f"login answered {page.status_code}", status=page.status_code
                )
            page = http.get(page.headers["location"], follow_redirects=False)
        if page.status_code in (302, 303):
            _read_redirect(page.headers["location"], redirect_uri, state)  # raises the OAuth error
        if page.status_code != 200:
            raise OAuthFlowError(
                "authorize_failed", f"authorize answered {page.status_code}", status=page.status_code
            )
        form = _form(page.text, "/oauth/authorize")
        unticked = set(untick)
        fields: list[tuple[str, str]] = list(form["fields"])
        fields += [(n, v) for n, v, checked in form["checkboxes"] if checked and not _unticked(v, unticked)]
        fields.append(("decision", "approve"))
        answer = http.post("/oauth/authorize", data=_pairs_to_form(fields), follow_redirects=False)
        if answer.status_code not in (302, 303):
            raise OAuthFlowError(
                "consent_failed", f"consent answered {answer.status_code}", status=answer.status_code
            )
        code = _read_redirect(answer.headers["location"], redirect_uri, state)
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client_id, client_secret),
        follow_redirects=False,
    )
    return _json(response)


def _pairs_to_form(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form


def _read_redirect(location: str, redirect_uri: str, state: str) -> str:
    """The code from the redirect back to the app, after checking where it goes and its state."""
    target = urlsplit(location)
    expected = urlsplit(redirect_uri)
    if (target.scheme, target.netloc, target.path) != (expected.scheme, expected.netloc, expected.path):
        raise OAuthFlowError("unexpected_redirect", location)
    params = {k: v[0] for k, v in parse_qs(target.query).items()}
    if not hmac.compare_digest(params.get("state", ""), state):
        raise OAuthFlowError("state_mismatch", "the state returned is not the one sent")
    if "error" in params:
        raise OAuthFlowError(params["error"], params.get("error_description", ""))
    if "code" not in params:
        raise OAuthFlowError("missing_code", location)
    return params["code"]


def refresh(http: httpx.Client, *, client_id: str, client_secret: str, refresh_token: str) -> dict[str, Any]:
    """Exchange a refresh token for a new access + refresh pair (the old refresh token is spent)."""
    response = http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(client_id, client_secret),
        follow_redirects=False,
    )
    return _json(response)
