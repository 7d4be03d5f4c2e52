"""The seams where a lower package announces a write and a higher one answers it (``appwarden.hooks``):
importing wires nothing, ``wiring.wire`` wires each announcement to its answer once, and an announcement
nobody answers is refused with the write undone (fail closed)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from appwarden import wiring
from appwarden.blind_index.service import refresh_changed_customers
from appwarden.canary import alerts as canary_alerts
from appwarden.canary import service as canary_service
from appwarden.hooks import Hook
from appwarden.incident import service as incident_service
from appwarden.incident.models import Incident
from appwarden.ledger.usage import unused_scopes_fact
from appwarden.marketplace.models import App
from appwarden.monitor import canary as monitor_canary
from appwarden.monitor import obligation_checks as monitor_obligation_checks
from appwarden.monitor import probing as monitor_probing
from appwarden.monitor.risk import risk_fact
from appwarden.oauth import service as oauth_service
from appwarden.obligations.endpoint_check import endpoint_check_of
from appwarden.obligations.erasure_triggers import customer_deleted
from appwarden.obligations.service import holdings_fact
from appwarden.platform import customer_changes
from conftest import World

# Every announcement in the code base (by name) and the answers wire() gives it, in order.
EXPECTED = {
    "customers changed": [refresh_changed_customers, customer_deleted],
    "connection granted": [canary_service.connection_granted],
    "incident opened": [canary_alerts.attach_pending_alerts],
    "canary contacted": [monitor_canary.canary_contacted],
    "app facts": [risk_fact, unused_scopes_fact, holdings_fact],  # a Question: the app views' facts
    "token reused": [monitor_probing.token_reused],
    "dump canaries found": [monitor_obligation_checks.dump_canaries_found],
    "listing gate": [endpoint_check_of],  # a Question: may the review list this app?
}

# Imports every module, finds every Hook and Question, prints {name: answers} before and after wiring twice.
FIND_HOOKS = """
import importlib, pkgutil, appwarden
from appwarden.hooks import Seam
hooks = {}
for m in pkgutil.walk_packages(appwarden.__path__, 'appwarden.'):
    if not m.name.startswith(('appwarden.asgi', 'appwarden.db.migrations')):
        found = vars(importlib.import_module(m.name)).values()
        hooks.update((v.name, v) for v in found if isinstance(v, Seam))
answers = lambda: {n: [f'{a.__module__}.{a.__qualname__}' for a in h.registered()] for n, h in hooks.items()}
before = answers()
from appwarden import wiring
wiring.wire(); wiring.wire()
print(repr((before, answers())))
"""


def test_importing_wires_nothing_and_wire_connects_each_announcement_once() -> None:
    """In a fresh interpreter (this one is wired by conftest)."""
    out = subprocess.run([sys.executable, "-c", FIND_HOOKS], capture_output=True, text=True, check=True)
    before, after = ast.literal_eval(out.stdout)
    assert before == {name: [] for name in EXPECTED}  # every hook found, none answered on import
    names = {name: [f"{a.__module__}.{a.__qualname__}" for a in fns] for name, fns in EXPECTED.items()}
    assert after == names


def test_an_announcement_nobody_answers_is_refused() -> None:
    hook: Hook[[int]] = Hook("something happened")
    with pytest.raises(RuntimeError, match=r"'something happened'.*wiring\.wire\(\)"):
        hook(1)
    seen: list[int] = []
    hook.register(seen.append)
    hook.register(seen.append)  # idempotent
    hook(2)
    assert seen == [2]


def test_an_unwired_incident_opening_writes_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the canary's answer, pending canary alerts would silently miss the incident: refuse."""
    monkeypatch.setattr(incident_service.incident_opened, "_answers", [])
    with pytest.raises(RuntimeError, match="incident opened"), world.db.session() as session:
        app = session.get_one(App, world.apps["invoice-plus"][0])
        incident_service.open_incident(session, apps=[app], reason="leak found", actor="test")
    with world.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 0


def test_this_test_process_is_wired_like_an_entry_point() -> None:
    wiring.wire()  # again: still one answer each
    assert customer_changes.customers_changed.registered() == (refresh_changed_customers, customer_deleted)
    assert oauth_service.connection_granted.registered() == (canary_service.connection_granted,)
    assert incident_service.incident_opened.registered() == (canary_alerts.attach_pending_alerts,)
