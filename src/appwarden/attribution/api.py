"""Admin API: ``POST /admin/attributions`` takes a leaked dump as a multipart upload and returns the verdict.

The body is capped while it streams in (``web.body_limit.BodyLimit``: an announced ``Content-Length``
over ``attribution_upload_max_bytes`` is refused before any byte is read, a chunked body as soon as it
passes the cap); the file part is then copied, under the uploaded file's own name, into a private
temporary directory (so every error names the uploaded file, never a temporary one), checked against the
cap again, and deleted when the request ends. A broken file is a 422 problem carrying the
reader's code (``dump_empty``, ``dump_binary``…).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from appwarden.attribution.service import attribute_dump
from appwarden.errors import InvalidInput, PayloadTooLarge
from appwarden.web.deps import AdminDep, DatabaseDep, SettingsDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses

router = APIRouter(prefix="/admin", tags=["admin: attribution"], responses=problem_responses(ADMIN_AUTH))
CHUNK = 1 << 20


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
    cap = settings.attribution_upload_max_bytes  # the whole body was capped already (BodyLimit)
    name = Path(file.filename or "").name[-200:].lstrip(".") or "dump"
    folder = tempfile.mkdtemp(prefix="appwarden-dump-")  # mode 0700: nobody else reads the dump
    tmp = Path(folder) / name
    try:
        size = 0
        with open(tmp, "xb") as fh:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise PayloadTooLarge(f"the dump is over the {cap:,}-byte upload limit", limit=cap)
                fh.write(chunk)
        if incident is not None and not incident.strip():
            raise InvalidInput("incident must be an incident id (inc_…)", parameter="incident")
        result = await run_in_threadpool(
            attribute_dump, db, tmp, settings=settings, incident=incident, actor=actor, display_name=name
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result.to_dict()
