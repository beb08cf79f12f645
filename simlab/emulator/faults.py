"""Fault injection for the emulator: the catalogue, its command-line form, and the
per-connection machinery that alters what one connection receives.

Per-connection faults act on the pushes of the connections they target (every current
connection unless ``conn`` names one by its number, 0 for the first to connect);
exchange-level faults (``reset``, ``stall``) act on the feed itself, so every connection
sees them, as on OKX; REST faults act on the next REST requests.

========== ========== ==============================================================
fault      scope      effect (``after=N``: let N matching pushes through first)
========== ========== ==============================================================
drop       connection abort the TCP connection (no close frame) after N pushes
gap        connection skip one update of ``inst`` (the next prevSeqId then names a
                      seqId the client never saw)
checksum   connection write a wrong (non-zero) checksum into one update
malformed  connection send a truncated copy of one push before the push itself (or,
                      from Python, the exact bytes ``payload``: the hostile-frame tests)
duplicate  connection send one update twice
reorder    connection swap two consecutive updates of one stream
notice     connection send the 64008 notice, then close after ``delay`` seconds (default:
                      the emulator's ``notice_delay``, 60 s as on OKX)
burst      connection hold all pushes for ``duration`` seconds, then send them at once
reset      exchange   maintenance reset of ``inst``'s seqId (all instruments if none)
stall      exchange   no pushes for ``duration`` seconds; the market moves on, and the
                      first pushes after carry everything (no gap)
rest-slow  REST       delay the next ``count`` responses by ``delay`` seconds (default 1)
rest-error REST       answer the next ``count`` requests with HTTP ``status`` and an
                      OKX error envelope (``code``, default 50026 "System error.")
========== ========== ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    DROP = "drop"
    GAP = "gap"
    CHECKSUM = "checksum"
    MALFORMED = "malformed"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    NOTICE = "notice"
    BURST = "burst"
    RESET = "reset"
    STALL = "stall"
    REST_SLOW = "rest-slow"
    REST_ERROR = "rest-error"


CONNECTION_FAULTS = frozenset({Fault.DROP, Fault.GAP, Fault.CHECKSUM, Fault.MALFORMED,
                               Fault.DUPLICATE, Fault.REORDER, Fault.NOTICE, Fault.BURST})
EXCHANGE_FAULTS = frozenset({Fault.RESET, Fault.STALL})
REST_FAULTS = frozenset({Fault.REST_SLOW, Fault.REST_ERROR})
#: Faults that act on one sequenced update (a non-empty incremental book update).
_UPDATE_FAULTS = frozenset({Fault.GAP, Fault.CHECKSUM, Fault.DUPLICATE, Fault.REORDER})


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault. ``at`` (seconds after the emulator started) schedules it; without ``at``
    it applies when injected (per-connection faults given at start arm every connection,
    or connection number ``conn``, as it connects).

    >>> s = parse_fault("gap:inst=BTC-USDT,after=20")
    >>> s.kind, s.inst, s.after, s.conn
    (<Fault.GAP: 'gap'>, 'BTC-USDT', 20, None)
    """

    kind: Fault
    inst: str | None = None
    channel: str | None = None
    conn: int | None = None
    after: int = 0
    at: float | None = None
    duration: float = 5.0
    delay: float | None = None  # notice: the emulator's notice_delay; rest-slow: 1 s
    count: int = 1
    status: int = 500
    code: str = "50026"
    msg: str = "System error."
    payload: bytes | None = None  # malformed: send exactly this frame (a str is encoded)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Fault(self.kind))
        if isinstance(self.payload, str):
            object.__setattr__(self, "payload", self.payload.encode())
        if (self.after < 0 or self.count < 0 or self.duration < 0
                or (self.delay is not None and self.delay < 0)):
            raise ValueError(f"fault {self.kind}: after, count, duration and delay must be "
                             f">= 0, got {self}")

    def matches(self, channel: str, inst_id: str) -> bool:
        return ((self.inst is None or self.inst == inst_id)
                and (self.channel is None or self.channel == channel))


_FIELDS = {f.name: f for f in fields(FaultSpec)}


def parse_fault(text: str) -> FaultSpec:
    """``KIND[:key=value,...]`` -> :class:`FaultSpec` (the ``--fault`` option).

    Keys: inst, channel, conn, after, at, duration, delay, count, status, code, msg, and
    last, ``payload`` (malformed: the exact frame to send, commas included).

    >>> parse_fault("rest-error:status=429,code=50011,count=2").status
    429
    >>> parse_fault("stall:duration=2.5,at=10").duration
    2.5
    >>> parse_fault('malformed:after=3,payload={"event":"notice","arg":[1]}').payload
    b'{"event":"notice","arg":[1]}'
    """
    kind, _, rest = text.strip().partition(":")
    rest, _, payload = rest.partition("payload=")
    try:
        fault = Fault(kind.strip().lower())
    except ValueError:
        raise ValueError(f"unknown fault {kind!r} in {text!r}; expected one of "
                         f"{', '.join(f.value for f in Fault)}") from None
    kw: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in _FIELDS or key == "kind":
            raise ValueError(f"bad fault option {item!r} in {text!r}; expected key=value with "
                             f"key one of {', '.join(k for k in _FIELDS if k != 'kind')}")
        value = value.strip()
        try:
            if key in ("conn", "after", "count", "status"):
                kw[key] = int(value)
            elif key in ("at", "duration", "delay"):
                kw[key] = float(value)
            else:
                kw[key] = value
        except ValueError:
            raise ValueError(f"fault option {key} must be a number, got {value!r} in "
                             f"{text!r}") from None
    if payload:
        kw["payload"] = payload
    return FaultSpec(fault, **kw)


class _Armed:
    """A per-connection fault waiting for its moment."""

    __slots__ = ("held", "left", "spec")

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.left = spec.after
        self.held: Any = None  # reorder: the first of the two updates


def _wrong_checksum(push: Any) -> bytes:
    cs = push.checksum or 0
    bad = cs + 1 if cs + 1 not in (0, 1) else cs + 2
    old = b'"checksum":%d,' % cs
    if old not in push.frame:
        raise ValueError(f"push has no checksum field to corrupt: {push.frame[:80]!r}")
    return push.frame.replace(old, b'"checksum":%d,' % bad, 1)


class ConnectionFaults:
    """The faults armed on one connection; :meth:`process` maps each outgoing push to the
    frames actually sent (none, one or several) and says when to drop the connection.

    >>> from simlab.emulator.publisher import Push
    >>> cf = ConnectionFaults()
    >>> cf.arm(FaultSpec(Fault.DUPLICATE))
    >>> p = Push(1, "books", "X", "update", b"{}", 5, 4, 0)
    >>> cf.process(p), cf.process(p)
    (([b'{}', b'{}'], False), ([b'{}'], False))
    """

    def __init__(self) -> None:
        self.armed: list[_Armed] = []
        self.applied: list[FaultSpec] = []

    def __bool__(self) -> bool:
        return bool(self.armed)

    def arm(self, spec: FaultSpec) -> None:
        if spec.kind not in CONNECTION_FAULTS or spec.kind in (Fault.NOTICE, Fault.BURST):
            raise ValueError(f"{spec.kind} is not a per-push connection fault")
        self.armed.append(_Armed(spec))

    def process(self, push: Any) -> tuple[list[bytes], bool]:
        """``(frames to send, drop the connection after sending them)``."""
        frames = [push.frame]
        drop = False
        for a in list(self.armed):
            spec = a.spec
            if not spec.matches(push.channel, push.inst_id):
                continue
            if spec.kind in _UPDATE_FAULTS and push.kind != "update":
                continue
            if a.held is not None:
                # reorder: the held update goes out right after this one
                if (push.channel, push.inst_id) == (a.held.channel, a.held.inst_id):
                    frames.append(a.held.frame)
                    self._done(a)
                continue
            if a.left > 0:
                a.left -= 1
                continue
            kind = spec.kind
            if kind is Fault.DROP:
                # N pushes went out: this one does not, the connection dies first.
                frames.clear()
                drop = True
                self._done(a)
                break
            elif kind is Fault.GAP:
                frames.remove(push.frame)
                self._done(a)
            elif kind is Fault.CHECKSUM:
                frames[frames.index(push.frame)] = _wrong_checksum(push)
                self._done(a)
            elif kind is Fault.MALFORMED:
                bad = spec.payload
                if bad is None:
                    bad = push.frame[: max(1, len(push.frame) // 2)]
                frames.insert(0, bad)
                self._done(a)
            elif kind is Fault.DUPLICATE:
                frames.append(push.frame)
                self._done(a)
            elif kind is Fault.REORDER:
                a.held = push
                frames.remove(push.frame)
        return frames, drop

    def _done(self, a: _Armed) -> None:
        self.armed.remove(a)
        self.applied.append(a.spec)


def with_at(spec: FaultSpec, at: float | None) -> FaultSpec:
    """``spec`` with ``at`` replaced (the scheduler fires a copy without ``at``).

    >>> with_at(parse_fault("reset:at=5"), None).at is None
    True
    """
    return replace(spec, at=at)
