"""``simlab verify``: replay a recording's raw frames and check every book.

:func:`verify` streams ``raw/`` in arrival order, rebuilds each (channel, instrument) book
with :class:`simlab.okx.BookSync` on a :class:`simlab.book.L2Book`, and counts messages,
snapshots, updates, heartbeats, resets, checksums, gaps and crossed books; trades, other
channels, control events and malformed frames are counted too. It also checks the files:
every listed file present and read in full (every row group and column decoded, page
checksums verified; ``quick=True`` reads footers only), with the listed schema and row
count; the rows of ``levels/`` and ``trades/`` per stream equal to what the raw frames
give; arrivals exactly 0..n-1; files not listed in the manifest reported as strays
(except the live recorder's log, ``record.log``).

Live recordings (``simlab record``) hold REST order-book snapshots as frames with
``conn == -1`` (spliced into the chain the way the client did), and updates the client kept
while it resynced a stream ("stale": received before the snapshot it resynced from, listed
as ``stale_arrivals`` of its ``synced``/``resync_done`` events): those are counted as
``stale``, not as updates without a snapshot. The recorder's own account of the feed
(disconnects, resyncs, frames it had to drop) is read from the manifest's ``live`` section;
every stream it was asked for (``requested``) must have arrived (messages, and a valid book
on a book channel), and a refused subscription, an outage (``live.outages``) or a
disconnect that the client could not prove lossless (``resumed`` verdicts) is a problem.

A recording is OK when no checksum fails, no gap is found, no update arrives without a
snapshot, no book message is rejected, files and arrivals are consistent, no unlisted file
is visible to other readers in a dataset directory, and it holds market data: an empty
recording, one with no data frames, or one whose frames are more than
:data:`MAX_MALFORMED_SHARE` malformed, fails. Some malformed frames, unknown channels,
hidden leftovers of an interrupted writer and an incomplete recording are warnings.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from simlab.book import L2Book
from simlab.okx import BookIntegrity, is_book
from simlab.okx.messages import BOOK_CHANNELS
from simlab.okx.normalize import normalize_raw
from simlab.okx.rest import REST_CONN
from simlab.progress import bar

from .manifest import RecordingError, ns_to_iso
from .reader import Recording
from .schema import DATASETS, DERIVED, MANIFEST, RAW, SCHEMAS

#: A recording whose frames are more than this share malformed fails verify (it is not the
#: feed it claims to be: binary noise, the wrong file, a broken capture).
MAX_MALFORMED_SHARE = 0.5

MAX_REPORTED_EVENTS = 50
#: The live recorder's log (and its rotated copies) in the recording's top directory.
LOG_FILES = re.compile(r"record\.log(\.\d+)?")
#: Client events whose ``stale_arrivals`` name updates kept while resyncing.
SYNC_DONE = ("synced", "resync_done")


_PROBLEM_STATS = (("checksum_failed", "checksum failures"), ("gaps", "sequence gaps"),
                  ("no_snapshot", "updates without a valid snapshot"),
                  ("rejected", "book messages rejected (bad levels)"))


@dataclass
class VerifyReport:
    """Result of :func:`verify`; :meth:`as_dict` is what ``simlab verify --json`` prints.

    ``channels`` maps channel -> ``{"kind": "book"|"trade"|"other"|"unknown", "total": {...},
    "instruments": {inst: {...}}}``.
    """

    path: str
    complete: bool
    wire_format: str
    frames: int = 0
    first_recv_ns: int | None = None
    last_recv_ns: int | None = None
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    control: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    events_total: int = 0
    files_listed: int = 0
    stray_files: list[str] = field(default_factory=list)
    quick: bool = False
    recovered: list[str] = field(default_factory=list)
    live: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "ok": self.ok, "complete": self.complete,
            "wire_format": self.wire_format, "frames": self.frames,
            "first_recv": ns_to_iso(self.first_recv_ns), "last_recv": ns_to_iso(self.last_recv_ns),
            "channels": self.channels, "control": self.control, "malformed": self.malformed,
            "events": self.events, "events_total": self.events_total,
            "files_listed": self.files_listed, "stray_files": self.stray_files,
            "quick": self.quick, "recovered": self.recovered,
            "live": self.live, "problems": self.problems, "warnings": self.warnings,
        }


class _Tally:
    """Accumulates per-frame counts during the replay."""

    def __init__(self, stale: list[tuple[int, int]] | None = None) -> None:
        self.books = BookIntegrity(L2Book, stale=stale)
        self.trades: dict[tuple[str, str], Counter] = {}
        self.other: dict[tuple[str, str, str], int] = Counter()
        self.control: Counter = Counter()
        self.malformed: Counter = Counter()
        self.malformed_examples: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.events_total = 0
        self.arrival_errors: list[str] = []
        self.n_arrival_errors = 0
        #: (dataset, channel, inst) -> rows the raw frames give in levels/trades
        self.derived: Counter = Counter()

    def frame(self, f: Any, wire_format: str) -> None:
        norm = normalize_raw(f.payload, f.conn, f.channel, f.inst, wire_format)
        if norm.rows is not None and norm.kind != "malformed":
            self.derived[(norm.table, f.channel, f.inst)] += len(next(iter(norm.rows.values())))
        if norm.kind == "malformed":
            self.malformed[norm.error or "malformed"] += 1
            if len(self.malformed_examples) < 20:
                self.malformed_examples.append({"arrival": f.arrival, "reason": norm.error,
                                                "payload": f.payload[:120].decode("utf-8",
                                                                                  "replace")})
        if norm.msg is not None and is_book(norm.msg):
            for e in self.books.apply(norm.msg, f.arrival, rest=f.conn == REST_CONN).events:
                self.events_total += 1
                if len(self.events) < MAX_REPORTED_EVENTS:
                    self.events.append(e)
        elif norm.kind == "trade":
            c = self.trades.setdefault((norm.channel, norm.inst_id or ""), Counter())
            c["messages"] += 1
            c["rows"] += len(norm.rows["trade_id"])
        elif norm.kind in ("other", "unknown"):
            self.other[(norm.kind, norm.channel, norm.inst_id or "")] += 1
        elif norm.kind in ("event", "pong"):
            self.control[norm.label or norm.kind] += 1

    def arrival(self, expected: int, got: int) -> None:
        self.n_arrival_errors += 1
        if len(self.arrival_errors) < 5:
            what = "duplicate or out of order" if got < expected else f"{got - expected} missing"
            self.arrival_errors.append(f"arrival {got} where {expected} was expected ({what})")


def verify(path: str | Path, progress: bool | None = False,
           quick: bool = False) -> VerifyReport:
    """Replay and check a recording. Raises :class:`RecordingError` when it is unusable
    (no manifest or a malformed one, a raw file missing or not Parquet). ``quick``: check
    the files of ``levels/`` and ``trades/`` by their footers only (row counts), not
    their contents (the report says so).

    >>> r = verify("rec")                                        # doctest: +SKIP
    >>> r.ok, r.channels["books"]["total"]["checksum_verified"]  # doctest: +SKIP
    (True, 290)
    """
    rec = Recording(path)
    if rec.filesystem is not None:
        # it also lists the directory for unlisted files, which only a local disk allows
        raise RecordingError(f"{path}: verify works on a local recording directory; copy it "
                             "from shared or object storage first (replay reads it in place)")
    m = rec.manifest
    rep = VerifyReport(str(rec.path), bool(m.get("complete")), rec.wire_format,
                       files_listed=len(m["files"]), quick=quick, recovered=rec.recovered)
    _check_files(rec, rep, quick)
    tally = _replay(rec, rep, progress)
    _fill(rep, tally)
    _derived(rec, rep, tally)
    _live(rep, m)
    _requested(rep, m)
    _judge(rep, m)
    return rep


def _live(rep: VerifyReport, m: dict[str, Any]) -> None:
    """The live recorder's account (manifest ``live``): breaks, repairs, dropped frames,
    outages, and data lost in a disconnect unless the client proved nothing was."""
    live = m.get("live")
    if not isinstance(live, dict):
        return
    summary = live.get("summary") or {}
    breaks = live.get("breaks") or []
    rep.live = {"summary": summary, "breaks": breaks[:MAX_REPORTED_EVENTS],
                "breaks_total": len(breaks) + (live.get("breaks_dropped") or 0),
                "recorder": live.get("recorder") or {},
                "refused": live.get("refused") or [], "outages": live.get("outages") or []}
    dropped = summary.get("dropped_frames") or 0
    if dropped:
        eps = [b for b in breaks if b.get("kind") == "queue_overflow"]
        where = "; ".join(f"{b['frames']} at arrival {b['arrival']} ({b.get('time')}, "
                          f"{b.get('span_s')} s)" for b in eps[:5])
        rep.problems.append(f"the recorder dropped {dropped} frames (its writer queue was "
                            f"full): {where}")
    for b in breaks:
        if b.get("kind") == "disconnect" and not b.get("expected"):
            _disconnect(rep, b)
    _outages(rep, live.get("outages") or [])
    if summary.get("unrepaired"):
        rep.warnings.append(f"{summary['unrepaired']} feed breaks not repaired when the "
                            "recording ended")


def _stream_name(key: str) -> str:
    return key.replace(":", " ", 1)


def _disconnect(rep: VerifyReport, b: dict[str, Any]) -> None:
    """A disconnect is a problem unless every stream it cut resumed provably lossless
    (the client's ``resumed`` verdicts, see docs/live-client.md)."""
    what = (f"disconnect of connection {b.get('conn')} at {b.get('time')} "
            f"({b.get('detail') or 'code ' + str(b.get('code'))}; data missing "
            f"{(b.get('repair') or {}).get('missing_s', '?')} s)")
    streams = b.get("streams")
    resumed = b.get("resumed") or {}
    # a damaged entry proves nothing either: it must not read as "carried no stream"
    if not isinstance(streams, list) or not all(
            isinstance(s, list) and len(s) == 2 for s in streams):
        rep.problems.append(f"{what}: data may be lost (the recording does not say which "
                            "streams it cut, so nothing was proven)")
        return
    keys = [f"{s[0]}:{s[1]}" for s in streams]
    lost = [k for k in keys if not (resumed.get(k) or {}).get("lossless")]
    if lost:
        why = "; ".join(f"{_stream_name(k)} ({(resumed.get(k) or {}).get('detail')})"
                        for k in lost[:10])
        more = f"; +{len(lost) - 10} more" if len(lost) > 10 else ""
        rep.problems.append(f"{what}: data lost or not proven complete on {len(lost)} of "
                            f"{len(keys)} streams: {why}{more}")
    elif keys:
        rep.warnings.append(f"{what}: every stream it cut ({len(keys)}) resumed with "
                            "nothing missed (proven by seqId/tradeId)")
    else:
        rep.warnings.append(f"{what}: it carried no stream of its own (nothing lost on it)")


def _outages(rep: VerifyReport, outages: list[dict[str, Any]]) -> None:
    """Every outage is a problem; outages that overlap in time (one incident, e.g. a
    stalled feed) are one problem naming every stream."""
    items = sorted((o for o in outages if isinstance(o, dict)),
                   key=lambda o: str(o.get("start")))
    groups: list[list[dict[str, Any]]] = []
    until = ""  # the end of the current group; "~" (after any ISO time): still open
    for o in items:
        if groups and str(o.get("start")) < until:
            groups[-1].append(o)
        else:
            groups.append([o])
            until = ""
        until = max(until, "~" if o.get("end") is None else str(o.get("end")))
    for g in groups:
        names = ", ".join(f"{o.get('channel')} {o.get('inst')} ({o.get('seconds')} s"
                          + (", still silent at the end" if o.get("end") is None else "")
                          + ")" for o in g)
        rep.problems.append(f"outage from {g[0].get('start')}: no data for longer than "
                            f"{g[0].get('threshold_s', '?')} s on {names}")


def _requested(rep: VerifyReport, m: dict[str, Any]) -> None:
    """Each stream the recorder was asked for (manifest ``requested``) must have arrived:
    messages, and for a book channel a valid book; a refused one names OKX's answer."""
    live = m.get("live") if isinstance(m.get("live"), dict) else {}
    refused = {(r.get("channel"), r.get("inst")): r for r in live.get("refused") or []
               if isinstance(r, dict)}
    requested = m.get("requested")
    named = set()
    for r in requested if isinstance(requested, list) else []:
        if not isinstance(r, dict):
            continue
        ch, inst = r.get("channel"), r.get("inst")
        named.add((ch, inst))
        arrived = ((m.get("channels") or {}).get(ch) or {}).get("instruments") or {}
        n = arrived.get(inst, 0)
        ref = refused.get((ch, inst))
        if ref is not None:
            rep.problems.append(f"{ch} {inst}: requested, {n} messages: the subscription was "
                                f"refused ({ref.get('code')} {ref.get('msg')})")
        elif not n:
            rep.problems.append(f"{ch} {inst}: requested, no messages arrived")
        elif ch in BOOK_CHANNELS:
            st = (rep.channels.get(ch) or {}).get("instruments", {}).get(inst) or {}
            if not st.get("snapshots"):
                rep.problems.append(f"{ch} {inst}: requested, {n} messages but never a valid "
                                    "book (no snapshot)")
    for key, ref in refused.items():
        if key not in named:
            rep.problems.append(f"{key[0]} {key[1]}: subscription refused ({ref.get('code')} "
                                f"{ref.get('msg')})")


def _replay(rec: Recording, rep: VerifyReport, progress: bool | None) -> _Tally:
    tally = _Tally(stale_ranges(rec.manifest))
    expected = 0
    with bar(progress, total=rec.manifest.get("arrivals") or None, unit="msg",
             desc="verify") as pbar:
        for f in rec.iter_raw():
            if f.arrival != expected:
                tally.arrival(expected, f.arrival)
            expected = max(expected, f.arrival + 1)
            rep.frames += 1
            if rep.first_recv_ns is None:
                rep.first_recv_ns = f.recv_ns
            rep.last_recv_ns = f.recv_ns
            tally.frame(f, rec.wire_format)
            pbar.update()
    return tally


def stale_ranges(manifest: dict[str, Any]) -> list[tuple[int, int]]:
    """Arrival ranges of updates a live client kept while resyncing (from the manifest's
    ``synced``/``resync_done`` events).

    >>> stale_ranges({"events": [{"kind": "synced", "stale_arrivals": [4, 9]}]})
    [(4, 9)]
    """
    out = []
    for e in manifest.get("events", []):
        r = e.get("stale_arrivals") if e.get("kind") in SYNC_DONE else None
        if isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r):
            out.append((r[0], r[1]))
    return sorted(out)


def _check_files(rec: Recording, rep: VerifyReport, quick: bool = False) -> None:
    """Every listed file: present, Parquet with the dataset's schema, and (unless
    ``quick``) every row group decoded with its page checksums, rows as listed. A damaged
    raw file makes the recording unusable (RecordingError); a damaged derived one is a
    problem that ``simlab rebuild`` repairs."""
    listed = set()
    totals: Counter = Counter()
    for e in rec.manifest["files"]:
        listed.add(e["path"])
        totals[e["dataset"]] += e["rows"]
        try:
            # raw/ is decoded in full by the replay below (page checksums verified)
            rows = _read_rows(rec, e, quick or e["dataset"] == RAW)
        except RecordingError as err:
            if e["dataset"] == RAW:
                raise
            rep.problems.append(f"{err}; run `simlab rebuild {rec.path}`")
            continue
        if rows != e["rows"]:
            rep.problems.append(f"{rec.path / e['path']}: {rows} rows, manifest says "
                                f"{e['rows']}")
    for d in DATASETS:
        if totals[d] != rec.manifest["rows"].get(d, 0):
            rep.problems.append(f"the manifest lists {totals[d]} {d} rows in its files but "
                                f"counts {rec.manifest['rows'].get(d, 0)} (rows.{d})")
    rep.stray_files = _strays(rec.path, listed)
    if rec.recovered:
        rep.warnings.append(f"completed an interrupted commit: {len(rec.recovered)} listed "
                            "files were still hidden and are renamed into view now")


def _read_rows(rec: Recording, entry: dict[str, Any], footer_only: bool) -> int:
    """Rows of a listed file: from its footer, or by decoding all of it."""
    pf = rec._open(entry)  # RecordingError naming the file when missing or not Parquet
    where = rec.path / entry["path"]
    want = SCHEMAS[entry["dataset"]]
    if not pf.schema_arrow.equals(want):
        raise RecordingError(f"{where}: schema {pf.schema_arrow.names} is not the "
                             f"{entry['dataset']} schema {want.names}")
    if footer_only:
        return pf.metadata.num_rows
    rows = 0
    try:
        for i in range(pf.num_row_groups):
            rows += pf.read_row_group(i).num_rows
    except (pa.ArrowException, OSError) as err:
        raise RecordingError(f"{where}: damaged Parquet file, row group {i} does not read "
                             f"({err})") from None
    return rows


#: Name prefixes that pandas / pyarrow dataset discovery skips (``ignore_prefixes``).
_HIDDEN = (".", "_")


def _strays(root: Path, listed: set[str]) -> list[str]:
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            rel = (Path(d) / n).relative_to(root).as_posix()
            if rel == n and LOG_FILES.fullmatch(n):
                continue  # the live recorder's log: documented, not data
            if rel != MANIFEST and rel not in listed:
                out.append(rel)
    return sorted(out)


def seen_by_other_readers(rel: str) -> bool:
    """True for a file in a dataset directory that pandas / pyarrow dataset discovery or a
    ``*.parquet`` glob (DuckDB, polars) would read: no path component starts with ``.``
    or ``_``.

    >>> seen_by_other_readers("raw/channel=books/inst=X/date=2022-05-13/part-000009.parquet")
    True
    >>> seen_by_other_readers("raw/channel=books/inst=X/date=2022-05-13/.part-000009.parquet.tmp")
    False
    """
    parts = rel.split("/")
    return (len(parts) > 1 and parts[0] in DATASETS
            and not any(p.startswith(_HIDDEN) for p in parts))


def _derived(rec: Recording, rep: VerifyReport, t: _Tally) -> None:
    """levels/trades rows per stream as listed against what the raw frames give."""
    listed: Counter = Counter()
    for e in rec.manifest["files"]:
        if e["dataset"] in DERIVED:
            listed[(e["dataset"], e["channel"], e["inst"])] += e["rows"]
    bad = [(k, listed[k], t.derived[k]) for k in sorted(set(listed) | set(t.derived))
           if listed[k] != t.derived[k]]
    for (d, ch, inst), n, want in bad[:10]:
        rep.problems.append(f"{d} {ch} {inst}: {n} rows listed, the raw frames give {want}; "
                            f"run `simlab rebuild {rec.path}`")
    if len(bad) > 10:
        rep.problems.append(f"{len(bad) - 10} more streams whose levels/trades rows do not "
                            "match their raw frames")


def _sum_stats(per_inst: dict[str, dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for st in per_inst.values():
        for k, v in st.items():
            if k not in ("first_ts", "last_ts"):
                total[k] = total.get(k, 0) + v
    firsts = [st["first_ts"] for st in per_inst.values() if st["first_ts"] is not None]
    lasts = [st["last_ts"] for st in per_inst.values() if st["last_ts"] is not None]
    total["first_ts"] = min(firsts, default=None)
    total["last_ts"] = max(lasts, default=None)
    return total


def _fill(rep: VerifyReport, t: _Tally) -> None:
    for ch, per_inst in t.books.summary().items():
        rep.channels[ch] = {"kind": "book", "total": _sum_stats(per_inst),
                            "instruments": per_inst}
    for (ch, inst), c in sorted(t.trades.items()):
        entry = rep.channels.setdefault(ch, {"kind": "trade", "total": Counter(),
                                             "instruments": {}})
        entry["instruments"][inst] = dict(c)
        entry["total"].update(c)
    for (kind, ch, inst), n in sorted(t.other.items()):
        entry = rep.channels.setdefault(ch, {"kind": kind, "total": Counter(), "instruments": {}})
        entry["instruments"][inst] = {"messages": n}
        entry["total"]["messages"] += n
    for entry in rep.channels.values():
        entry["total"] = dict(entry["total"])
    rep.control = dict(sorted(t.control.items()))
    rep.malformed = {"count": sum(t.malformed.values()), "reasons": dict(t.malformed),
                     "examples": t.malformed_examples}
    rep.events, rep.events_total = t.events, t.events_total
    if t.n_arrival_errors:
        rep.problems.append(f"arrival order broken {t.n_arrival_errors} times: "
                            + "; ".join(t.arrival_errors))


def _judge(rep: VerifyReport, m: dict[str, Any]) -> None:
    for ch, entry in rep.channels.items():
        if entry["kind"] != "book":
            continue
        for inst, st in entry["instruments"].items():
            for key, what in _PROBLEM_STATS:
                if st[key]:
                    rep.problems.append(f"{ch} {inst}: {st[key]} {what}")
    if rep.frames != m.get("arrivals", rep.frames):
        rep.problems.append(f"{rep.frames} raw frames, manifest says {m.get('arrivals')}")
    _content(rep)
    for ch, entry in rep.channels.items():
        if entry["kind"] == "unknown":
            rep.warnings.append(f"unknown channel {ch!r}: {entry['total']['messages']} "
                                "messages kept raw")
    seen = [s for s in rep.stray_files if seen_by_other_readers(s)]
    if seen:
        rep.problems.append(f"{len(seen)} files in the dataset directories are not listed in "
                            "the manifest: simlab ignores them, but pandas, DuckDB and "
                            f"pyarrow read them (e.g. {seen[0]}); move them out")
    if len(seen) < len(rep.stray_files):
        rep.warnings.append(f"{len(rep.stray_files) - len(seen)} files not listed in the "
                            "manifest (hidden or outside the datasets: readers skip them)")
    if not rep.complete:
        why = f": {m['error']}" if m.get("error") else ""
        rep.warnings.append(f"recording not closed cleanly{why}")


def _content(rep: VerifyReport) -> None:
    """An empty recording, one without market data, or one mostly malformed fails."""
    bad = rep.malformed.get("count", 0)
    data = sum(e["total"].get("messages", 0) for e in rep.channels.values())
    if not rep.frames:
        rep.problems.append("the recording is empty: no frames")
    elif not data:
        what = (f"all {rep.frames} frames are malformed" if bad == rep.frames else
                f"its {rep.frames} frames are control frames ({bad} malformed)")
        rep.problems.append(f"no market data: {what}")
    elif bad > MAX_MALFORMED_SHARE * rep.frames:
        rep.problems.append(f"{bad} of {rep.frames} frames ({100 * bad / rep.frames:.1f} %) "
                            f"are malformed, more than {MAX_MALFORMED_SHARE:.0%}: not the "
                            "feed it claims to be")
    elif bad:
        rep.warnings.append(f"{bad} malformed frames (kept raw, not normalised)")


# -- text output -------------------------------------------------------------------------
_BOOK_COLS = (("messages", "msgs"), ("snapshots", "snap"), ("updates", "upd"),
              ("heartbeats", "hb"), ("resets", "reset"), ("gaps", "gaps"),
              ("no_snapshot", "nosnap"), ("rejected", "rej"), ("checksum_verified", "cks_ok"),
              ("checksum_failed", "cks_fail"), ("checksum_absent", "cks_abs"),
              ("crossed", "crossed"), ("stale", "stale"))


def _dash(v: Any) -> Any:
    return "-" if v is None else v


def _ms_iso(ms: int | None) -> str:
    return "-" if ms is None else (ns_to_iso(ms * 1_000_000) or "-")[:23].replace("T", " ")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Align rows under headers: text left, numbers right.

    >>> print(table(["inst", "n"], [["BTC-USDT", 98], ["X", 7]]))
    inst       n
    BTC-USDT  98
    X          7
    """
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(r[i], int) for r in rows) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric,
                                                                          strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def format_report(rep: VerifyReport) -> str:
    """The human-readable report printed by ``simlab verify``."""
    out = [f"recording {rep.path}: {rep.frames} frames, "
           f"{ns_to_iso(rep.first_recv_ns) or '-'} .. {ns_to_iso(rep.last_recv_ns) or '-'}, "
           f"{'complete' if rep.complete else 'INCOMPLETE'}, wire format {rep.wire_format}"]
    books = [[ch, inst] + [st.get(k, 0) for k, _ in _BOOK_COLS] + [_ms_iso(st["first_ts"]),
                                                          _ms_iso(st["last_ts"])]
             for ch, e in rep.channels.items() if e["kind"] == "book"
             for inst, st in e["instruments"].items()]
    if books:
        out += ["", table(["channel", "inst"] + [h for _, h in _BOOK_COLS]
                          + ["first ts (UTC)", "last ts (UTC)"], books)]
    trades = [[ch, inst, c.get("messages", 0), c.get("rows", 0)]
              for ch, e in rep.channels.items() if e["kind"] == "trade"
              for inst, c in e["instruments"].items()]
    if trades:
        out += ["", table(["channel", "inst", "msgs", "trades"], trades)]
    other = [[ch, e["kind"], inst, c["messages"]] for ch, e in rep.channels.items()
             if e["kind"] in ("other", "unknown") for inst, c in e["instruments"].items()]
    if other:
        out += ["", table(["channel", "kind", "inst", "msgs"], other)]
    ctl = ", ".join(f"{k} {v}" for k, v in rep.control.items()) or "none"
    out += ["", f"control frames: {ctl}", f"malformed frames: {rep.malformed.get('count', 0)}",
            f"files: {rep.files_listed} listed, {len(rep.stray_files)} not listed; "
            + ("QUICK check: levels/trades files checked by their footers only, contents "
               "not read" if rep.quick else "every file read in full")]
    out += [f"  stray: {s}" for s in rep.stray_files[:20]]
    if rep.events:
        out += ["", f"integrity events ({rep.events_total}"
                + (f", first {len(rep.events)} shown" if rep.events_total > len(rep.events)
                   else "") + "):",
                table(["kind", "channel", "inst", "exchange ts (UTC)", "seqId", "prevSeqId",
                       "expected prev", "arrival", "detail"],
                      [[e["kind"], e["channel"], e["inst"], _ms_iso(e["ts"]),
                        _dash(e["seq_id"]), _dash(e["prev_seq_id"]), _dash(e["expected_prev"]),
                        _dash(e["arrival"]), e["detail"][:60]] for e in rep.events])]
    out += _format_live(rep.live)
    out += [f"warning: {w}" for w in rep.warnings]
    out += [f"PROBLEM: {p}" for p in rep.problems]
    out.append("OK" if rep.ok else f"FAILED ({len(rep.problems)} problems)")
    return "\n".join(out)


def _repair(b: dict[str, Any]) -> str:
    r = b.get("repair") or {}
    if not r:
        return "NOT REPAIRED"
    if not r.get("done"):
        return f"{r.get('how')}: NOT DONE"
    at = f" @{r['arrival']}" if r.get("arrival") is not None else ""
    return f"{r.get('how')}{at}"


def _took(b: dict[str, Any]) -> str:
    r = b.get("repair") or {}
    for k in ("missing_s", "duration_s"):
        if r.get(k) is not None:
            return f"{r[k]:.3f} s"
    for k in ("silent_s", "span_s"):
        if b.get(k) is not None:
            return f"{b[k]:.3f} s"
    return "-"


def _format_live(live: dict[str, Any]) -> list[str]:
    if not live:
        return []
    s = live.get("summary") or {}
    rec = live.get("recorder") or {}
    out = ["", f"live recording: {live.get('breaks_total', 0)} breaks, {s.get('disconnects', 0)}"
           f" disconnects ({s.get('missing_s', 0)} s missing), {s.get('reconnects', 0)} "
           f"reconnects, {s.get('resyncs', 0)} resyncs, {s.get('dropped_frames', 0)} frames "
           f"dropped; stopped: {rec.get('stop_reason') or 'not cleanly'}"]
    breaks = live.get("breaks") or []
    if breaks:
        out.append(table(["kind", "time (UTC)", "conn", "channel", "inst", "arrival",
                          "repaired by", "took", "detail"],
                         [[b.get("kind"), (b.get("time") or "-")[:23].replace("T", " "),
                           _dash(b.get("conn")), b.get("channel") or "-", b.get("inst") or "-",
                           _dash(b.get("arrival")), _repair(b), _took(b),
                           (b.get("detail") or "")[:50]] for b in breaks]))
    return out
