"""Admin API: ``POST /admin/attributions`` takes a leaked dump as a multipart upload and returns the verdict.

The body is capped while it streams in (``web.body_limit.BodyLimit``: an announced ``Content-Length``
over ``attribution_upload_max_bytes`` is refused before any byte is read, a chunked body as soon as it
passes the cap); ``attribution.upload`` copies, caps and deletes the file (the console's upload form
shares it). A broken file is a 422 problem carrying the
reader's code (``dump_empty``, ``dump_binary``…).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile

from appwarden.attribution.upload import attribute_upload
from appwarden.web.deps import AdminDep, DatabaseDep, SettingsDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses

router = APIRouter(prefix="/admin", tags=["admin: attribution"], responses=problem_responses(ADMIN_AUTH))


@router.post(
    "/attributions",
    responses=problem_responses(
        {
            404: "`incident_not_found`: `incident` names no incident.",
            413: "`payload_too_large`: the upload is over `attribution_upload_max_bytes`.",
            422: "`invalid_parameter`, or the code of a broken dump (`dump_empty`, `dump_binary`…).",
        }
    ),
)
async def upload_dump(
    actor: AdminDep,
    db: DatabaseDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="The leaked dump (CSV, TSV, JSON, JSON Lines, XLSX).")],
    incident: Annotated[str | None, Form(description="Incident to add the result to (inc_…).")] = None,
) -> dict[str, Any]:
    """Attribute an uploaded dump; the verdict JSON of ``appwarden attribute --json``."""
    result = await attribute_upload(db, settings, file, incident=incident, actor=actor)
    return result.to_dict()
