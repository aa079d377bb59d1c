"""One frozen Settings object built from defaults, salon.toml, SALON_* env vars and flags.

Precedence (lowest to highest): built-in defaults, ``DATA/salon.toml``, ``SALON_*``
environment variables, command-line flags. Every key is documented in docs/operating.md.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.turn import POLICIES, TurnConfigError, TurnServer, check_stun_url, parse_turn_servers

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
    # large audiences (node/rooms/broadcast.py): above this many participants, listener
    # churn reaches listeners as coalesced `audience` counts; 0 = never coalesce (the naive
    # per-event broadcast, the benchmark's baseline)
    audience_coalesce_above: int = 50
    audience_flushes_per_second: float = 4.0  # `audience` messages per socket per second, at most
    # … and per room: a room with more sockets than this gets its counts less often; 0 = no cap
    audience_room_messages_per_second: float = 2000.0
    # a coalesced room's view reuses its first listeners' names this long (a join does not
    # read them again); a display name may be that much behind in a view; 0 = always read
    audience_names_seconds: float = 1.0
    listeners_page_max: int = 200  # largest `limit` of GET /api/rooms/{id}/listeners
    # limits on what one account or one remote node can make this node hold (docs/security.md)
    room_sockets_per_user: int = 8  # open room WebSockets (local and remote rooms) per account
    rooms_per_user: int = 10  # scheduled + live rooms one account hosts at once
    room_actions_per_second: float = 5.0  # room actions per participant (token bucket rate)
    room_actions_burst: int = 10  # … and its bucket size
    # room chat and reactions (docs/api.md "Chat and reactions")
    chat_max_chars: int = 500  # characters of one chat message, after NFC and trimming
    chat_history: int = 100  # last messages kept per room for late joiners
    chat_messages_per_second: float = 0.5  # chat messages per participant (token bucket)
    chat_messages_burst: int = 5  # … and its bucket size
    reactions_per_second: float = 3.0  # reactions per participant (token bucket)
    reactions_burst: int = 10  # … and its bucket size
    reactions_interval_seconds: float = 0.25  # one coalesced `reactions` message at most this often
    reactions_batch_users: int = 200  # people one `reactions` message names at most
    trunks_per_node: int = 50  # relay trunks one remote node may hold open here
    reports_per_user_per_hour: int = 10  # reports one account may file per hour
    # notifications (docs/operating.md "Notifications")
    notifications_per_user: int = 500  # kept per account; older ones are deleted
    notification_sockets_per_user: int = 4  # open notification WebSockets per account
    pings_per_minute: int = 10  # pings one person may send (local, or Invites from one actor)
    rsvps_per_user: int = 100  # rooms one account (or remote actor) asked to be notified about
    rsvp_changes_per_minute: int = 30  # Notify me / Don't notify me per account per minute
    rsvp_reminder_lead_seconds: float = 600.0  # the "starts soon" reminder, before start
    rsvp_reminder_poll_seconds: float = 5.0  # how often the reminder worker looks
    ice_addresses: tuple[str, ...] = ()
    # the one media port: every WebRTC session (ICE-lite) and relay trunk shares one UDP
    # port, and ICE-TCP clients one TCP port (docs/operating.md "Media"); 0 = any free port
    media_port: int = 40000
    media_tcp_port: int = 40000
    # address the media port binds to; "" = the ice address when `ice_addresses` is just
    # `host` (local testing), else all interfaces ("0.0.0.0")
    media_bind: str = ""
    stun_servers: tuple[str, ...] = ()
    # TURN servers handed to clients with short-lived credentials (docs/operating.md, TURN)
    turn_servers: tuple[TurnServer, ...] = ()
    turn_ttl_seconds: int = 21600  # lifetime of TURN REST credentials minted per request
    ice_transport_policy: str = "all"  # "relay": clients use only TURN-relayed candidates
    ice_servers_per_user_per_minute: int = 30  # GET /api/ice-servers per account
    audio_bitrate: int = 32000
    native_fanout: bool = True  # media/_fastpath.c when built; false forces the Python fan-out
    # where the 20 ms mixer clock and the fan-out run: "thread" (their own thread, so that
    # joins and signalling on the event loop cannot delay them) or "loop" (the event loop)
    media_tick: str = "thread"
    # concealment, in-band FEC, RED and trunk redundancy (docs/media.md); false = baseline
    loss_protection: bool = True
    # a lone speaker's own Opus packets go to listeners as they are (one codec generation
    # instead of two) while their uplink averages at most speaker_passthrough_max_bitrate
    speaker_passthrough: bool = True
    speaker_passthrough_max_bitrate: int = 48000
    # media workers (docs/scaling.md): 0 = the node carries all media itself (the default)
    media_workers: int = 0  # `salon media-worker` children started beside the node
    redis_url: str = ""  # redis://host:port/db: workers register and take commands there
    worker_secret: str = ""  # signs node <-> worker messages; generated for local children
    worker_advertise: str = ""  # local children's media address; "" = first ice address
    worker_heartbeat_seconds: float = 0.3  # how often a worker reports its load
    worker_dead_seconds: float = 1.2  # a worker silent this long is gone (its Redis key TTL)
    worker_command_timeout_seconds: float = 5.0  # a worker must answer a command this fast
    worker_drain_overlap_seconds: float = 1.5  # old session kept after the new one answered
    max_workers: int = 64  # workers the node keeps track of (registrations past it ignored)
    # replays (docs/operating.md "Replays"): recording of rooms to Ogg Opus files
    recording_allowed: bool = True  # false: no room may be recorded on this node
    replay_dir: str = ""  # where <room_id>.ogg/.json go; empty = DATA/replays
    replay_retention_days: float = 0.0  # a sweep deletes replays older than this; 0 = keep
    replay_quota_bytes_per_user: int = 1_000_000_000  # recorded bytes one host may keep; 0 = none
    replay_flush_seconds: float = 0.5  # the recorder writes buffered pages at least this often
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
    # replays, continued: the replay page, peaks, hallway cards and the remote proxy
    replay_peaks_buckets: int = 1000  # waveform values computed once per replay
    replay_hallway_days: float = 7.0  # replays younger than this get a hallway card
    replay_hallway_cards: int = 20  # replay cards one hallway shows at most
    replay_proxy_bytes: int = 1_000_000  # bytes one proxied range answer carries at most
    # Prometheus metrics (docs/operating.md "Metrics"): HOST:PORT of a separate site that
    # serves only /metrics; empty = off. Never the public port: it counts private rooms.
    metrics_address: str = ""

    @property
    def base_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def media_bind_address(self) -> str:
        if self.media_bind:
            return self.media_bind
        return self.host if self.ice_addresses == (self.host,) else "0.0.0.0"

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME

    @property
    def replay_path(self) -> Path:
        return Path(self.replay_dir) if self.replay_dir else self.data_dir / "replays"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "data_dir"}


def _coerce(name: str, raw: Any) -> Any:
    """Convert a TOML or environment value to the field's type, with a clear error."""
    default = getattr(Settings(), name)
    if name == "turn_servers":  # structured: TOML tables, or JSON in the environment
        try:
            return parse_turn_servers(raw)
        except TurnConfigError as exc:
            raise SettingsError(f"setting 'turn_servers': {exc}") from None
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
    for name in ("media_port", "media_tcp_port"):
        if not 0 <= getattr(s, name) <= 65535:
            raise SettingsError(f"setting {name!r}: {getattr(s, name)} is out of range 0-65535")
    for name in (
        "room_sockets_per_user",
        "rooms_per_user",
        "room_actions_burst",
        "trunks_per_node",
        "reports_per_user_per_hour",
        "chat_history",
        "chat_messages_burst",
        "reactions_burst",
        "reactions_batch_users",
        "notifications_per_user",
        "notification_sockets_per_user",
        "pings_per_minute",
        "rsvps_per_user",
        "rsvp_changes_per_minute",
    ):
        if getattr(s, name) < 1:
            raise SettingsError(f"setting {name!r} must be at least 1")
    if not 6000 <= s.audio_bitrate <= 510000:  # libopus' range (RFC 7587 §3.1.1)
        raise SettingsError("setting 'audio_bitrate' must be 6000-510000")
    if not 6000 <= s.speaker_passthrough_max_bitrate <= 510000:
        raise SettingsError("setting 'speaker_passthrough_max_bitrate' must be 6000-510000")
    if s.speaker_passthrough and s.speaker_passthrough_max_bitrate < s.audio_bitrate:
        raise SettingsError(
            "setting 'speaker_passthrough_max_bitrate' must be at least 'audio_bitrate'"
            f" ({s.audio_bitrate})"
        )
    if not s.room_actions_per_second > 0:
        raise SettingsError("setting 'room_actions_per_second' must be positive")
    if not 1 <= s.chat_max_chars <= 4096:
        raise SettingsError("setting 'chat_max_chars' must be 1-4096")
    for name in ("chat_messages_per_second", "reactions_per_second", "reactions_interval_seconds"):
        if not getattr(s, name) > 0:
            raise SettingsError(f"setting {name!r} must be positive")
    if not 0 < s.rsvp_reminder_lead_seconds <= 86400 or not s.rsvp_reminder_poll_seconds > 0:
        raise SettingsError(
            "setting 'rsvp_reminder_lead_seconds' must be 0-86400 (exclusive of 0) and"
            " 'rsvp_reminder_poll_seconds' positive"
        )
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
    if s.media_tick not in ("thread", "loop"):
        raise SettingsError("setting 'media_tick' must be 'thread' or 'loop'")
    if s.audience_coalesce_above < 0:
        raise SettingsError("setting 'audience_coalesce_above' must be ≥ 0")
    if not 0.1 <= s.audience_flushes_per_second <= 50:
        raise SettingsError("setting 'audience_flushes_per_second' must be 0.1-50")
    if s.audience_room_messages_per_second != 0 and s.audience_room_messages_per_second < 10:
        raise SettingsError("setting 'audience_room_messages_per_second' must be 0 or ≥ 10")
    if not 0 <= s.audience_names_seconds <= 60:
        raise SettingsError("setting 'audience_names_seconds' must be 0-60")
    if not 1 <= s.listeners_page_max <= 10_000:
        raise SettingsError("setting 'listeners_page_max' must be 1-10000")
    if not 10 <= s.replay_peaks_buckets <= 10_000:
        raise SettingsError("setting 'replay_peaks_buckets' must be 10-10000")
    if s.replay_hallway_cards < 0 or s.replay_hallway_days < 0:
        raise SettingsError("settings 'replay_hallway_cards' and 'replay_hallway_days' must be ≥ 0")
    if not 64_000 <= s.replay_proxy_bytes <= 16_000_000:
        raise SettingsError("setting 'replay_proxy_bytes' must be 64000-16000000")
    _validate_workers(s)
    if s.ws_queue_size < 8:
        raise SettingsError("setting 'ws_queue_size' must be at least 8")
    if s.metrics_address:
        host, port = parse_metrics_address(s.metrics_address)
        anywhere = ("0.0.0.0", "::")
        if port == s.port and (host == s.host or host in anywhere or s.host in anywhere):
            raise SettingsError(
                "setting 'metrics_address' must not be the public HTTP port: the metrics"
                " site is separate so that it can stay private"
            )
    _validate_ice(s)
    return s


def _validate_workers(s: Settings) -> None:
    if not 0 <= s.media_workers <= 256:
        raise SettingsError("setting 'media_workers' must be 0-256")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("setting 'redis_url' must start with redis://, rediss:// or unix://")
    if s.redis_url and len(s.worker_secret) < 16:
        raise SettingsError(
            "setting 'worker_secret' (at least 16 characters) is needed with 'redis_url'"
        )
    if s.worker_secret and len(s.worker_secret) < 16:
        raise SettingsError("setting 'worker_secret' must be at least 16 characters")
    if not 0.05 <= s.worker_heartbeat_seconds < s.worker_dead_seconds <= 60:
        raise SettingsError(
            "settings 'worker_heartbeat_seconds' (≥ 0.05) must be below"
            " 'worker_dead_seconds' (≤ 60)"
        )
    if not 0.1 <= s.worker_command_timeout_seconds <= 60:
        raise SettingsError("setting 'worker_command_timeout_seconds' must be 0.1-60")
    if not 0 <= s.worker_drain_overlap_seconds <= 30:
        raise SettingsError("setting 'worker_drain_overlap_seconds' must be 0-30")
    if not 1 <= s.max_workers <= 4096:
        raise SettingsError("setting 'max_workers' must be 1-4096")


def _validate_ice(s: Settings) -> None:
    for url in s.stun_servers:
        try:
            check_stun_url(url)
        except TurnConfigError as exc:
            raise SettingsError(f"setting 'stun_servers': {exc}") from None
    if not 60 <= s.turn_ttl_seconds <= 7 * 86400:
        raise SettingsError("setting 'turn_ttl_seconds' must be 60 to 604800 (7 days)")
    if s.ice_transport_policy not in POLICIES:
        raise SettingsError(
            f"setting 'ice_transport_policy': {s.ice_transport_policy!r} must be 'all' or 'relay'"
        )
    if s.ice_transport_policy == "relay" and not s.turn_servers:
        raise SettingsError("setting 'ice_transport_policy' = 'relay' needs 'turn_servers'")
    if s.ice_servers_per_user_per_minute < 1:
        raise SettingsError("setting 'ice_servers_per_user_per_minute' must be at least 1")


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")  # also IPv4 literals


def parse_metrics_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT``) of the metrics site; SettingsError when malformed."""
    bad = f"setting 'metrics_address': {value!r} must be HOST:PORT, e.g. 127.0.0.1:9464"
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise SettingsError(bad)
        try:
            if ipaddress.ip_address(host).version != 6:
                raise SettingsError(bad)
        except ValueError:
            raise SettingsError(bad) from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host:
            raise SettingsError(bad)
        if not _HOSTNAME.match(host):
            raise SettingsError(
                f"setting 'metrics_address': {host!r} is not a host name or address"
            )
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise SettingsError(bad)
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise SettingsError(f"setting 'metrics_address': port {port} is out of range 1-65535")
    return host, port


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from None
    removed = sorted(set(data) & set(_REMOVED))
    if removed:
        raise SettingsError(
            f"{path}: " + "; ".join(f"setting {name!r} {_REMOVED[name]}" for name in removed)
        )
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return data


# Settings of earlier versions that are gone, and what replaces them (an operator upgrading
# gets told what to change instead of "unknown setting").
_ONE_PORT = "was removed: every WebRTC session and trunk now uses one port, 'media_port'"
_REMOVED = {
    "ice_port_min": _ONE_PORT,
    "ice_port_max": _ONE_PORT,
    "trunk_bind": "was removed: trunks use the media port, bound to 'media_bind'",
}


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


# The node's media settings its `salon media-worker`s must run with: a local child gets
# them in its environment (node/workers/local.py), a remote one from its operator.
WORKER_MEDIA_SETTINGS = (
    "audio_bitrate",
    "speaker_passthrough",
    "speaker_passthrough_max_bitrate",
    "loss_protection",
    "native_fanout",
    "media_tick",
)


def worker_media_env(s: Settings) -> dict[str, str]:
    """WORKER_MEDIA_SETTINGS of S as the SALON_* variables a worker reads."""
    env = {}
    for name in WORKER_MEDIA_SETTINGS:
        value = getattr(s, name)
        env["SALON_" + name.upper()] = (
            ("true" if value else "false") if isinstance(value, bool) else str(value)
        )
    return env


def worker_media_settings(environ: Mapping[str, str]) -> Settings:
    """Settings holding WORKER_MEDIA_SETTINGS from ENVIRON's SALON_* variables (defaults
    for the rest), checked as the node checks them (SettingsError)."""
    values: dict[str, Any] = {}
    for name in WORKER_MEDIA_SETTINGS:
        key = "SALON_" + name.upper()
        if key in environ:
            values[name] = _coerce(name, environ[key])
    return _validate(Settings(data_dir=Path("."), **values))


def default_config_text() -> str:
    return (
        "# Salon node configuration. Every key can also be set by a SALON_<KEY> environment\n"
        "# variable or a command-line flag; see docs/operating.md for all keys.\n"
        '# url = "https://salon.example"   # public base URL (default http://HOST:PORT)\n'
        "# open_registration = true\n"
        "# testnet = false                  # allow federation with private/loopback addresses\n"
    )
