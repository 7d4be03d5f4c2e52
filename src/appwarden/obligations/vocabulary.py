"""The vendor obligations' enumerations (defined once, here)."""

from __future__ import annotations

from enum import StrEnum


class ErasureTopic(StrEnum):
    """What an erasure request asks of the vendor (the ``X-Appwarden-Topic`` header)."""

    COMPANY_REDACT = "company.redact"  # a company disconnected 48 h ago: delete everything of it
    CUSTOMER_REDACT = "customer.redact"  # one person asked to be erased
    CUSTOMER_DATA_REQUEST = "customer.data_request"  # one person asked what the vendor holds
    RETENTION_EXPIRED = "retention.expired"  # people held past the retention the vendor accepted
    ENDPOINT_TEST = "endpoint.test"  # the review's check of the endpoint (no outbox row)


# The topics that ask the vendor to erase (and so to attest it); a data request asks for disclosure.
ERASING_TOPICS: frozenset[str] = frozenset(
    {ErasureTopic.COMPANY_REDACT, ErasureTopic.CUSTOMER_REDACT, ErasureTopic.RETENTION_EXPIRED}
)


class ErasureStatus(StrEnum):
    """Where an erasure request's delivery stands."""

    PENDING = "pending"  # owed: sent (again) once ``next_attempt_at`` has come
    DELIVERED = "delivered"  # the vendor's endpoint answered 2xx
    DEAD = "dead"  # every attempt failed: dead-lettered, a security event says so


class AttestationState(StrEnum):
    """Where an erasure request's attestation stands."""

    NOT_DELIVERED = "not_delivered"  # not delivered yet: the deadline starts at delivery
    DUE = "due"  # delivered, attestation owed before the deadline
    OVERDUE = "overdue"  # past the deadline without an attestation
    ATTESTED = "attested"  # the vendor attested it (immutable)
    NOT_REQUIRED = "not_required"  # a data request: disclosure, nothing to erase
