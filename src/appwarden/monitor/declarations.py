"""What a vendor declared its app would use, per connected company: the quotas' and detectors' yardstick.

Declarations belong to the marketplace's screening (issue 11, built in parallel). Until its answer is
registered here, every connection is held to the settings defaults (``APPWARDEN_DECLARED_*``, see
docs/monitoring.md). The marketplace side provides one function::

    def declared_volume(session: Session, app_id: int, company_id: int) -> DeclaredVolume | None

(the app version's declaration as approved, for that connected company; None when the app has none),
and ``wiring.wire()`` registers it with ``declared_volume_source.register(...)``. A registered source
that answers None falls back to the defaults too: an undeclared app is not unlimited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from appwarden.config import Settings


@dataclass(frozen=True, slots=True)
class DeclaredVolume:
    """Declared use of one connection (app × company): average and peak, people per day and requests
    per minute."""

    people_per_day_avg: int
    people_per_day_peak: int
    requests_per_minute_avg: int
    requests_per_minute_peak: int
    declared: bool = True  # False for the settings' stand-in (alerts say which yardstick was used)


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
