"""Configuration of response, the server and notifications (section ``response``).

Only the operator's configuration can name outbound destinations (webhook URLs, SMTP and syslog
servers): policies refer to channels by name and cannot add any.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, HttpUrl

from rempart.settings import StrictModel

DEFAULT_HOME = Path("~/.local/share/rempart")


class ProtectedEntity(StrictModel):
    """Entities that must never be blocked outright: blocks become ``step_up``.

    For ranges (a hospital's NAT, a health centre's egress), IP and range decisions move to the
    accounts the alert names when there are some (account scope is preferred over IP scope).
    """

    name: str
    ranges: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    organizations: list[str] = Field(default_factory=list)


class SafetyCaps(StrictModel):
    #: Automatic account blocks allowed per rolling hour; beyond, blocks wait for an analyst.
    max_auto_account_blocks_per_hour: int = Field(default=20, ge=0)


class ServerSettings(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Largest accepted ``POST /v1/events`` body (413 beyond).
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: Events waiting for the engine, at most (429 with Retry-After beyond; never unbounded).
    queue_events: int = Field(default=200_000, ge=1)
    #: Whether ``/v1/decisions/check`` needs an ``enforce`` token.
    check_requires_token: bool = True
    #: Seconds nginx may cache a block / step-up answer (header X-Accel-Expires): spares Rempart
    #: during a flood from an already blocked client; a revocation then takes effect within it.
    cache_deny_seconds: int = Field(default=1, ge=0, le=60)
    #: Seconds nginx may cache an "allow". 0 by default: a cached allow would let a harvester go
    #: on for that long after its block (about 200 records a second through one nginx), and the
    #: check costs Rempart microseconds. Throttled answers are never cached.
    cache_allow_seconds: int = Field(default=0, ge=0, le=60)
    #: Polling interval of followed source files.
    follow_interval_seconds: float = Field(default=0.1, gt=0, le=10)
    #: Seconds between two checkpoints of the engine's state (and of followed files' positions);
    #: also taken at shutdown. A restart resumes the windows, baselines and open alerts.
    checkpoint_seconds: float = Field(default=60.0, gt=0)
    #: Alerts kept in memory for ``GET /v1/alerts``.
    alerts_kept: int = Field(default=10_000, ge=10)


class WebhookChannel(StrictModel):
    kind: Literal["webhook"]
    url: HttpUrl
    format: Literal["generic", "slack", "mattermost", "teams"] = "generic"
    #: Environment variable holding a bearer token sent as ``Authorization`` (never in YAML).
    token_env: str | None = None
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "high"


class EmailChannel(StrictModel):
    kind: Literal["email"]
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str
    recipients: list[str] = Field(min_length=1)
    starttls: bool = False
    username: str | None = None
    #: Environment variable holding the SMTP password (never in YAML).
    password_env: str | None = None
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "high"


class SyslogChannel(StrictModel):
    kind: Literal["syslog"]
    host: str
    port: int = Field(default=514, ge=1, le=65535)
    protocol: Literal["udp", "tcp"] = "udp"
    format: Literal["rfc5424", "cef"] = "rfc5424"
    #: Syslog facility number (16 = local0).
    facility: int = Field(default=16, ge=0, le=23)
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "medium"


Channel = Annotated[WebhookChannel | EmailChannel | SyslogChannel, Field(discriminator="kind")]


class NotificationSettings(StrictModel):
    channels: dict[str, Channel] = Field(default_factory=dict)
    #: Deliveries tried at most this many times, with exponential backoff between tries.
    attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=1.0, gt=0)
    #: Notifications waiting for delivery, at most (beyond: written to the dead-letter file).
    queue_size: int = Field(default=10_000, ge=1)
    #: Failed deliveries, one JSON object a line.
    dead_letter_file: Path = DEFAULT_HOME / "notifications.dead-letter.jsonl"


class ResponseSettings(StrictModel):
    #: Record what would be done without enforcing it.
    simulation: bool = False
    #: Response policy: a built-in name (``tiers-payant``) or a YAML file path.
    policy: str = "tiers-payant"
    protected: list[ProtectedEntity] = Field(default_factory=list)
    caps: SafetyCaps = SafetyCaps()
    server: ServerSettings = ServerSettings()
    notifications: NotificationSettings = NotificationSettings()
