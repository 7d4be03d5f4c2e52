"""Where a delivery came from, in the form the monitor keeps: a credential (the grant behind an access
token, hashed) and a client network (the caller's IPv4 /24 or IPv6 /48 prefix, never its address).

``new_credential_volume`` (``monitor.credentials``) watches the first hours of each; the tally notes
them on the write path and resolves tokens to grants when it folds.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Collection
from enum import StrEnum
from functools import lru_cache

from sqlalchemy.orm import Session

from appwarden.oauth.service import grant_families


class SourceKind(StrEnum):
    CREDENTIAL = "credential"  # a grant: an authorisation and every rotation of its tokens
    NETWORK = "network"  # a client address's prefix


TOKEN = "token"  # the tally's provisional kind: an access token id, resolved to its grant at the fold


@lru_cache(maxsize=4096)
def network_of(host: str | None) -> str | None:
    """The caller's network: ``203.0.113.0/24`` for IPv4 (an IPv4-mapped IPv6 address counts as IPv4),
    the /48 for IPv6; None for anything that is not an IP address (a test client's name, a socket)."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def credential_keys(session: Session, token_ids: Collection[int]) -> dict[int, str]:
    """``{token id: credential key}``: a hash of the token's grant (its family), so every rotation of
    one authorisation is one credential and the monitor's table holds no oauth identifier."""
    families = grant_families(session, token_ids)
    return {
        tid: hashlib.sha256(f"grant:{family}".encode()).hexdigest()[:32] for tid, family in families.items()
    }
