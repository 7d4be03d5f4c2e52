"""The monitor's vocabulary (detectors, severities, actions) and its one policy of thresholds.

Every threshold has a default here (``docs/monitoring.md`` says why each is what it is); an operator
overrides any of them in a TOML file named by ``APPWARDEN_MONITOR_POLICY`` (default
``<data_dir>/monitor.toml`` when that file exists). Unknown keys and out-of-range values are refused
when the policy is loaded, not when a detector first reads them.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appwarden.config import Settings
from appwarden.errors import InvalidInput


class Detector(StrEnum):
    """Every detector that raises alerts (issue 12). Implemented: ``over_declaration``, ``over_baseline``
    (``monitor.baseline``), ``mirror``, ``new_app_high_usage``, ``new_credential_volume``
    (``monitor.credentials``), ``unusual_hours``, ``probing``, ``canary_contact``,
    ``attestation_overdue`` and ``erasure_contradicted`` (``monitor.obligation_checks``); the rest are
    not yet (docs/monitoring.md)."""

    OVER_DECLARATION = "over_declaration"
    OVER_BASELINE = "over_baseline"
    MIRROR = "mirror"
    NEW_APP_HIGH_USAGE = "new_app_high_usage"
    NEW_CREDENTIAL_VOLUME = "new_credential_volume"
    UNUSUAL_HOURS = "unusual_hours"
    RESTRICTED_TOKEN_VOLUME = "restricted_token_volume"
    PROBING = "probing"
    CANARY_CONTACT = "canary_contact"
    ATTESTATION_OVERDUE = "attestation_overdue"  # ``monitor.obligation_checks``
    ERASURE_CONTRADICTED = "erasure_contradicted"  # ``monitor.obligation_checks``


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Action(StrEnum):
    """What the monitor did about an alert: the escalation ladder, mildest first (``monitor.actions``)."""

    ALERT = "alert"
    THROTTLE = "throttle"
    RESTRICT = "restrict"
    KILL = "kill"


LADDER: tuple[Action, ...] = (Action.ALERT, Action.THROTTLE, Action.RESTRICT, Action.KILL)
SEVERITY_ORDER: tuple[Severity, ...] = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


class Mode(StrEnum):
    """``audit``: a detector's alerts are raised and delivered only; ``active``: they also act."""

    AUDIT = "audit"
    ACTIVE = "active"


def _default_actions() -> dict[Severity, Action]:
    return {
        Severity.LOW: Action.ALERT,
        Severity.MEDIUM: Action.ALERT,
        Severity.HIGH: Action.THROTTLE,
        Severity.CRITICAL: Action.RESTRICT,
    }


class MonitorPolicy(BaseModel):
    """The thresholds, in one place."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Quotas: a connection may use its declared peak times this headroom before it is refused.
    quota_headroom: float = Field(default=1.0, ge=1.0, le=10.0)
    # How long a worker keeps a connection's declared volume before asking again (seconds).
    declaration_cache_seconds: float = Field(default=60.0, ge=0.0, le=3600.0)

    # over_declaration: distinct people in 24 h above the declared peak × this, or the last hour's
    # average requests per minute above the declared peak × this.
    over_declaration_factor: float = Field(default=1.2, ge=1.0, le=100.0)

    # over_baseline: per app × company × field, distinct people in an hour above the learned baseline
    # (this quantile of the learning days' hours, empty hours included, × the factor, never under the
    # floor); until the pair has this many days of history, above the declared people-per-day peak.
    baseline_learning_days: int = Field(default=7, ge=1, le=90)
    baseline_quantile: float = Field(default=0.99, ge=0.5, le=1.0)
    baseline_factor: float = Field(default=3.0, ge=1.0, le=100.0)
    baseline_min_people: int = Field(default=500, ge=1)

    # new_credential_volume: a credential (grant) or client network first seen for an established
    # app × company delivered more than max(this, the declared people-per-day average) people within
    # its first hours.
    new_credential_hours: int = Field(default=24, ge=1, le=24 * 30)
    new_credential_people: int = Field(default=2_000, ge=1)

    # mirror: share of a company's members delivered to one app within 24 h.
    mirror_share: float = Field(default=0.5, gt=0.0, le=1.0)
    mirror_min_members: int = Field(default=50, ge=1)  # smaller companies are read whole by design

    # new_app_high_usage: listed less than this many days ago and above this many people in 24 h.
    new_app_days: int = Field(default=7, ge=1, le=90)
    new_app_people_per_day: int = Field(default=5_000, ge=1)

    # unusual_hours: this hour of the day held under this share of the app × company's requests over
    # the learning days, and this hour has at least this many requests.
    unusual_hours_learning_days: int = Field(default=7, ge=1, le=90)
    unusual_hours_max_share: float = Field(default=0.01, ge=0.0, le=1.0)
    unusual_hours_min_requests: int = Field(default=100, ge=1)
    unusual_hours_timezone: str = Field(default="Asia/Tokyo")

    # probing: refused calls (401, 403, 404) by one app × company within one hour.
    probing_refusals_per_hour: int = Field(default=50, ge=1)
    # probing: calls with a revoked token, or of a killed app, by one app × company within one hour.
    probing_after_revocation_per_hour: int = Field(default=5, ge=1, le=1000)
    probing_after_kill_per_hour: int = Field(default=3, ge=1, le=1000)
    # (A presented refresh token that was already rotated, or a replayed code, is always an alert.)

    # restricted_token_volume: distinct people named in restricted-token mints in 24 h above the
    # declared restricted-token figure, or, without one, the declared people-per-day peak × this factor
    # (never below the floor).
    restricted_token_people_factor: float = Field(default=0.1, gt=0.0, le=10.0)
    restricted_token_min_people: int = Field(default=100, ge=1)

    # attestation_overdue: a delivered erasure request past its attestation deadline (the settings'
    # ``attestation_deadline_days``) is raised at this severity; past the grace period the app is
    # restricted whatever the mode (an obligation the vendor accepted, not a statistic).
    attestation_overdue_severity: Literal["medium", "high"] = "medium"

    # Alerts: at most this many per app per UTC day (canary contacts included; their own table keeps
    # every contact).
    alerts_per_app_per_day: int = Field(default=20, ge=1, le=10_000)

    # The background run: every worker tries each interval; the one holding the lock runs.
    run_interval_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)

    # Modes (docs/monitoring.md "Modes and actions"): every detector audits unless switched on, all at
    # once (``mode = "active"``) or one by one (``[modes]``, which wins over ``mode``).
    mode: Mode = Mode.AUDIT
    modes: dict[Detector, Mode] = Field(default_factory=dict)
    # The first action of an alert in active mode, by severity; ``[detector_actions.<detector>]``
    # overrides it for one detector (e.g. ``canary_contact.critical = "kill"``).
    actions: dict[Severity, Action] = Field(default_factory=_default_actions)
    detector_actions: dict[Detector, dict[Severity, Action]] = Field(default_factory=dict)
    # Escalation: an alert of at least this severity on an app that already has a standing action
    # (a throttle not lifted, a restriction not relisted) from the last ``escalate_within_hours`` takes
    # the next step of the ladder, up to the ceiling.
    escalate_within_hours: float = Field(default=24.0, gt=0.0, le=24.0 * 90)
    escalate_min_severity: Severity = Severity.HIGH
    escalation_ceiling: Action = Action.RESTRICT
    # Throttle: the connection (app × company; the whole app for an app-wide alert) gets this share of
    # its quotas for this long, unless an operator lifts it first.
    throttle_factor: float = Field(default=0.1, gt=0.0, lt=1.0)
    throttle_hours: float = Field(default=24.0, gt=0.0, le=24.0 * 30)
    # How long a worker keeps its view of the throttles before reading them again (seconds).
    throttle_cache_seconds: float = Field(default=5.0, ge=0.0, le=300.0)
    # Restrict: what the restricted app may still do (``token``: raw identifying fields as tokens).
    restrict_policy: Literal["token", "pause"] = "token"
    # Delivery (webhook, mail): a failed one is retried by later runs, backing off up to this.
    delivery_backoff_max_seconds: float = Field(default=3600.0, ge=1.0, le=86_400.0)

    def mode_of(self, detector: Detector) -> Mode:
        """The detector's mode: its own entry in ``modes``, else the policy-wide ``mode``."""
        return self.modes.get(detector, self.mode)

    def first_action(self, detector: Detector, severity: Severity) -> Action:
        """What an active-mode alert of ``detector`` at ``severity`` does before any escalation."""
        override = self.detector_actions.get(detector, {})
        if severity in override:
            return override[severity]
        return self.actions.get(severity, _default_actions()[severity])


def policy_path(settings: Settings) -> Path | None:
    """The policy file in force: the configured one, else ``<data_dir>/monitor.toml`` if it exists."""
    if settings.monitor_policy is not None:
        return settings.monitor_policy
    default = settings.data_dir / "monitor.toml"
    return default if default.is_file() else None


def load_policy(settings: Settings) -> MonitorPolicy:
    """The policy: defaults, overridden by the policy file. A bad file is one precise error."""
    path = policy_path(settings)
    if path is None:
        return MonitorPolicy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read the monitor policy {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the monitor policy {path} is not valid TOML: {exc}") from exc
    try:
        return MonitorPolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "[key]")
        raise InvalidInput(f"the monitor policy {path}: {where}: {first['msg']}") from exc
