"""An uploaded dump, attributed: the admin API's ``POST /admin/attributions`` and the console's upload
form share this, so both cap, name and delete the file the same way.

The body was capped while it streamed in (``web.body_limit.BodyLimit``); the file part is copied, under
the uploaded file's own name, into a private temporary directory (so every error names the uploaded
file, never a temporary one), checked against the cap again, and deleted when the work ends.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from appwarden.attribution.service import Attribution, attribute_dump
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import InvalidInput, PayloadTooLarge

CHUNK = 1 << 20


async def attribute_upload(
    db: Database, settings: Settings, file: UploadFile, *, incident: str | None, actor: str
) -> Attribution:
    """Attribute ``file`` (joining ``incident``'s timeline when one is named), as ``actor``."""
    cap = settings.attribution_upload_max_bytes
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
        return await run_in_threadpool(
            attribute_dump, db, tmp, settings=settings, incident=incident, actor=actor, display_name=name
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
