"""Synthetic canary members: pure functions that draw realistic ja_JP member values.

Values come from the same vocabulary and in the same formats as the demo's real members
(``demo.generator``: ``姓 名`` with a space, kana ``セイ メイ``, ``050-1000-1234``,
``given.family123@domain``, ``…県…市…1丁目2番3号``), so nothing in a canary's format tells it apart
from the company's other members. The random source is passed in: the service uses the OS CSPRNG so
that nobody can predict which numbers or addresses become canaries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from faker.providers.address.ja_JP import Provider as AddressProvider
from faker.providers.person.ja_JP import Provider as PersonProvider

from appwarden.errors import InvalidInput

# The demo generator's shares and weights (kept in step by eye: both model the same membership).
RANKS = ("regular", "silver", "gold", "platinum")
RANK_WEIGHTS = (0.62, 0.24, 0.11, 0.03)
FEMALE_SHARE = 0.55
MEAN_POINTS = 800
MAX_POINTS = 50_000

_LAST = list(PersonProvider.last_name_pairs.keys())  # (kanji, kana, romaji)
_LAST_WEIGHTS = [float(w) for w in PersonProvider.last_name_pairs.values()]
_FEMALE = list(PersonProvider.first_name_female_pairs)
_MALE = list(PersonProvider.first_name_male_pairs)
PREFECTURES: tuple[str, ...] = tuple(AddressProvider.prefectures)


@dataclass(frozen=True, slots=True)
class PhonePool:
    """An inclusive range of national numbers (leading 0 kept) the operator owns for canaries."""

    first: int
    last: int
    digits: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def national(self, number: int) -> str:
        """The national form (``05010001234``) of a number in the pool."""
        return f"{number:0{self.digits}d}"


def parse_pool(spec: str) -> PhonePool:
    """``"05010000000-05010999999"`` (two national numbers, digits only) → :class:`PhonePool`."""
    parts = spec.replace(" ", "").split("-")
    if len(parts) != 2:
        raise InvalidInput(
            f"canary phone pool {spec!r} must be FIRST-LAST national numbers, e.g. 05010000000-05010999999",
            parameter="canary_phone_pool",
        )
    first, last = parts
    ok = (
        first.isdigit()
        and last.isdigit()
        and len(first) == len(last)
        and len(first) in (10, 11)
        and first.startswith("0")
        and int(first) <= int(last)
    )
    if not ok:
        raise InvalidInput(
            f"canary phone pool {spec!r}: both ends must be national numbers of the same length "
            "(10 or 11 digits, leading 0), first <= last",
            parameter="canary_phone_pool",
        )
    return PhonePool(int(first), int(last), len(first))


def format_phone(national: str) -> str:
    """How members' phones are written: 3-4-4 for 11-digit numbers (050/070/080/090), 2-4-4 otherwise."""
    if len(national) == 11:
        return f"{national[:3]}-{national[3:7]}-{national[7:]}"
    return f"{national[:2]}-{national[2:6]}-{national[6:]}"


def to_e164(national: str) -> str:
    """``05010001234`` → ``+815010001234`` (the trunk 0 dropped)."""
    return "+81" + national[1:]


def prefecture_of(address: str | None) -> str | None:
    """The prefecture an address starts with, if any."""
    if not address:
        return None
    return next((p for p in PREFECTURES if address.startswith(p)), None)


def member(rng: random.Random, *, prefecture: str | None, today: date) -> dict[str, Any]:
    """One synthetic member's values (no phone or email: the service draws those against the pool and
    the blind index). ``email_local`` is the ``given.family`` part the service completes."""
    family = rng.choices(_LAST, weights=_LAST_WEIGHTS)[0]
    female = rng.random() < FEMALE_SHARE
    given = rng.choice(_FEMALE if female else _MALE)
    # Most members live in their company's prefecture, as in the generator.
    pref = prefecture if prefecture and rng.random() < 0.85 else rng.choice(PREFECTURES)
    address = (
        f"{pref}{rng.choice(AddressProvider.cities)}{rng.choice(AddressProvider.towns)}"
        f"{rng.randint(1, 9)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
    )
    born = today - timedelta(days=rng.randint(18 * 365, 85 * 365))
    points = min(int(rng.expovariate(1 / MEAN_POINTS)) + 1, MAX_POINTS)
    return {
        "name": f"{family[0]} {given[0]}",
        "name_kana": f"{family[1]} {given[1]}",
        "email_local": f"{given[2].lower()}.{family[2].lower()}",
        "address": address,
        "birthday": born,
        "gender": "female" if female else "male",
        "points": points,
        "rank": rng.choices(RANKS, weights=RANK_WEIGHTS)[0],
    }
