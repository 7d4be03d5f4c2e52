"""What a vendor declared its app would use, per connected company: the quotas' and detectors' yardstick.

Declarations belong to the marketplace: the volume the vendor declared in the app's version in force
(:func:`from_marketplace`, registered by ``wiring.wire()``). An app with no declaration (grandfathered
apps, listed before screening) is held to the settings defaults (``APPWARDEN_DECLARED_*``, see
docs/monitoring.md): an undeclared app is not unlimited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.marketplace import service as marketplace


@dataclass(frozen=True, slots=True)
class DeclaredVolume:
    """Declared use of one connection (app × company): average and peak, people per day and requests
    per minute."""

    people_per_day_avg: int
    people_per_day_peak: int
    requests_per_minute_avg: int
    requests_per_minute_peak: int
    declared: bool = True  # False for the settings' stand-in (alerts say which yardstick was used)
    # Distinct people a day the connection may mint restricted tokens for; None: not declared (the
    # marketplace's volume declaration has no such figure yet), ``monitor.restricted`` then derives one.
    restricted_people_per_day: int | None = None
    # The vendor declared, and review approved with the version in force, that the app reads whole
    # member lists (a full sync): ``mirror`` does not alert on it.
    full_sync: bool = False


Source = Callable[[Session, int, int], "DeclaredVolume | None"]


class DeclaredVolumeSource:
    """The slot the marketplace's answer is registered in (one answer: a declaration has one owner)."""

    def __init__(self) -> None:
        self._source: Source | None = None

    def register(self, source: Source) -> None:
        """Use ``source`` for every connection from now on (registering again replaces it)."""
        self._source = source

    @property
    def registered(self) -> Source | None:
        return self._source

    def __call__(self, session: Session, app_id: int, company_id: int, settings: Settings) -> DeclaredVolume:
        """The connection's declaration, or the settings defaults when there is none."""
        declared = self._source(session, app_id, company_id) if self._source is not None else None
        return declared if declared is not None else defaults(settings)


def defaults(settings: Settings) -> DeclaredVolume:
    """The stand-in declaration of a connection whose app has declared nothing."""
    return DeclaredVolume(
        people_per_day_avg=settings.declared_people_per_day_avg,
        people_per_day_peak=settings.declared_people_per_day_peak,
        requests_per_minute_avg=settings.declared_requests_per_minute_avg,
        requests_per_minute_peak=settings.declared_requests_per_minute_peak,
        declared=False,
    )


declared_volume_source = DeclaredVolumeSource()


def from_marketplace(session: Session, app_id: int, company_id: int) -> DeclaredVolume | None:
    """The declaration of the app's version in force (the same for every connected company), from the
    marketplace; registered by ``appwarden.wiring``."""
    volume = marketplace.declared_volume_of(session, app_id)
    if volume is None:
        return None
    people, requests = volume["people_per_day"], volume["requests_per_minute"]
    return DeclaredVolume(
        people_per_day_avg=people["average"],
        people_per_day_peak=people["peak"],
        requests_per_minute_avg=requests["average"],
        requests_per_minute_peak=requests["peak"],
        full_sync=bool(volume.get("full_sync", False)),
    )
