"""A small platform with one console login per role, for the console's HTTP and browser tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.db.session import Database
from appwarden.marketplace import service as marketplace
from appwarden.marketplace.vendors import get_vendor
from appwarden.oauth.models import Connection
from appwarden.platform.accounts import create_vendor_member
from appwarden.platform.models import User
from appwarden.platform.service import hash_password
from appwarden.platform.staff import create_staff
from conftest import OWNER_PASSWORD, World, build_world

PASSWORD = "console-password-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class ConsoleWorld:
    """``world`` plus staff, two vendors with an app each, and live connections with tokens."""

    world: World
    tokens: dict[tuple[str, int], str]  # (app slug, tenant index) -> access token
    connections: dict[tuple[str, int], str]  # (app slug, tenant index) -> connection public id

    @property
    def db(self) -> Database:
        return self.world.db

    # username -> password, one per role (owner0 and owner1 are two companies' store owners)
    logins: ClassVar[dict[str, str]] = {
        "owner0": OWNER_PASSWORD,
        "owner1": OWNER_PASSWORD,
        "secadmin": PASSWORD,
        "reviewer1": PASSWORD,
        "vendor-a-dev": PASSWORD,
        "vendor-b-dev": PASSWORD,
    }


def build_console_world(db: Database) -> ConsoleWorld:
    world = build_world(db)
    with db.session() as session:
        for username, role in (("secadmin", "security_admin"), ("reviewer1", "reviewer")):
            member, _ = create_staff(session, username, role=role)
            user = session.get(User, member.id)
            assert user is not None
            user.password_hash = hash_password(PASSWORD)
        for letter in ("a", "b"):
            marketplace.register_app(
                session,
                slug=f"vendor-{letter}-app",
                name=f"Vendor {letter.upper()} App",
                redirect_uris=[f"https://vendor-{letter}.example/cb"],
                scopes=["customers.points:raw"],
                vendor_name=f"Vendor {letter.upper()}",
                grandfathered=False,
            )
            vendor = get_vendor(session, f"Vendor {letter.upper()}")
            create_vendor_member(session, f"vendor-{letter}-dev", PASSWORD, vendor=vendor.public_id)
    tokens: dict[tuple[str, int], str] = {}
    connections: dict[tuple[str, int], str] = {}
    for slug, tenant in (("invoice-plus", 0), ("loyalty-stamp", 0), ("invoice-plus", 1)):
        issued = world.connect(slug, world.tenants[tenant])
        tokens[(slug, tenant)] = str(issued["access_token"])
    with db.session() as session:
        for slug, tenant in tokens:
            app_id = world.apps[slug][0]
            connections[(slug, tenant)] = session.scalars(
                select(Connection.public_id).where(
                    Connection.app_id == app_id, Connection.company_id == world.tenants[tenant].company.id
                )
            ).one()
    return ConsoleWorld(world, tokens, connections)


def form_token(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: TestClient, username: str, password: str, *, next: str = "") -> int:
    """Sign in through the form; returns the POST's status (303 on success)."""
    token = form_token(client.get("/console/login").text)
    response = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next},
        follow_redirects=False,
    )
    return response.status_code
