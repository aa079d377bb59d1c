"""One frozen Settings object built from defaults, salon.toml, SALON_* env vars and flags.

Precedence (lowest to highest): built-in defaults, ``DATA/salon.toml``, ``SALON_*``
environment variables, command-line flags. Every key is documented in docs/operating.md.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_NAME = "salon.toml"
DB_NAME = "salon.db"


class SettingsError(ValueError):
    """A configuration value is missing, malformed or out of range."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("salon-data")
    host: str = "127.0.0.1"
    port: int = 8080
    url: str = ""  # public base URL; empty means http://HOST:PORT
    testnet: bool = False
    open_registration: bool = True
    trust_proxy: bool = False  # use X-Forwarded-For (set only behind your own reverse proxy)
    node_name: str = "Salon"
    max_body_bytes: int = 1_000_000
    api_body_bytes: int = 64_000
    header_timeout_seconds: float = 20.0  # to send a request line and headers; also idle keep-alive
    session_days: int = 30
    signin_attempts: int = 10  # failures allowed per window, per IP and per account
    signin_window_seconds: int = 300
    signup_per_ip_per_hour: int = 10  # web sign-up attempts per client address; 0 = no limit
    room_empty_grace_seconds: float = 60.0
    reconnect_grace_seconds: float = 20.0
    ws_queue_size: int = 256
    # limits on what one account or one remote node can make this node hold (docs/security.md)
    room_sockets_per_user: int = 8  # open room WebSockets (local and remote rooms) per account
    rooms_per_user: int = 10  # scheduled + live rooms one account hosts at once
    room_actions_per_second: float = 5.0  # room actions per participant (token bucket rate)
    room_actions_burst: int = 10  # … and its bucket size
    trunks_per_node: int = 50  # relay trunks one remote node may hold open here
    reports_per_user_per_hour: int = 10  # reports one account may file per hour
    ice_addresses: tuple[str, ...] = ()
    ice_port_min: int = 0  # with ice_port_max: the UDP range for WebRTC and trunks (0 = any)
    ice_port_max: int = 0
    stun_servers: tuple[str, ...] = ()
    audio_bitrate: int = 32000
    # concealment, in-band FEC, RED and trunk redundancy (docs/media.md); false = baseline
    loss_protection: bool = True
    # UDP address relay trunks bind to; "" = `host` for a node without a public `url`
    # (local testing), all interfaces ("0.0.0.0") for a public node
    trunk_bind: str = ""
    # federation (docs/federation.md)
    authorized_fetch: bool = False  # actor documents only to signed GETs
    allowlist_mode: bool = False  # federate only with domains allowed by `salon admin`
    delivery_concurrency_per_host: int = 4
    delivery_max_attempts: int = 16
    delivery_base_delay_seconds: float = 15.0  # retry after n**4 + base + jitter seconds
    delivery_jitter_seconds: float = 30.0
    host_backoff_seconds: float = 30.0  # first rest of a failing host, doubled per failure
    delivery_poll_seconds: float = 1.0
    announce_interval_seconds: float = 10.0  # at most one room Update per room per interval
    actor_cache_seconds: float = 86400.0
    actor_cache_entries: int = 2000  # remote actor documents kept in memory (LRU)
    actor_cache_bytes: int = 16_000_000  # and their total JSON size
    actor_document_bytes: int = 256_000  # a fetched actor/key document over this is refused
    fetch_timeout_seconds: float = 10.0

    @property
    def base_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def ice_port_range(self) -> tuple[int, int] | None:
        return (self.ice_port_min, self.ice_port_max) if self.ice_port_min else None

    @property
    def trunk_bind_address(self) -> str:
        if self.trunk_bind:
            return self.trunk_bind
        return "0.0.0.0" if self.url else self.host

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "data_dir"}


def _coerce(name: str, raw: Any) -> Any:
    """Convert a TOML or environment value to the field's type, with a clear error."""
    default = getattr(Settings(), name)
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            if isinstance(raw, str):
                return tuple(p.strip() for p in raw.split(",") if p.strip())
            if isinstance(raw, list) and all(isinstance(p, str) for p in raw):
                return tuple(raw)
            raise ValueError(raw)
        if not isinstance(raw, str):
            raise ValueError(raw)
        return raw
    except ValueError:
        kind = type(default).__name__
        raise SettingsError(f"setting {name!r}: {raw!r} is not a valid {kind}") from None


def _validate(s: Settings) -> Settings:
    if not 0 <= s.port <= 65535:
        raise SettingsError(f"setting 'port': {s.port} is out of range 0-65535")
    if s.url and not s.url.startswith(("http://", "https://")):
        raise SettingsError(f"setting 'url': {s.url!r} must start with http:// or https://")
    if s.max_body_bytes < 1024 or s.api_body_bytes < 1024:
        raise SettingsError("body size limits must be at least 1024 bytes")
    if s.delivery_concurrency_per_host < 1 or s.delivery_max_attempts < 1:
        raise SettingsError("delivery concurrency and attempts must be at least 1")
    if (s.ice_port_min or s.ice_port_max) and not (
        1024 <= s.ice_port_min <= s.ice_port_max <= 65535
    ):
        raise SettingsError(
            "settings 'ice_port_min'/'ice_port_max' must satisfy 1024 <= min <= max <= 65535"
        )
    for name in (
        "room_sockets_per_user",
        "rooms_per_user",
        "room_actions_burst",
        "trunks_per_node",
        "reports_per_user_per_hour",
    ):
        if getattr(s, name) < 1:
            raise SettingsError(f"setting {name!r} must be at least 1")
    if not s.room_actions_per_second > 0:
        raise SettingsError("setting 'room_actions_per_second' must be positive")
    if s.header_timeout_seconds <= 0:
        raise SettingsError("setting 'header_timeout_seconds' must be > 0")
    if s.signin_attempts < 1 or s.signin_window_seconds < 1:
        raise SettingsError("settings 'signin_attempts' and 'signin_window_seconds' must be ≥ 1")
    if s.signup_per_ip_per_hour < 0:
        raise SettingsError("setting 'signup_per_ip_per_hour' must be ≥ 0 (0 = no limit)")
    if not 1024 <= s.actor_document_bytes <= s.max_body_bytes:
        raise SettingsError("setting 'actor_document_bytes' must be 1024 to max_body_bytes")
    if s.actor_cache_entries < 1 or s.actor_cache_bytes < s.actor_document_bytes:
        raise SettingsError(
            "settings 'actor_cache_entries' must be at least 1 and 'actor_cache_bytes'"
            " at least 'actor_document_bytes'"
        )
    if s.ws_queue_size < 8:
        raise SettingsError("setting 'ws_queue_size' must be at least 8")
    return s


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return data


def load_settings(
    data_dir: Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings for DATA_DIR; ``overrides`` are command-line flags (None = not given)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, raw in read_config_file(data_dir / CONFIG_NAME).items():
        values[name] = _coerce(name, raw)
    for name in _FIELDS:
        key = "SALON_" + name.upper()
        if key in env:
            values[name] = _coerce(name, env[key])
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw)
    return _validate(Settings(data_dir=data_dir, **values))


def default_config_text() -> str:
    return (
        "# Salon node configuration. Every key can also be set by a SALON_<KEY> environment\n"
        "# variable or a command-line flag; see docs/operating.md for all keys.\n"
        '# url = "https://salon.example"   # public base URL (default http://HOST:PORT)\n'
        "# open_registration = true\n"
        "# testnet = false                  # allow federation with private/loopback addresses\n"
    )
