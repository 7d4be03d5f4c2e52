"""The single settings object. Every knob is an ``APPWARDEN_*`` environment variable."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration, read once from the environment."""

    model_config = SettingsConfigDict(env_prefix="APPWARDEN_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".appwarden"), description="Where the embedded database and keys live."
    )
    # URLs may carry passwords: kept out of repr (a settings object in a log or a traceback shows none).
    database_url: str | None = Field(
        default=None, repr=False, description="SQLAlchemy URL; SQLite in data_dir when unset."
    )
    redis_url: str | None = Field(
        default=None, repr=False, description="Redis for cross-worker revocation and rate limits."
    )
    # Secrets are SecretStr: printed, logged or repr'd they read '**********'.
    secret_key: SecretStr | None = Field(
        default=None, description="Master key; generated into data_dir when unset."
    )
    admin_api_key: SecretStr | None = Field(
        default=None, description="Bearer key for /admin; generated when unset."
    )
    smtp_url: SecretStr | None = Field(
        default=None, description="SMTP for store notices: smtp://host:port, smtp+starttls://, smtps://."
    )
    security_contact: str = Field(
        default="security@appwarden.example",
        description="The security team's address: sender of store notices and their contact.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public base URL (the OAuth issuer); `serve` sets it from --host/--port unless given.",
    )
    worker_pid_header: bool = Field(
        default=False,
        description="Add X-Worker-Pid to responses (bench/kill_switch.py only: it discloses worker PIDs).",
    )

    # Vendor obligations: how long a vendor may keep a field after its latest delivery, unless it
    # accepted another period for that field in review (issue 14; Amazon's DPP sets 30 days).
    retention_default_days: int = Field(default=30, ge=1, le=3650)

    # Canary records (marketplace policy): on by default; issued per (app, company) connection.
    canary_enabled: bool = Field(default=True, description="Mix canary customers into app responses.")
    canaries_per_connection: int = Field(default=3, ge=0, le=50)
    canary_domain: str = Field(
        default="canary.example.net",
        description="Mail domain the operator controls for canary addresses (received by canary listen).",
    )
    canary_phone_pool: str = Field(
        default="05010000000-05010999999",
        description="Inclusive range of national numbers the operator owns, issued to canaries.",
    )
    canary_webhook_key: SecretStr | None = Field(
        default=None, description="Bearer key for canary hit webhooks; generated into data_dir when unset."
    )

    # Screening (issue 11): what a restricted app may still do, and how large an evidence file may be.
    restricted_policy: Literal["token", "pause"] = Field(
        default="token",
        description="Restricted apps: raw identifying fields become tokens (token) or access pauses (pause).",
    )
    evidence_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="Largest evidence file (bytes)."
    )

    attribution_upload_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Largest dump POST /admin/attributions accepts (bytes)."
    )
    pdf_system_fonts: bool = Field(
        default=True, description="Report PDFs in the system's Noto Sans CJK if installed (else packaged)."
    )

    # Failed logins (every login page): a moving window per account and per client address.
    login_max_failures_per_account: int = Field(
        default=5, ge=1, description="Failed logins per account within the window before a lock-out."
    )
    login_max_failures_per_address: int = Field(
        default=20, ge=1, description="Failed logins per client address within the window (many accounts)."
    )
    login_failure_window_seconds: int = Field(
        default=900, ge=1, description="The window failed logins are counted over, and the longest lock-out."
    )
    # Web console sessions (server-side rows; the cookie holds only a random id).
    console_session_idle_seconds: int = Field(
        default=1800, ge=60, description="A console session unused this long ends (seconds)."
    )
    console_session_max_seconds: int = Field(
        default=12 * 3600, ge=60, description="A console session ends this long after login, used or not."
    )

    # Ledger checkpoints (issue 9): Ed25519-signed heads of the ledger, kept outside the database.
    checkpoint_dir: Path | None = Field(
        default=None, description="Where signed ledger checkpoints go; data_dir/checkpoints when unset."
    )
    checkpoint_key: SecretStr | None = Field(
        default=None,
        description="Checkpoint signing key (PRIVATE+KEY+<name>+<id>+<key>, the Go note format); "
        "generated into data_dir/checkpoint.key when unset.",
    )
    checkpoint_origin: str | None = Field(
        default=None,
        description="Origin (key name) of a generated checkpoint key; base_url host + /ledger when unset.",
    )

    # Bounded input (issue 9): request bodies are capped while they stream in; dumps by what they expand to.
    request_body_max_bytes: int = Field(
        default=64 * 1024, ge=1, description="Largest JSON or form body of any other route (bytes)."
    )
    dump_max_rows: int = Field(default=10_000_000, ge=1, description="Most records a dump may hold.")
    dump_max_columns: int = Field(default=1_000, ge=1, description="Most columns (JSON: keys) of a record.")
    dump_max_cell_chars: int = Field(default=32_768, ge=1, description="Longest cell of a dump (characters).")
    dump_max_decompressed_bytes: int = Field(
        default=1024 * 1024 * 1024, ge=1, description="Most bytes an XLSX workbook may expand to."
    )
    dump_max_compression_ratio: int = Field(
        default=100, ge=1, description="Highest expansion ratio of an XLSX part (zip bombs go far beyond)."
    )

    # Monitoring (issue 12): quotas default to the vendor's declared volume; until an app has declared,
    # these per-connection defaults stand in (docs/monitoring.md says why each is what it is).
    monitor_policy: Path | None = Field(
        default=None, description="Monitor policy (TOML); data_dir/monitor.toml when unset and present."
    )
    monitor_background: bool = Field(
        default=False, description="Run the detectors in a background thread of each worker (serve sets it)."
    )
    declared_people_per_day_avg: int = Field(default=10_000, ge=1)
    declared_people_per_day_peak: int = Field(
        default=100_000, ge=1, description="People a connection may receive per day until it declares."
    )
    declared_requests_per_minute_avg: int = Field(default=120, ge=1)
    declared_requests_per_minute_peak: int = Field(
        default=1_200, ge=1, description="Requests a connection may make per minute until it declares."
    )
    app_people_per_day_max: int = Field(
        default=2_000_000, ge=1, description="People one app may receive per day over all its companies."
    )
    app_requests_per_minute_max: int = Field(
        default=12_000, ge=1, description="Requests one app may make per minute over all its companies."
    )
    # Alert delivery (issue 12): every raised alert goes to this webhook (HMAC signed) and by mail.
    # The URL may carry a credential (many receivers put one in the path): kept out of repr and logs.
    alert_webhook_url: str | None = Field(
        default=None, repr=False, description="Where raised alerts are POSTed (JSON, HMAC signed)."
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC key of alert webhooks; generated into data_dir when unset."
    )
    alert_mail_to: str | None = Field(
        default=None, description="Who gets alert mail; security_contact when unset (needs smtp_url)."
    )
    # Erasure requests to vendors (issue 14): each app's endpoint gets company.redact and the like.
    erasure_webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="How long a vendor's erasure endpoint may take to answer."
    )
    erasure_backoff_base_seconds: float = Field(
        default=60.0, gt=0, description="Wait after the first failed erasure delivery (doubling after)."
    )
    erasure_backoff_max_seconds: float = Field(
        default=6 * 3600.0, gt=0, description="Longest wait between two erasure delivery attempts."
    )
    erasure_max_attempts: int = Field(
        default=10, ge=1, le=100, description="Attempts before an erasure request is dead-lettered."
    )
    erasure_company_redact_delay_hours: float = Field(
        default=48.0, ge=0, description="Hours after a disconnection before company.redact is sent."
    )
    # Attestation (issue 14): the vendor attests each delivered erasure within the deadline; after the
    # deadline plus the grace period the monitor restricts the app.
    attestation_deadline_days: int = Field(
        default=30, ge=1, le=365, description="Days after delivery within which the vendor must attest."
    )
    attestation_grace_days: int = Field(
        default=14, ge=0, le=365, description="Days past the deadline before an app is restricted."
    )
    erasure_retention_batch_size: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Most people named in one retention.expired request."
    )

    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    authorization_code_ttl: int = 120
    page_limit_max: int = 500
    detokenize_max: int = 100
    restricted_token_mints_per_minute: int = Field(
        default=30, ge=1, description="Restricted tokens one connection may mint per minute (then 429)."
    )
    revocation_cache_seconds: float = 0.5

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, else SQLite under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'appwarden.db').resolve()}"

    def ensure_data_dir(self) -> Path:
        """Create ``data_dir`` (private to this user) and return it."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir

    def _persisted_secret(self, filename: str) -> str:
        path = self.ensure_data_dir() / filename
        if path.exists():
            return path.read_text().strip()
        value = secrets.token_urlsafe(32)
        # Written with 0600 before the value goes in, so it is never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value

    @property
    def master_key(self) -> bytes:
        """Key material for pseudonyms, cursors and sessions (never printed)."""
        return _reveal(self.secret_key, lambda: self._persisted_secret("secret.key")).encode()

    @property
    def admin_key(self) -> str:
        """The admin API key: configured, or generated once into ``data_dir/admin.key``."""
        return _reveal(self.admin_api_key, lambda: self._persisted_secret("admin.key"))

    @property
    def canary_webhook_secret(self) -> str:
        """The canary-hit webhook's bearer key: configured, or generated once into
        ``data_dir/canary-webhook.key`` (a separate key: a phone provider must not hold the admin key)."""
        return _reveal(self.canary_webhook_key, lambda: self._persisted_secret("canary-webhook.key"))

    @property
    def alert_webhook_signing_secret(self) -> str:
        """The alert webhook's HMAC key: configured, or generated once into ``data_dir/alert-webhook.key``."""
        return _reveal(self.alert_webhook_secret, lambda: self._persisted_secret("alert-webhook.key"))

    @property
    def smtp_target(self) -> str | None:
        """The SMTP URL (it may hold a password), or None when notices cannot be sent."""
        return self.smtp_url.get_secret_value() if self.smtp_url else None


def _reveal(secret: SecretStr | None, generate: Callable[[], str]) -> str:
    """A configured secret's value, else the generated one (an empty setting counts as unset)."""
    value = secret.get_secret_value() if secret is not None else ""
    return value or generate()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings object."""
    return Settings()
