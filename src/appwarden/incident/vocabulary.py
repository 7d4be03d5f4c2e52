"""The incident package's vocabulary: the states and kinds other packages read and write by name.

Defined once here, outside ``models``, so that a package naming them never touches the tables.
"""

from __future__ import annotations

from enum import StrEnum


class IncidentStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TimelineKind(StrEnum):
    """What a timeline entry records (stored as its value in ``incident_timeline.kind``)."""

    OPENED = "opened"
    KILL_SWITCH = "kill_switch"
    COUNTS = "counts"
    NOTICE = "notice"
    REPORT = "report"
    ATTRIBUTION = "attribution"
    CANARY = "canary"
    NOTE = "note"
    FACT = "fact"
    CLOSED = "closed"


class NoticeStatus(StrEnum):
    """A notice delivery's state: written ``pending``, claimed ``sending``, then ``sent`` or ``failed``
    (a failed one is retried)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
