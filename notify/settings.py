"""The one typed settings object.

Built once at an entry point (`server.py`, `worker.py`, the CLI, a benchmark) from the
environment and passed down; no other module reads the environment. Every provider URL is
a setting so the same code talks to the sandbox or to the real providers.
"""

from __future__ import annotations

import functools
import ipaddress
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from notify.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

# Environment variable → field. DATABASE_URL / REDIS_URL keep their conventional names.
_ENV_NAMES = {"DATABASE_URL": "database_url", "REDIS_URL": "redis_url"}
_PREFIX = "HUB_"


@functools.cache
def networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`HUB_TRUSTED_PROXIES`: comma separated addresses or networks (ValueError otherwise)."""
    return tuple(ipaddress.ip_network(p.strip()) for p in spec.split(",") if p.strip())


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- where things live -------------------------------------------------------------
    data_dir: Path = REPO_ROOT / "data"
    city_config: Path = REPO_ROOT / "config" / "kawasaki.yaml"
    database_url: str | None = None  # None → SQLite file under data_dir
    # PostgreSQL connections kept per process. A delivery worker holds up to ~20 sessions at
    # once (16 LINE batches in flight, two lanes, lease renewals); connections beyond the pool
    # are closed when handed back, and each new one costs a backend start, type
    # introspection and every statement prepared again.
    database_pool_size: int = Field(default=24, ge=1, le=200)
    redis_url: str | None = None  # None → a private Redis the hub starts itself

    # --- web -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"  # base of links in mails (keep it short)
    secret_key: str = ""  # signs links and sessions; empty → generated and kept in data_dir
    demo: bool = False  # demo mode: sandbox providers, demo data, non-Secure cookies
    max_body_bytes: int = 1_000_000

    # --- LINE -----------------------------------------------------------------------------
    line_api_url: str = "https://api.line.me"
    line_data_url: str = "https://api-data.line.me"
    line_channel_access_token: str = ""
    line_channel_secret: str = ""
    liff_id: str = ""
    # LIFF access tokens are checked with LINE Login (verify + profile) on this host.
    line_login_api_url: str = "https://api.line.me"
    line_login_channel_id: str = ""  # the LIFF app's LINE Login channel id

    # --- FCM ------------------------------------------------------------------------------
    fcm_api_url: str = "https://fcm.googleapis.com"
    fcm_project_id: str = ""
    fcm_credentials_file: Path | None = None
    fcm_mode_topic: str = "city-mode"

    # --- email ----------------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_connections: int = 4  # parallel SMTP sessions per email batch (one batch in flight)
    # The name said in EHLO; receiving servers check it against the sending address's
    # reverse DNS. "" → this machine's FQDN, looked up once per process.
    smtp_helo_name: str = Field(default="", pattern=r"^[A-Za-z0-9.:\[\]-]*$", max_length=255)
    mail_from: str = "city-info@example.jp"
    email_confirm_ttl_s: int = 3 * 24 * 3600

    # --- delivery -------------------------------------------------------------------------
    line_multicast_per_s: float = 200.0
    line_push_per_s: float = 2000.0
    fcm_per_min: float = 600_000.0
    smtp_per_s: float = 100.0
    rate_limits_enabled: bool = True
    chunk_size_line: int = 500  # user ids per multicast (LINE allows at most 500)
    chunk_size_fcm: int = 500
    chunk_size_email: int = 200
    # Residents in the first part of a broadcast's snapshot; each later part covers four
    # times as many, so sending starts before a big city's snapshot is done.
    snapshot_first_part: int = Field(default=50_000, ge=1)
    max_attempts: int = 6
    retry_delay_scale: float = 1.0  # multiplies the delivery retry schedule (tests: small)

    # --- disaster mode / rich menus ---------------------------------------------------------
    # Debian's fonts-ipaexfont-gothic (scripts/setup-system.sh installs it); no CJK font → boxes
    rich_menu_font: Path | None = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
    jma_auto_switch: bool = False
    rich_menu_dir: Path | None = None  # None → config/richmenus/<stem of city_config>
    jma_config: Path = REPO_ROOT / "config" / "jma.yaml"
    jma_relay_secret: str = ""  # shared secret of the JMA feed relay (X-Hub-Jma-Secret)
    jma_fetch_prefix: str = "https://www.data.jma.go.jp/developer/xml/data/"  # feed links
    mode_batch_poll_s: float = 2.0  # how often richmenu/progress/batch is polled
    mode_survey_per_s: float = 1000.0  # per-user menu reads (LINE allows 2,000/s in all)

    # --- abuse limits ----------------------------------------------------------------------
    public_writes_per_min: int = Field(default=20, ge=1)  # per client, per public write kind
    trusted_proxies: str = ""  # comma separated addresses/networks whose X-Forwarded-For counts

    log_level: str = "INFO"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        networks(value)  # ValueError: reported with the field's name
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> Settings:
        """Build settings from `HUB_*` variables (plus DATABASE_URL / REDIS_URL)."""
        values: dict[str, object] = {}
        known = set(cls.model_fields)
        for key, raw in environ.items():
            if key in _ENV_NAMES:
                values[_ENV_NAMES[key]] = raw or None
            elif key.startswith(_PREFIX):
                name = key[len(_PREFIX) :].lower()
                if name in known:
                    values[name] = raw
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid settings: {problems}") from exc

    # --- derived values ---------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        """An async SQLAlchemy URL; plain postgres URLs get the asyncpg driver."""
        url = self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'hub.db'}"
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def resolved_secret(self) -> str:
        """The signing secret; generated once and kept in the data dir when not configured."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        path.write_text(value)
        path.chmod(0o600)
        return value

    def to_env(self) -> dict[str, str]:
        """The environment that rebuilds these settings in a child process (worker, sandbox)."""
        env: dict[str, str] = {}
        names = {field: key for key, field in _ENV_NAMES.items()}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            env[names.get(name, _PREFIX + name.upper())] = str(value)
        return env
