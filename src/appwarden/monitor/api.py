"""``/admin/alerts``: the monitor's alerts for the security team (admin key).

- ``GET /admin/alerts`` — newest first; ``state`` (open, acknowledged, all), ``app``, ``detector``, ``limit``;
- ``GET /admin/alerts/{id}`` — one alert;
- ``POST /admin/alerts/{id}/ack`` — acknowledge it (a ``monitor:alert:acknowledged`` event);
- ``GET /admin/alerts/throttles`` — the throttles set by alerts' actions (in force, or all);
- ``POST /admin/alerts/unthrottle`` — lift the throttles of an alert or an app (``monitor:app:unthrottled``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Body as BodyParam
from pydantic import ConfigDict, Field

from appwarden.errors import InvalidInput
from appwarden.monitor import service, throttles
from appwarden.monitor.runtime import monitor_of
from appwarden.web.deps import AdminDep, DatabaseDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses
from appwarden.web.text import Body

router = APIRouter(prefix="/admin/alerts", tags=["admin: alerts"], responses=problem_responses(ADMIN_AUTH))
NOT_FOUND = {404: "`alert_not_found`: no alert has this id."}


class AckIn(Body):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000, description="What was done about it.")


class UnthrottleIn(Body):
    model_config = ConfigDict(extra="forbid")

    alert: str | None = Field(default=None, max_length=60, description="Lift this alert's throttles (alr_…).")
    app: str | None = Field(default=None, max_length=200, description="Or every throttle of this app.")
    reason: str = Field(max_length=2000, description="Why (recorded in the security history).")


# Before ``/{alert_id}``: "throttles" is not an alert id.
@router.get(
    "/throttles",
    summary="List throttles",
    responses=problem_responses(
        {
            404: "`app_not_found`: the `app` filter names no app.",
            422: "`invalid_parameter`: `all` is not a boolean.",
        }
    ),
)
def list_throttles(
    actor: AdminDep,
    db: DatabaseDep,
    app: Annotated[str | None, Query(description="App slug or client id.")] = None,
    all_: Annotated[bool, Query(alias="all", description="Lifted and expired ones too.")] = False,
) -> dict[str, Any]:
    """Throttles newest first: `{"id", "alert", "app", "company", "factor", "expires_at", "state", …}`."""
    with db.session() as session:
        rows = throttles.list_throttles(session, app_ref=app, include_past=all_)
        return {"data": throttles.describe(session, rows)}


@router.post(
    "/unthrottle",
    summary="Lift throttles",
    responses=problem_responses(
        {
            404: "`alert_not_found` / `app_not_found`: the alert or app named does not exist.",
            409: "`not_throttled`: nothing the alert or app names is throttled now.",
            422: "`invalid_parameter`: name exactly one of `alert` and `app`; `reason_required`: no reason.",
        }
    ),
)
def unthrottle(request: Request, body: UnthrottleIn, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Give the connection its usual quotas back at once (this worker; the others within seconds)."""
    if (body.alert is None) == (body.app is None):
        raise InvalidInput("name exactly one of alert and app", parameter="alert")
    ref = body.alert if body.alert is not None else body.app
    assert ref is not None
    with db.session() as session:
        rows = throttles.lift(session, ref, actor=actor, reason=body.reason)
        data = throttles.describe(session, rows)
    monitor_of(request.app).quotas.forget_throttles()
    return {"data": data}


@router.get(
    "",
    summary="List alerts",
    responses=problem_responses(
        {
            404: "`app_not_found`: the `app` filter names no app.",
            422: "`invalid_parameter`: an unknown `detector` or `state`, or `limit` out of 1..1000.",
        }
    ),
)
def list_alerts(
    actor: AdminDep,
    db: DatabaseDep,
    state: Annotated[str, Query(description="open, acknowledged or all.")] = "open",
    app: Annotated[str | None, Query(description="App slug or client id.")] = None,
    detector: Annotated[str | None, Query(description="One detector id, e.g. `mirror`.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alerts newest first: each `{"alert": {...}, "acknowledged": null | {"at", "by", "note"}}`."""
    with db.session() as session:
        rows = service.list_alerts(session, app_ref=app, detector=detector, state=state, limit=limit)
        return {"data": service.describe(session, rows)}


@router.get("/{alert_id}", summary="Show an alert", responses=problem_responses(NOT_FOUND))
def show_alert(alert_id: str, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """One alert with its acknowledgement."""
    with db.session() as session:
        return service.describe(session, [service.get_alert(session, alert_id)])[0]


@router.post(
    "/{alert_id}/ack",
    summary="Acknowledge an alert",
    responses=problem_responses(
        NOT_FOUND | {409: "`alert_acknowledged`: the alert was acknowledged already (by whom and when)."}
    ),
)
def ack_alert(
    alert_id: str, actor: AdminDep, db: DatabaseDep, body: Annotated[AckIn | None, BodyParam()] = None
) -> dict[str, Any]:
    """Mark the alert handled; recorded as a security event."""
    with db.session() as session:
        alert = service.acknowledge(session, alert_id, actor=actor, note=body.note if body else None)
        return service.describe(session, [alert])[0]
