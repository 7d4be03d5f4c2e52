"""Attribute a leaked dump: read it, match its rows to people, ask the ledger which app(s) explain them,
estimate when the copy was made, and (given an incident) put the result on its timeline.

    result = attribute_dump(db, "leak.csv", incident="inc_…")
    result.to_dict()              # the verdict JSON of docs/architecture.md
    result.row_customer_ids       # numpy int64, one per dump row, 0 = not a platform customer

Everything is read in one transaction (one snapshot of customers, index and ledger); the timeline
entry and the security event are written in a second, short one. Other packages' data comes from their
owners' service functions (the ledger's holdings and deliveries, the platform's store membership, the
canary lookups), never from their tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pyroaring import BitMap
from sqlalchemy.orm import Session

from appwarden.attribution.limits import DumpLimits
from appwarden.attribution.match import STRONG, MatchResult, match_dump
from appwarden.attribution.reader import read_dump
from appwarden.attribution.snapshot import value_changes, window
from appwarden.attribution.verdict import AppEvidence, Verdict, decide_verdict
from appwarden.blind_index.service import index_key
from appwarden.canary.lookup import canary_hits, canary_ids
from appwarden.config import Settings, get_settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.events.service import EventTag, record
from appwarden.hooks import Hook
from appwarden.incident.service import add_timeline, get_incident
from appwarden.incident.vocabulary import TimelineKind
from appwarden.ledger.exposure import delivery_stream, holdings_of
from appwarden.marketplace.service import app_id_of, app_slugs
from appwarden.platform.directory import company_names
from appwarden.platform.membership import StoreMembership, store_membership

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class DumpCanaries:
    """Canaries found in an attributed dump, as announced to the packages above (no values in it)."""

    customer_ids: tuple[int, ...]
    dump: str  # the file's name
    found_at: datetime
    incident: str | None


# Announced in the attribution's transaction whenever a dump holds canaries; the monitor answers
# (``monitor.obligation_checks.dump_canaries_found``: a canary a vendor attested erased contradicts it).
dump_canaries_found: Hook[[Session, DumpCanaries]] = Hook("dump canaries found")
CANDIDATES = 10  # candidates listed in the JSON


@dataclass
class Attribution:
    """One dump's attribution. ``row_customer_ids`` is row-aligned (0 = unmatched)."""

    rows: int
    rows_matched: int
    row_customer_ids: np.ndarray[Any, np.dtype[np.int64]]
    columns: dict[str, str]
    fields: list[str]
    verdict: Verdict
    candidates: list[dict[str, Any]]
    snapshot: dict[str, Any]
    cells: dict[str, dict[str, int]]
    ambiguous: int
    dump: dict[str, Any] = field(default_factory=dict)
    incident: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The verdict JSON (docs/architecture.md "Attribution verdict JSON"), plus companies, field modes
        and file."""
        v = self.verdict
        # Canaries prove the source but are nobody: every count of people leaves them out (as the blast
        # radius does) and says how many there were.
        canaries: Counter[tuple[str, str]] = Counter((h["app"], h["company"]) for h in v.canary_hits)
        return {
            "rows": self.rows,
            "rows_matched": self.rows_matched,
            "columns": self.columns,
            "verdict": {
                "source": v.source,
                "apps": v.apps,
                "confidence": v.confidence,
                "canary_hits": v.canary_hits,
                "reasons": v.reasons,
                "companies": {
                    app: [{"id": co, "persons": n - canaries[(app, co)]} for co, n in sorted(per.items())]
                    for app, per in v.companies.items()
                },
            },
            "candidates": [
                {**c, "persons": c["persons"] - sum(k for (app, _), k in canaries.items() if app == c["app"])}
                for c in self.candidates
            ],
            "unexplained": {
                "persons": v.unexplained_persons,
                "fields": [f["field"] for f in v.unexplained_fields],
                "detail": v.unexplained_fields,
            },
            "snapshot": self.snapshot,
            "persons_matched": v.matched - len(v.canary_hits),
            "canaries_matched": len(v.canary_hits),
            "rows_ambiguous": self.ambiguous,
            "cells": self.cells,
            "dump": self.dump,
            "incident": self.incident,
        }


def attribute_dump(
    db: Database,
    path: str | Path,
    *,
    settings: Settings | None = None,
    incident: str | None = None,
    actor: str = "cli",
    on_progress: Progress | None = None,
    display_name: str | None = None,
    now: datetime | None = None,
) -> Attribution:
    """Attribute the dump at ``path`` (see the module docstring).

    Raises ``DumpError`` for an unreadable file and ``NotFound`` for an unknown incident (checked
    before the work starts). ``on_progress(bytes_read, total)`` follows the file being read;
    ``display_name`` names the file in the result and timeline (an upload's name, not its temp file);
    ``now`` is when the canaries it holds were found (announced to ``dump_canaries_found``).
    """
    settings = settings or get_settings()
    if incident is not None:
        with db.sessionmaker() as session:
            get_incident(session, incident)  # fail before reading a million rows
    dump = read_dump(path, on_progress=on_progress, limits=DumpLimits.from_settings(settings))
    key = index_key(settings.master_key)
    with db.session() as session:
        match = match_dump(session, dump, key=key)
        matched = match.matched
        # Every store's members, read once: the matched people's companies, then stores per candidate.
        members = store_membership(session)
        companies = members.companies_of(matched)
        apps, app_ids, company_ids = _evidence(session, matched, match.fields, companies)
        canaries = matched & canary_ids(session)
        if canaries:
            # Above us, the monitor checks them against the vendors' erasure attestations.
            dump_canaries_found(
                session,
                DumpCanaries(tuple(canaries), display_name or Path(path).name, now or utcnow(), incident),
            )
        hits = [hit.to_dict() for hit in canary_hits(session, canaries)]
        verdict = decide_verdict(
            rows=match.rows,
            rows_matched=match.rows_matched,
            matched=matched,
            cells=match.cells,
            apps=apps,
            canary_hits=hits,
        )
        snap = _snapshot(session, match, verdict, app_ids, company_ids, canaries)
        stores = _stores_reached(members, verdict, companies)
    candidates: list[dict[str, Any]] = [
        {
            "app": slug,
            "coverage": round(verdict.coverage(slug), 4),
            "persons": len(people),
            "stores": stores.get(slug, 0),
        }
        for slug, people in verdict.explained.items()
    ]
    candidates.sort(key=lambda c: (-float(c["coverage"]), str(c["app"])))
    del candidates[CANDIDATES:]
    result = Attribution(
        rows=match.rows,
        rows_matched=match.rows_matched,
        row_customer_ids=match.row_customer_ids,
        columns=match.columns,
        fields=match.fields,
        verdict=verdict,
        candidates=candidates,
        snapshot=snap,
        cells=match.cell_counts,
        ambiguous=match.ambiguous,
        dump={
            "name": display_name or Path(path).name,
            "format": dump.format,
            "encoding": dump.encoding,
            "ignored": dump.ignored,
        },
        incident=incident,
    )
    if incident is not None:
        _to_timeline(db, result, incident, actor)
    return result


def _evidence(
    session: Session, matched: BitMap, fields: list[str], companies: set[int]
) -> tuple[list[AppEvidence], dict[str, int], dict[str, int]]:
    """Per app, its ledger-index bitmaps of the dumped fields in the matched people's companies."""
    if not matched or not fields or not companies:
        return [], {}, {}
    slugs = app_slugs(session)
    publics = {cid: company.public_id for cid, company in company_names(session, companies).items()}
    by_app: dict[str, AppEvidence] = {}
    received: dict[tuple[str, str], int] = {}
    for held in holdings_of(session, matched, fields=fields, company_ids=companies):
        slug = slugs[held.app_id]
        co = publics[held.company_id]
        key = (slug, co)
        received[key] = max(received.get(key, 0), held.received)
        if held.people:
            ev = by_app.setdefault(slug, AppEvidence(slug, {}))
            ev.by_company.setdefault(co, {})[(held.field, held.mode)] = held.people
    for ev in by_app.values():
        ev.received = sum(n for (slug, _), n in received.items() if slug == ev.slug)
    app_ids = {slug: app_id for app_id, slug in slugs.items()}
    company_ids = {public: cid for cid, public in publics.items()}
    return list(by_app.values()), app_ids, company_ids


def _snapshot(
    session: Session,
    match: MatchResult,
    verdict: Verdict,
    app_ids: dict[str, int],
    company_ids: dict[str, int],
    canaries: BitMap,
) -> dict[str, Any]:
    """The copy window for the verdict's apps (or the best candidate when the verdict names none)."""
    apps = verdict.apps or sorted(verdict.explained, key=lambda a: -len(verdict.explained[a]))[:1]
    if not apps:
        return {"after": None, "before": None, "evidence": []}
    dumped = BitMap.union(BitMap(), *(verdict.explained.get(a, BitMap()) for a in apps))
    companies = {co for a in apps for co in verdict.companies.get(a, {})} or set(company_ids)
    keys = {(f, "raw") for f in match.fields}
    for f, kinds in match.cells.items():
        keys |= {(f, "masked")} if kinds["masked"] else set()
        keys |= {(f, "token")} if kinds["token"] else set()
    deliveries = delivery_stream(
        session,
        app_ids=[app_ids[a] for a in apps if a in app_ids],
        company_ids=[company_ids[c] for c in companies if c in company_ids],
        keys=keys,
    )
    old = {k: at for k, at in match.old_values.items() if k[0] in dumped}
    new = [
        change
        for name in sorted(STRONG & match.current_values.keys())
        for change in value_changes(session, name, match.current_values[name] & dumped)
    ]
    return window(deliveries, dumped, old_values=old, new_values=new, canaries=canaries & dumped)


def _stores_reached(members: StoreMembership, verdict: Verdict, companies: set[int]) -> dict[str, int]:
    """Per candidate app, the stores (home stores) its explained people belong to."""
    if not verdict.explained or not companies:
        return {}
    explained = verdict.explained
    return {slug: members.stores_reached(people, companies=companies) for slug, people in explained.items()}


def _to_timeline(db: Database, result: Attribution, incident_ref: str, actor: str) -> None:
    """The attribution on the incident's timeline (kind ``attribution``) and a security event."""
    summary = result.to_dict()
    v = result.verdict
    text = (
        f"dump {result.dump.get('name')}: {result.rows_matched:,} of {result.rows:,} rows matched to platform"
        f" customers ({result.ambiguous:,} fit several);"
        f" source {v.source}"
        + (f" ({', '.join(v.apps)})" if v.apps else "")
        + f", confidence {v.confidence}"
        + (f", {len(v.canary_hits)} canary hit(s)" if v.canary_hits else "")
    )
    data = {
        k: summary[k]
        for k in (
            "rows",
            "rows_matched",
            "columns",
            "verdict",
            "candidates",
            "unexplained",
            "snapshot",
            "dump",
        )
    }
    with db.session() as session:
        incident = get_incident(session, incident_ref)
        add_timeline(session, incident, actor=actor, kind=TimelineKind.ATTRIBUTION, text=text, **data)
        app_id = app_id_of(session, v.apps[0]) if v.apps else None
        record(
            session,
            EventTag.DUMP_ATTRIBUTED,
            actor=actor,
            app_id=app_id,
            incident=incident.public_id,
            source=v.source,
            apps=v.apps,
            confidence=v.confidence,
            rows=result.rows,
            rows_matched=result.rows_matched,
        )
