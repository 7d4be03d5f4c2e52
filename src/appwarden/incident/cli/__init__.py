"""``appwarden incident …``: each part of incident response registers its commands here."""

from __future__ import annotations

import typer

from appwarden.incident.cli import blast, notices, record

incident_app = typer.Typer(
    help="Incident response: kill switch, blast radius, notices, reports.", no_args_is_help=True
)
for part in (record, blast, notices):
    part.register(incident_app)
