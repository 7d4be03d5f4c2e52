"""The verdict: which app(s) explain the dumped people and fields, or that none does. Pure functions over
roaring bitmaps of customer internal ids (loading them from the ledger index is the service's job).

A matched person is *explained* by an app when, for every field the dump holds for them, the app
received that person's field in a mode that reveals what the dump shows: a full value only through a
``raw`` delivery, a masked value through ``raw`` or ``masked``, a token through ``token``.

- ``coverage`` (per app) = explained people / matched people.
- A greedy cover picks the apps that together explain the matched people (most new people first; ties
  go to the app that received fewer people overall, the more specific explanation).
- A field that no app delivered revealingly for most of the people holding it (a birthday no app got,
  a full phone only ever delivered masked) is left out of the person test and flagged in
  ``unexplained.fields``: on its own it says the copy did not come (only) through the marketplace.
- ``source``: ``unknown`` when too few rows are platform people; ``platform`` when a share of matched
  people no app received, or a field no app delivered, is beyond noise; else ``app``.
- Canary hits (matched people who are canaries, issued to one connection) are proof: their apps are
  always among the verdict's apps, and the confidence is at least :data:`CANARY_CONFIDENCE`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyroaring import BitMap

from appwarden.marketplace.scopes import Mode

Grants = Mapping[tuple[str, str], BitMap]  # (field, mode) → people, already limited to the matched ones

MIN_MATCHED = 3  # fewer platform people than this is no basis for a verdict
MIN_MATCHED_SHARE = 0.2  # nor is a dump of which most rows are not platform people
PLATFORM_SHARE = 0.05  # matched people no app received beyond this share: not the marketplace
FIELD_NEVER_SHARE = 0.5  # a field no app delivered revealingly for at least this share of its holders
FIELD_FLAG_SHARE = 0.01  # a field the chosen apps leave unexplained for more than this share is flagged
COVER_MIN_SHARE = 0.01  # an app joins the cover only if it explains at least this share of new people
CANARY_CONFIDENCE = 0.999


@dataclass
class AppEvidence:
    """One app's deliveries of the dumped fields, per company, restricted to the matched people."""

    slug: str
    by_company: dict[str, dict[tuple[str, str], BitMap]]  # company public id → grants
    received: int = 0  # people the app received any dumped field of, overall (specificity tie-break)

    def grants(self) -> dict[tuple[str, str], BitMap]:
        """The union over companies."""
        out: dict[tuple[str, str], BitMap] = {}
        for grants in self.by_company.values():
            for key, people in grants.items():
                out[key] = out[key] | people if key in out else BitMap(people)
        return out


@dataclass
class Verdict:
    """The decision and its evidence; :meth:`to_dict` gives the verdict JSON's verdict-related keys
    (docs/architecture.md)."""

    source: str
    apps: list[str]
    confidence: float
    matched: int
    explained: dict[str, BitMap]  # app → people it explains (every candidate with coverage > 0)
    companies: dict[str, dict[str, int]]  # verdict app → company public id → explained people
    unexplained_persons: int
    unexplained_fields: list[dict[str, Any]]
    canary_hits: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def coverage(self, app: str) -> float:
        """Share of the matched people ``app`` explains."""
        return len(self.explained.get(app, ())) / self.matched if self.matched else 0.0


def _revealing(grants: Grants, name: str, kind: str) -> BitMap:
    """People whose ``name`` field the grants delivered in a mode that explains a ``kind`` cell."""
    empty = BitMap()
    raw = grants.get((name, Mode.RAW.value), empty)
    if kind == "full":
        return raw
    if kind == "masked":
        return raw | grants.get((name, Mode.MASKED.value), empty)
    return grants.get((name, Mode.TOKEN.value), empty)


def explained_by(matched: BitMap, cells: Mapping[str, Mapping[str, BitMap]], grants: Grants) -> BitMap:
    """The matched people whose every dumped cell (of the fields in ``cells``) ``grants`` explain."""
    out = BitMap(matched)
    for name, kinds in cells.items():
        for kind, people in kinds.items():
            if people:
                out -= people - _revealing(grants, name, kind)
    return out


def unexplained_cells(cells: Mapping[str, BitMap], grants: Grants, name: str) -> BitMap:
    """People holding a cell of field ``name`` that ``grants`` do not explain."""
    out = BitMap()
    for kind, people in cells.items():
        out |= people - _revealing(grants, name, kind)
    return out


def _union(grants: Sequence[Grants]) -> dict[tuple[str, str], BitMap]:
    out: dict[tuple[str, str], BitMap] = {}
    for g in grants:
        for key, people in g.items():
            out[key] = out[key] | people if key in out else BitMap(people)
    return out


def greedy_cover(matched: BitMap, explained: Mapping[str, BitMap], received: Mapping[str, int]) -> list[str]:
    """Apps that together explain the matched people, most new people first (see the module docstring)."""
    remaining = BitMap(matched)
    picked: list[str] = []
    min_gain = max(1, math.ceil(COVER_MIN_SHARE * len(matched)))
    while remaining:
        options = sorted(
            (-len(e & remaining), received.get(a, 0), a) for a, e in explained.items() if a not in picked
        )
        if not options:
            break
        gain, best = -options[0][0], options[0][2]
        if gain < min_gain:
            break
        picked.append(best)
        remaining -= explained[best]
    return picked


def decide_verdict(
    *,
    rows: int,
    rows_matched: int,
    matched: BitMap,
    cells: Mapping[str, Mapping[str, BitMap]],
    apps: Sequence[AppEvidence],
    canary_hits: Sequence[dict[str, Any]] = (),
) -> Verdict:
    """Decide ``source``, the apps, the confidence and what stays unexplained (module docstring)."""
    cells = {f: {k: p for k, p in kinds.items() if p} for f, kinds in cells.items()}
    cells = {f: kinds for f, kinds in cells.items() if kinds}
    app_grants = {a.slug: a.grants() for a in apps}
    everyone = _union(list(app_grants.values()))
    # Fields no app delivered revealingly for most of their holders: flagged, and kept out of the person
    # test (else one such column would leave every person unexplained and hide the app that leaked).
    never: dict[str, int] = {}
    for name, kinds in cells.items():
        holders = BitMap.union(*kinds.values())
        missing = unexplained_cells(kinds, everyone, name)
        if len(missing) >= FIELD_NEVER_SHARE * len(holders):
            never[name] = len(missing)
    tested = {f: k for f, k in cells.items() if f not in never}
    explained = {slug: explained_by(matched, tested, g) for slug, g in app_grants.items()}
    explained = {slug: e for slug, e in explained.items() if e}
    received = {a.slug: a.received for a in apps}
    picked = greedy_cover(matched, explained, received)
    for hit in canary_hits:  # proof beats arithmetic: a canary's app is in, whatever its share
        if hit["app"] not in picked:
            picked.append(hit["app"])
    covered = BitMap.union(BitMap(), *(explained.get(a, BitMap()) for a in picked))
    unexplained_persons = len(matched - covered)
    chosen = _union([app_grants[a] for a in picked if a in app_grants])
    flagged: list[dict[str, Any]] = []
    for name, kinds in cells.items():
        holders = BitMap.union(*kinds.values())
        missing = unexplained_cells(kinds, chosen, name)
        if name in never or len(missing) > FIELD_FLAG_SHARE * len(holders):
            full_missing = kinds.get("full", BitMap()) - chosen.get((name, "raw"), BitMap())
            reason = (
                "no app received it"
                if name in never and not any(k[0] == name for k, p in everyone.items() if p)
                else "full values, but delivered only masked or as tokens"
                if full_missing and any(chosen.get((name, m)) for m in ("masked", "token"))
                else "not delivered to these people"
            )
            flagged.append({"field": name, "persons": len(missing), "reason": reason})
    n = len(matched)
    reasons: list[str] = []
    if (n < MIN_MATCHED or rows_matched < MIN_MATCHED_SHARE * rows) and not canary_hits:
        source, confidence = "unknown", 0.0
        reasons.append(f"only {rows_matched} of {rows} rows are platform customers")
    elif never or unexplained_persons > PLATFORM_SHARE * n:
        source = "platform"
        share = max([unexplained_persons / n] + [never[f] / n for f in never]) if n else 0.0
        confidence = round(min(1.0, share) * n / (n + 1), 3)
        if unexplained_persons:
            reasons.append(f"{unexplained_persons} of {n} matched people were never delivered so by any app")
        reasons += [f"field {f!r}: no app delivered it to {never[f]} of the people holding it" for f in never]
    else:
        source = "app"
        confidence = round((1 - unexplained_persons / n) * n / (n + 1), 3)
        if canary_hits:
            confidence = max(confidence, CANARY_CONFIDENCE)
            reasons.append(
                f"{len(canary_hits)} canary record(s) issued to one connection each are in the dump"
            )
    companies = {
        a: {
            co: len(explained.get(a, BitMap()) & BitMap.union(BitMap(), *g.values()))
            for co, g in ev.by_company.items()
        }
        for ev in apps
        if (a := ev.slug) in picked
    }
    companies = {a: {co: k for co, k in per.items() if k} for a, per in companies.items()}
    return Verdict(
        source=source,
        apps=picked if source == "app" else [],
        confidence=confidence,
        matched=n,
        explained=explained,
        companies=companies,
        unexplained_persons=unexplained_persons,
        unexplained_fields=flagged,
        canary_hits=list(canary_hits),
        reasons=reasons,
    )
