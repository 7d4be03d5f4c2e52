"""Admin API routes for incidents: blast."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin/incidents", tags=["admin: incidents"])
