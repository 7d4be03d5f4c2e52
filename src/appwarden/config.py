"""The single settings object. Every knob is an ``APPWARDEN_*`` environment variable."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration, read once from the environment."""

    model_config = SettingsConfigDict(env_prefix="APPWARDEN_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".appwarden"), description="Where the embedded database and keys live."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in data_dir when unset."
    )
    redis_url: str | None = Field(
        default=None, description="Redis for cross-worker revocation and rate limits."
    )
    secret_key: str | None = Field(
        default=None, description="Master key; generated into data_dir when unset."
    )
    admin_api_key: str | None = Field(
        default=None, description="Bearer key for /admin; generated when unset."
    )
    smtp_url: str | None = Field(
        default=None, description="SMTP for store notices: smtp://host:port, smtp+starttls://, smtps://."
    )
    security_contact: str = Field(
        default="security@appwarden.example",
        description="The security team's address: sender of store notices and their contact.",
    )
    base_url: str = "http://127.0.0.1:8000"

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
    canary_webhook_key: str | None = Field(
        default=None, description="Bearer key for canary hit webhooks; generated into data_dir when unset."
    )

    attribution_upload_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Largest dump POST /admin/attributions accepts (bytes)."
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

    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    authorization_code_ttl: int = 120
    page_limit_max: int = 500
    detokenize_max: int = 100
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
        return (self.secret_key or self._persisted_secret("secret.key")).encode()

    @property
    def admin_key(self) -> str:
        """The admin API key: configured, or generated once into ``data_dir/admin.key``."""
        return self.admin_api_key or self._persisted_secret("admin.key")

    @property
    def canary_webhook_secret(self) -> str:
        """The canary-hit webhook's bearer key: configured, or generated once into
        ``data_dir/canary-webhook.key`` (a separate key: a phone provider must not hold the admin key)."""
        return self.canary_webhook_key or self._persisted_secret("canary-webhook.key")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings object."""
    return Settings()
