"""APPI report drafts: the report to the Personal Information Protection Commission
(個人情報保護委員会への報告, 施行規則 第8条) for each affected company, with the notice to the affected
persons (本人への通知) attached.

Each affected company is the data controller (委託元) that entrusted its members' data to the app's vendor
(委託先); each files its own report, with its own numbers. Unknowns read "調査中 / under investigation".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.errors import InvalidInput, NotFound
from appwarden.incident import appi
from appwarden.incident.context import CompanyFacts, IncidentFacts
from appwarden.incident.pdf import markdown_to_pdf
from appwarden.incident.render import render, sections
from appwarden.incident.service import add_timeline, get_incident
from appwarden.incident.vocabulary import TimelineKind
from appwarden.incident.wording import fact_texts

KINDS = ("preliminary", "final")
FORMATS = ("md", "json", "pdf")
PLATFORM = "appwarden"
# The nine items of 施行規則 第8条第1項, in the templates' section order.
ITEM_KEYS = (
    "summary",  # 概要
    "fields",  # 漏えい等が発生し、又は発生したおそれがある個人データの項目
    "persons",  # 本人の数
    "cause",  # 原因
    "secondary_damage",  # 二次被害又はそのおそれの有無及びその内容
    "response_to_persons",  # 本人への対応の実施状況
    "publication",  # 公表の実施状況
    "prevention",  # 再発防止のための措置
    "other",  # その他参考となる事項
)


def company_context(
    facts: IncidentFacts, company: CompanyFacts, *, lang: str, contact: str, now: datetime | None = None
) -> dict[str, Any]:
    """What a notice or report template about ``company`` is rendered from (plain data, no I/O)."""
    exposed = appi.exposed_fields(company.fields)
    return {
        "platform": PLATFORM,
        "contact": contact,
        "incident": facts,
        "apps": facts.apps,
        # Per-app kill times say what the platform did, in the reader's language; the timeline's own
        # entries stand in only when no app records one.
        "actions": [] if any(a.killed_at for a in facts.apps) else [a.in_lang(lang) for a in facts.actions],
        "company": company,
        "fields": [{"field": f, "label": appi.label(f, lang), "exposed": n} for f, n in exposed.items()],
        "deadlines": appi.deadlines(facts.aware_at, unauthorized_access=facts.unauthorized_access),
        "reasons": appi.mandatory_reasons(
            persons=company.persons, unauthorized_access=facts.unauthorized_access, fields=exposed
        ),
        "risks": appi.risks(exposed, lang),
        # Generated facts in the reader's language; what the operator typed, as typed.
        "known": fact_texts(facts.known, lang),
        "unknown": fact_texts(facts.unknown, lang),
        "stopped": any(a.killed_at for a in facts.apps)
        or any(a.kind == TimelineKind.KILL_SWITCH for a in facts.actions),
        "generated_at": now or utcnow(),
    }


@dataclass(frozen=True)
class ReportDraft:
    """One company's report draft in one language; ``markdown`` is the source of every format."""

    kind: str
    lang: str
    company_id: str
    company_name: str
    markdown: str
    data: dict[str, Any]

    def filename(self, fmt: str) -> str:
        return f"report-{self.kind}-{self.company_id}-{self.lang}.{fmt}"

    def render(self, fmt: str) -> bytes:
        """The draft as ``md``, ``json`` or ``pdf`` bytes."""
        if fmt == "md":
            return self.markdown.encode()
        if fmt == "json":
            return orjson.dumps(self.data, option=orjson.OPT_INDENT_2) + b"\n"
        if fmt == "pdf":
            return markdown_to_pdf(self.markdown, title=self.data["title"])
        raise InvalidInput(f"unknown format {fmt!r} (choose one of {', '.join(FORMATS)})")


def draft_report(
    facts: IncidentFacts,
    company: CompanyFacts,
    *,
    kind: str,
    lang: str,
    contact: str,
    now: datetime | None = None,
) -> ReportDraft:
    """The ``kind`` report for ``company`` in ``lang``: Markdown plus the same content as structured data."""
    check_kind_lang(kind=kind, lang=lang)
    ctx = company_context(facts, company, lang=lang, contact=contact, now=now)
    person_notice = render("person_notice", lang, **ctx)
    markdown = render("report", lang, kind=kind, person_notice=person_notice, **ctx)
    parts = sections(markdown)
    if len(parts) != len(ITEM_KEYS) + 1:  # the nine items, then the notice to the persons
        raise RuntimeError(f"report template has {len(parts)} sections, expected {len(ITEM_KEYS) + 1}")
    deadlines: appi.Deadlines = ctx["deadlines"]
    reasons: list[appi.Reason] = ctx["reasons"]
    data: dict[str, Any] = {
        "title": markdown.splitlines()[0].lstrip("# ").strip(),
        "incident": facts.id,
        "kind": kind,
        "lang": lang,
        "generated_at": ctx["generated_at"].isoformat(),
        "aware_at": facts.aware_at.isoformat(),
        "controller": {"id": company.id, "name": company.name, "email": company.email, "role": "委託元"},
        "processors": [
            {"vendor": a.vendor, "contact": a.vendor_email, "app": a.slug, "role": "委託先"}
            for a in facts.apps
        ],
        "joint_filing": True,
        "deadlines": deadlines.to_dict(lang),
        "mandatory": {"required": bool(reasons), "reasons": [r.to_dict() for r in reasons]},
        "persons": company.persons,
        "fields": [
            {"field": f["field"], "label": f["label"], "persons": f["exposed"]} for f in ctx["fields"]
        ],
        "stores": [
            {"id": s["id"], "name": s["name"], "persons": s["persons_exposed"]} for s in company.stores
        ],
        "unauthorized_access": facts.unauthorized_access,
        "items": [
            {"key": key, "heading": part["heading"], "text": part["body"]}
            for key, part in zip(ITEM_KEYS, parts, strict=False)
        ],
        "person_notice": person_notice,
    }
    return ReportDraft(kind, lang, company.id, company.name, markdown, data)


def draft_reports(
    facts: IncidentFacts,
    *,
    kind: str,
    lang: str,
    contact: str,
    company: str | None = None,
    now: datetime | None = None,
) -> list[ReportDraft]:
    """Drafts for every affected company, or for the one named (``co_…`` or its name)."""
    check_kind_lang(kind=kind, lang=lang)
    if company is not None:
        chosen = facts.company(company)
        if chosen is None:
            raise NotFound(
                f"company {company!r} has no exposed customers in incident {facts.id}",
                code="company_not_affected",
            )
        targets = [chosen]
    else:
        targets = facts.companies
    return [draft_report(facts, c, kind=kind, lang=lang, contact=contact, now=now) for c in targets]


def write_reports(
    db: Database,
    facts: IncidentFacts,
    drafts: list[ReportDraft],
    *,
    fmt: str,
    out: Path | None,
    single_file: bool,
    actor: str,
) -> list[Path]:
    """Render every draft first (so a failure writes nothing), write them under ``out`` (a file when
    ``single_file``, else a directory), and put one ``report`` entry on the incident's timeline."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (choose one of {', '.join(FORMATS)})")
    rendered = [(d, d.render(fmt)) for d in drafts]
    paths: list[Path] = []
    if out is not None:
        if single_file and not out.is_dir():
            if len(rendered) != 1:
                raise InvalidInput("--out is a file, but there is more than one report; give a directory")
            out.parent.mkdir(parents=True, exist_ok=True)
            targets = [out]
        else:
            out.mkdir(parents=True, exist_ok=True)
            targets = [out / d.filename(fmt) for d, _ in rendered]
        for path, (_, body) in zip(targets, rendered, strict=True):
            _write_atomic(path, body)
            paths.append(path)
    record_drafted(db, facts, drafts, fmt=fmt, actor=actor)
    return paths


def record_drafted(
    db: Database, facts: IncidentFacts, drafts: list[ReportDraft], *, fmt: str, actor: str
) -> None:
    """Put a ``report`` entry on the timeline: which report, for whom, in what form."""
    if not drafts:
        return
    kind, lang = drafts[0].kind, drafts[0].lang
    label = "preliminary (速報)" if kind == "preliminary" else "final (確報)"
    with db.session() as session:
        incident = get_incident(session, facts.id)
        add_timeline(
            session,
            incident,
            actor=actor,
            kind=TimelineKind.REPORT,
            text=f"{label} report drafted for {len(drafts)} compan{'y' if len(drafts) == 1 else 'ies'} "
            f"({lang}, {fmt})",
            report_kind=kind,
            lang=lang,
            format=fmt,
            companies=[d.company_id for d in drafts],
        )


def check_kind_lang(*, kind: str, lang: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"unknown report kind {kind!r} (choose preliminary or final)")
    if lang not in ("ja", "en"):
        raise InvalidInput(f"unknown language {lang!r} (choose ja or en)")


def _write_atomic(path: Path, body: bytes) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(body)
    tmp.replace(path)
