"""The vendor's erasure pages over HTTP (the real ASGI app): the list shows only the vendor's own
requests, the attestation form needs the CSRF token, another vendor's request is a 404, a refused
attestation says why, and an attestation is final."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.obligations.models import ErasureAttestation
from console_world import ConsoleWorld, build_console_world, form_token
from erasure_helpers import owed_request
from test_console_vendor_pages import person

URL = "/console/vendor/erasure-requests"


@pytest.fixture
def cw(db: Database) -> ConsoleWorld:
    return build_console_world(db)


def test_a_vendor_attests_its_own_request_once_through_the_form(
    client: TestClient, settings: Settings, db: Database, cw: ConsoleWorld
) -> None:
    request_id = owed_request(settings, db, cw)
    vendor = person(client, "vendor-a-dev")
    listing = vendor.get(URL)
    assert listing.status_code == 200 and request_id in listing.text
    assert request_id not in person(client, "vendor-b-dev").get(URL).text
    token = form_token(listing.text)
    form = {"erased_at": "2026-01-01T09:00", "name": "Hanako Suzuki", "role": "DPO", "csrf_token": token}
    action = f"{URL}/{request_id}/attestation"
    assert vendor.post(action, data={**form, "csrf_token": "wrong"}).status_code == 403
    # Before the request was made: refused with the reason, nothing recorded.
    refused = vendor.post(action, data=form)
    assert refused.status_code == 422 and "before the request was made" in refused.text
    other = person(client, "vendor-b-dev")
    other_token = form_token(other.get(URL).text)
    assert other.post(action, data={**form, "csrf_token": other_token}).status_code == 404
    with db.session() as session:
        assert session.scalars(select(ErasureAttestation)).all() == []
    form["erased_at"] = utcnow().strftime("%Y-%m-%dT%H:%M")
    done = vendor.post(action, data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"{URL}?done=attested"
    again = vendor.post(action, data={**form, "name": "Someone Else"})
    assert again.status_code == 409
    with db.session() as session:
        (made,) = session.scalars(select(ErasureAttestation)).all()
        assert made.attested_by == "Hanako Suzuki"
    # The security team's app page shows the attestation.
    security = person(client, "secadmin")
    shown = security.get("/console/security/apps/vendor-a-app")
    assert shown.status_code == 200
    assert (
        f'data-state="attested"><td><code>{request_id}</code>' in shown.text and "Hanako Suzuki" in shown.text
    )
