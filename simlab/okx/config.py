"""The live client's settings: :class:`ClientConfig`, everything tunable, checked once
when made. Its handler (:mod:`simlab.okx.handler`) and its driver
(:mod:`simlab.okx.client`) both read it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .connection import MAX_DEPTH_PER_CONN, MAX_REQUEST_BYTES
from .rest import OKX_REST_URL

OKX_WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
RESYNC_MODES = ("auto", "resubscribe", "rest")


@dataclass
class ClientConfig:
    """Everything tunable. Defaults follow OKX's documented limits; tests shorten the times.

    ``resync``: ``auto`` (unsubscribe + subscribe while in-band snapshots come, REST once a
    snapshot failed to come), ``resubscribe`` or ``rest``. ``keep_stale``: pass on updates
    that a snapshot made stale (received before it; they change nothing) rather than drop
    them. ``silence_s``: report a connection that carried no data for this long.
    ``refusal_wait``: after a subscribe error that does not name its argument, how long the
    request's other arguments may take to be acked before they count as refused.

    >>> ClientConfig(ping_interval=5).pong_timeout
    10.0
    """

    ws_url: str = OKX_WS_URL
    rest_url: str = OKX_REST_URL
    max_depth_per_conn: int = MAX_DEPTH_PER_CONN
    max_request_bytes: int = MAX_REQUEST_BYTES
    connects_per_s: int = 3
    requests_per_hour: int = 480
    ping_interval: float = 20.0
    pong_timeout: float = 10.0
    open_timeout: float = 10.0
    close_timeout: float = 2.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    backoff_reset_s: float = 30.0
    snapshot_timeout: float = 5.0
    resync: str = "auto"
    rest_timeout: float = 10.0
    rest_rate: float = 10.0
    rest_concurrency: int = 4
    rest_headers: dict[str, str] = field(default_factory=dict)
    rest_retry_base: float = 0.5
    rest_retry_max: float = 10.0
    splice_wait: float = 5.0
    switch_timeout: float = 30.0
    silence_s: float = 30.0
    refusal_wait: float = 5.0
    verify_checksum: bool = True
    keep_stale: bool = True
    yield_pongs: bool = True
    max_buffered: int = 20_000
    max_pending: int = 20_000
    max_ready: int = 20_000
    dedup_window: int = 4096
    tick: float = 0.05
    ws_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resync not in RESYNC_MODES:
            raise ValueError(f"resync must be one of {RESYNC_MODES}, got {self.resync!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int | float) and not isinstance(v, bool) and v <= 0:
                raise ValueError(f"{f.name} must be > 0, got {v!r}")
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"ws_url must start with ws:// or wss://, got {self.ws_url!r}")
        if not self.rest_url.startswith(("http://", "https://")):
            raise ValueError(f"rest_url must start with http:// or https://, got "
                             f"{self.rest_url!r}")
