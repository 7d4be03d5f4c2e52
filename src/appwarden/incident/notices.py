"""Store notices: one message per affected company, in Japanese and English, from Jinja2 templates.

Each notice says what happened, which fields and how many of *that company's* customers per field, what
the platform did and when, the company's own APPI duties and deadlines, and a contact; the preliminary
report drafts (ja and en, Markdown) ride along as attachments. Companies without exposed customers get
nothing: they are not in :attr:`IncidentFacts.companies` to begin with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from appwarden.db.base import utcnow
from appwarden.incident.context import CompanyFacts, IncidentFacts
from appwarden.incident.render import render
from appwarden.incident.reports import company_context, draft_report


def notice_recipients(company_email: str | None, store_emails: Iterable[str | None]) -> list[str]:
    """The company's address, else its affected stores' distinct addresses (in the order given).

    The company is the data controller and owns the duties, so its address comes first; a company that
    gave none is still reached through its stores rather than not told at all.
    """
    if company_email:
        return [company_email]
    return list(dict.fromkeys(e for e in store_emails if e))


@dataclass(frozen=True)
class NoticeDraft:
    """A company's notice: both languages and its attachments. It goes to the company's address (the data
    controller, which owns the duties), or to its affected stores' addresses when it has none."""

    incident: str
    company: CompanyFacts
    subject: str
    markdown_ja: str
    markdown_en: str
    attachments: tuple[tuple[str, str], ...]  # (filename, Markdown text)
    message_id: str
    created_at: datetime

    @property
    def recipients(self) -> list[str]:
        """Where the notice goes: the company's address; failing that, the addresses of its affected
        stores (the company's own stores, named in the notice). Empty means it cannot be delivered."""
        return notice_recipients(self.company.email, [s.get("email") for s in self.company.stores])

    @property
    def recipient(self) -> str | None:
        """The recipients as one header value; None when there is nobody to send to."""
        return ", ".join(self.recipients) or None

    @property
    def basename(self) -> str:
        return f"notice-{self.company.id}"

    def markdown(self) -> str:
        """Both languages in one Markdown document (the ``.md`` file)."""
        return f"{self.markdown_ja}\n---\n\n{self.markdown_en}"

    def message(self, sender: str) -> EmailMessage:
        """The notice as a MIME message: a Japanese and an English text part (Content-Language set), and the
        report drafts as ``text/markdown`` attachments; UTF-8 throughout."""
        msg = EmailMessage(policy=SMTP)
        msg["Subject"] = self.subject
        msg["From"] = sender
        msg["To"] = self.recipient or "undisclosed-recipients:;"
        msg["Date"] = format_datetime(self.created_at)
        # Stable per (incident, company): a receiving system can drop a duplicate if a retry ever repeats.
        msg["Message-ID"] = self.message_id
        msg["X-Appwarden-Incident"] = self.incident
        msg["X-Appwarden-Company"] = self.company.id
        msg.set_content(self.markdown_ja, subtype="plain", charset="utf-8", cte="base64")
        msg["Content-Language"] = "ja"
        msg.add_attachment(
            self.markdown_en, subtype="plain", charset="utf-8", cte="base64", disposition="inline"
        )
        list(msg.iter_parts())[-1]["Content-Language"] = "en"
        for filename, text in self.attachments:
            msg.add_attachment(
                text.encode(), maintype="text", subtype="markdown", filename=filename, cte="base64"
            )
            # bytes attachments carry no charset unless told; these are UTF-8.
            list(msg.iter_parts())[-1].set_param("charset", "utf-8")
        return msg


def message_id(incident: str, company: str, sender: str) -> str:
    """``<inc_….co_…@domain>`` (short enough not to be folded), the domain from the sender address."""
    domain = sender.rpartition("@")[2] or "appwarden.invalid"
    return f"<{incident}.{company}@{domain}>"


def draft_notices(facts: IncidentFacts, *, contact: str, now: datetime | None = None) -> list[NoticeDraft]:
    """One notice per affected company (``persons_exposed > 0``), none for anyone else."""
    now = now or utcnow()
    drafts: list[NoticeDraft] = []
    for company in facts.companies:
        reports = [
            draft_report(facts, company, kind="preliminary", lang=lang, contact=contact, now=now)
            for lang in ("ja", "en")
        ]
        attachments = [(r.filename("md"), r.markdown) for r in reports]
        names = [name for name, _ in attachments]
        texts = {
            lang: render(
                "notice",
                lang,
                attachments=names,
                **company_context(facts, company, lang=lang, contact=contact, now=now),
            )
            for lang in ("ja", "en")
        }
        subject_ja = texts["ja"].splitlines()[0].lstrip("# ").strip()
        subject_en = texts["en"].splitlines()[0].lstrip("# ").strip()
        drafts.append(
            NoticeDraft(
                incident=facts.id,
                company=company,
                subject=f"{subject_ja} / {subject_en}",
                markdown_ja=texts["ja"],
                markdown_en=texts["en"],
                attachments=tuple(attachments),
                message_id=message_id(facts.id, company.id, contact),
                created_at=now,
            )
        )
    return drafts


def write_notices(drafts: list[NoticeDraft], out: Path, *, sender: str) -> list[Path]:
    """Write ``notice-co_….eml`` and ``notice-co_….md`` per draft into ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    rendered = [(d, d.message(sender).as_bytes(), d.markdown().encode()) for d in drafts]
    paths: list[Path] = []
    for draft, eml, md in rendered:
        for suffix, body in ((".eml", eml), (".md", md)):
            path = out / f"{draft.basename}{suffix}"
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(body)
            tmp.replace(path)
            paths.append(path)
    return paths
