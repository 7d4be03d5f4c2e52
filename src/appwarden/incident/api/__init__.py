"""Admin API for incidents (``/admin/incidents``), composed from each part's routes."""

from __future__ import annotations

from fastapi import APIRouter

from appwarden.incident.api import blast, notices, record

router = APIRouter()
for part in (record, blast, notices):
    router.include_router(part.router)
