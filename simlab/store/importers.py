"""Import existing OKX data into a simlab recording (``simlab import FORMAT SRC --out DIR``).

Formats:

``okx-capture``
    cryptofeed-style raw captures, lines ``<recv_epoch_seconds>: <json>``. The connect line
    (``<url> <-> <seconds>``) becomes a ``connect`` event; the client's own requests
    (``<url> <- <seconds>: ...``) are skipped and counted. Receive times are converted
    from the decimal seconds string to ns exactly (string arithmetic, no float).
``okx-jsonl``
    one raw OKX WebSocket message per line; receive time is derived from the message's
    exchange ``ts`` (frames without one take the previous frame's, and it never goes back:
    a frame whose ts is earlier than the last one's takes the last one's).
``okx-l2``
    OKX's daily historical 400-level files (``.tar.gz``, ``.gz``, ``.zip`` or plain), one
    JSON object per line, channel ``books-l2-history``; receive time from ``ts``.

Every input may be plain, gzip, zip, tar(.gz), zstandard (.zst, needs the ``zstandard``
package) or tar.zst: the container is detected from its first bytes, not its name. Every
non-blank line is kept raw (lossless): one that cannot be parsed is stored in the
``_malformed`` partition, counted in the manifest and logged.

Input that is not what the format expects is refused with a :class:`SourceError` naming the
file and what was expected, and no recording is left behind: a directory, a path that
cannot be read (a symlink loop ...), an empty file, and a file with no market-data frame
(binary noise: more than :data:`simlab.store.verify.MAX_MALFORMED_SHARE` of its lines
malformed; or control frames only).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from simlab.okx import OkxParseError
from simlab.okx.normalize import (
    WIRE_L2_HISTORY,
    WIRE_WS,
    Normalized,
    instrument_metadata,
    normalize,
)
from simlab.progress import bar

from .verify import MAX_MALFORMED_SHARE
from .writer import RecordingWriter

_DATA = re.compile(rb"(\d{1,12}(?:\.\d{1,30})?): ")
_REQUEST = re.compile(rb"\S+ <- \d{1,12}(?:\.\d+)?: ")
_CONNECT = re.compile(rb"(\S+) <-> (\d{1,12}(?:\.\d{1,30})?)\s*$")
_REST = re.compile(rb"(\S+) -> (\d{1,12}(?:\.\d{1,30})?): ")
_MAX_PENDING = 10_000
_I64 = 2**63
_PROGRESS_EVERY = 2000
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
try:
    from zstandard import ZstdError as _ZstdError
except ImportError:  # optional: only .zst input needs it
    _ZstdError = zlib.error  # a stand-in already in the tuple below
_READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile, _ZstdError)
#: A file with no market-data frame and more than MAX_MALFORMED_SHARE (verify's threshold)
#: malformed lines is not what the format expects (binary noise, another format): it is
#: refused, not imported (:class:`_Tally`). Lines after which an input with no
#: market-data frame yet and mostly malformed lines is refused without reading the rest
#: (a large binary file fails fast).
_EARLY_LINES = 10_000
#: What each format expects, for error messages.
EXPECTED = {
    "okx-capture": "a raw capture: lines '<recv_epoch_seconds>: <OKX WebSocket JSON frame>'",
    "okx-jsonl": "one OKX v5 WebSocket JSON message per line",
    "okx-l2": "OKX historical L2 order-book lines ({\"instId\":...,\"action\":...,\"asks\":...})",
}
_CONTAINERS = "plain, .gz, .zip, .tar(.gz), .zst or .tar.zst"
_DATA_KINDS = frozenset({"book", "trade", "other", "unknown"})


class SourceError(ValueError):
    """An input file that cannot be imported; the message names the file."""


@dataclass
class ImportResult:
    """What an import produced: the recording path and its manifest."""

    path: Path
    importer: str
    manifest: dict[str, Any]

    @property
    def frames(self) -> int:
        return self.manifest["arrivals"]

    @property
    def malformed(self) -> int:
        return self.manifest["malformed"]["count"]

    @property
    def integrity_events(self) -> dict[str, int]:
        """Counts of gap / checksum_failed / no_snapshot / rejected events found on import."""
        return dict(Counter(e["kind"] for e in self.manifest["events"]
                            if e["kind"] != "connect"))

    def warnings(self) -> list[str]:
        """What the import could not stand behind although it kept every frame: mostly
        malformed frames (``simlab verify`` fails such a recording) and instruments the
        ``--instruments`` file had no metadata for.

        >>> m = {"arrivals": 10, "malformed": {"count": 7}, "source": {}}
        >>> ImportResult(Path("rec"), "okx-jsonl", m).warnings()[0][:48]
        '7 of 10 frames are malformed (more than 50 %): s'
        """
        out = []
        if self.frames and self.malformed > MAX_MALFORMED_SHARE * self.frames:
            out.append(f"{self.malformed:,} of {self.frames:,} frames are malformed (more than "
                       f"{MAX_MALFORMED_SHARE * 100:.0f} %): simlab verify fails this recording")
        missing = self.manifest["source"].get("instruments_missing")
        if missing:
            out.append(f"the instruments file has no metadata for {', '.join(missing)}: their "
                       "tick size and contract value are unknown to replay")
        return out

    def summary(self) -> str:
        """One line for the CLI."""
        ch = ", ".join(f"{c} {v['messages']}" for c, v in self.manifest["channels"].items())
        ev = ", ".join(f"{k} {v}" for k, v in self.integrity_events.items()) or "none"
        return (f"imported {self.frames} frames into {self.path} ({ch or 'no data'}; "
                f"{self.malformed} malformed; integrity events: {ev})")


def seconds_to_ns(text: str | bytes) -> int:
    """Decimal epoch seconds (as written by a capture) to integer ns, exactly.

    Digits beyond the 9th decimal are truncated.

    >>> seconds_to_ns("1652459225.5037491")
    1652459225503749100
    >>> seconds_to_ns(b"1652459224")
    1652459224000000000
    """
    s = text.decode("ascii") if isinstance(text, bytes | bytearray) else text
    whole, _, frac = s.strip().partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"expected decimal seconds like 1652459225.5037491, got {s!r}")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


# -- reading inputs --------------------------------------------------------------------------
def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def _tar_lines(tf: tarfile.TarFile) -> Iterator[tuple[str, bytes]]:
    for member in tf:
        if member.isfile():
            f = tf.extractfile(member)
            if f is not None:
                for line in f:
                    yield member.name, line


def _zip_lines(zf: zipfile.ZipFile) -> Iterator[tuple[str, bytes]]:
    for name in sorted(n for n in zf.namelist() if not n.endswith("/")):
        with zf.open(name) as f:
            for line in f:
                yield name, line


@contextmanager
def open_lines(path: str | Path) -> Iterator[tuple[Iterator[tuple[str, bytes]],
                                                     Callable[[], int], int]]:
    """Open a plain, gzip, zip, tar or tar.gz file; yields ``(lines, position, size)`` where
    ``lines`` gives ``(member, line)`` with the line ending removed and ``position()`` is the
    number of input bytes consumed so far (for a progress bar).

    >>> with open_lines("OKX.ws.1.0") as (lines, pos, size):  # doctest: +SKIP
    ...     next(lines)
    ('OKX.ws.1.0', b'wss://ws.okx.com:8443/ws/v5/public <-> 1652459224.5300605')
    """
    path = Path(path)
    check_source(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below; open errors get their own message
    except OSError as e:
        raise SourceError(f"{path}: cannot open ({e.strerror})") from None
    try:
        try:
            lines = _guard(_detect(raw, path), path)
        except _READ_ERRORS as e:
            raise SourceError(f"{path}: unreadable or truncated input ({e})") from None
        yield _strip(lines), raw.tell, path.stat().st_size
    finally:
        raw.close()


def check_source(path: Path, expected: str | None = None) -> None:
    """Refuse, with a :class:`SourceError` naming ``path``, anything but a non-empty regular
    file (a missing path, a directory, a symlink loop, a device ...).

    >>> check_source(Path("/"))
    Traceback (most recent call last):
    ...
    simlab.store.importers.SourceError: /: is a directory; expected a file (plain, ...)
    """
    want = f"expected {expected or 'a file'} ({_CONTAINERS})"
    try:
        st = os.stat(path)  # follows symlinks: a loop is ELOOP here
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file; {want}") from None
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror or e}); {want}") from None
    if stat.S_ISDIR(st.st_mode):
        raise SourceError(f"{path}: is a directory; {want}")
    if not stat.S_ISREG(st.st_mode):
        raise SourceError(f"{path}: is not a regular file; {want}")
    if st.st_size == 0:
        raise SourceError(f"{path}: is empty; {want}")


def _zstd_reader(raw, path: Path):
    try:
        import zstandard
    except ImportError:
        raise SourceError(f"{path}: is zstandard-compressed, which needs the Python package "
                          "'zstandard' (pip install zstandard)") from None
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True,
                                                      closefd=False)


def _stream_lines(f, name: str) -> Iterator[tuple[str, bytes]]:
    """Lines of a stream that has only ``read()`` (a zstandard reader), endings kept."""
    rest = b""
    while chunk := f.read(1 << 20):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield name, line + b"\n"
    if rest:
        yield name, rest


def _detect(raw, path: Path) -> Iterator[tuple[str, bytes]]:
    head = raw.read(512)
    raw.seek(0)
    if head[:4] == _ZSTD_MAGIC:
        inner = _zstd_reader(raw, path).read(512)
        raw.seek(0)
        if _is_tar(inner):
            return _tar_lines(tarfile.open(fileobj=_zstd_reader(raw, path), mode="r|"))
        return _stream_lines(_zstd_reader(raw, path), path.name)
    if head[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=raw) as gz:
            inner = gz.read(512)
        raw.seek(0)
        if _is_tar(inner):
            return _tar_lines(tarfile.open(fileobj=raw, mode="r|gz"))
        return ((path.name, line) for line in gzip.GzipFile(fileobj=raw))
    if head[:4] == b"PK\x03\x04":
        return _zip_lines(zipfile.ZipFile(raw))
    if _is_tar(head):
        return _tar_lines(tarfile.open(fileobj=raw, mode="r|"))
    return ((path.name, line) for line in raw)


def _guard(lines: Iterator[tuple[str, bytes]], path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        yield from lines
    except _READ_ERRORS as e:
        raise SourceError(f"{path}: unreadable or truncated input ({e})") from None


def _strip(lines: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    for member, line in lines:
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        yield member, line


@contextmanager
def _progress(size: int, position: Callable[[], int], show: bool | None, desc: str):
    b = bar(show, total=size, unit="B", unit_scale=True, desc=desc)

    def tick() -> None:
        b.update(position() - b.n)

    try:
        yield tick
        tick()
    finally:
        b.close()


# -- instrument metadata ---------------------------------------------------------------------
def load_instruments(path: str | Path) -> dict[str, dict[str, Any]]:
    """Instrument metadata from a REST capture (lines ``<url> -> <seconds>: <json>`` of
    ``/api/v5/public/instruments`` responses); later responses override earlier ones.

    >>> load_instruments("OKX.0")["BTC-USDT"]["tickSz"]  # doctest: +SKIP
    '0.1'
    """
    out: dict[str, dict[str, Any]] = {}
    with open_lines(path) as (lines, _, _):
        for n, (_, line) in enumerate(lines, 1):
            if not line.strip():
                continue
            m = _REST.match(line)
            if m is None or b"/instruments" not in m.group(1):
                continue
            try:
                out.update(instrument_metadata(orjson.loads(line[m.end():])))
            except (orjson.JSONDecodeError, OkxParseError) as e:
                raise SourceError(f"{path}: line {n}: not an instruments response ({e})"
                                  ) from None
    if not out:
        raise SourceError(f"{path}: no instrument metadata found (expected lines "
                          "'<url>/api/v5/public/instruments... -> <seconds>: <json>')")
    return out


# -- refusing input that is not the format -------------------------------------------------
class _Unusable(SourceError):
    """Raised inside an import: the recording begun is removed, then it goes on up."""


@dataclass
class _Tally:
    """What the lines of an input turned out to be, to tell data from noise."""

    fmt: str
    src: Path
    frames: int = 0
    data: int = 0
    malformed: int = 0
    first_reason: str | None = None

    def add(self, norm: Normalized) -> None:
        self.frames += 1
        if norm.kind in _DATA_KINDS:
            self.data += 1
        elif norm.kind == "malformed":
            self.malformed += 1
            if self.first_reason is None:
                self.first_reason = norm.error

    def check(self, final: bool) -> None:
        """Raise :class:`_Unusable` when the input holds no market data: at the end, or
        early once :data:`_EARLY_LINES` frames are mostly malformed."""
        if self.data or (not final and self.frames < _EARLY_LINES):
            return
        if self.frames == 0:  # final here: frames < _EARLY_LINES returned above
            why = "it holds no frame (only blank lines, client requests or connect lines)"
        elif self.malformed > MAX_MALFORMED_SHARE * self.frames:
            why = (f"{self.malformed:,} of its {self.frames:,} lines are malformed (first: "
                   f"{self.first_reason}) and none is a market-data frame")
        elif final:
            why = (f"none of its {self.frames:,} lines is market data (order books, trades "
                   f"...): {self.frames - self.malformed:,} control, {self.malformed:,} "
                   "malformed")
        else:
            return
        raise _Unusable(f"{self.src}: not {self.fmt} input: {why}; expected "
                        f"{EXPECTED[self.fmt]} ({_CONTAINERS}){_name_hint(self.src)}")


_SUFFIX_MAGIC = {".gz": b"\x1f\x8b", ".tgz": b"\x1f\x8b", ".zip": b"PK\x03\x04",
                 ".zst": _ZSTD_MAGIC}


def _name_hint(src: Path) -> str:
    want = _SUFFIX_MAGIC.get(src.suffix.lower())
    if want is None:
        return ""
    try:
        with open(src, "rb") as f:
            head = f.read(len(want))
    except OSError:
        return ""
    return "" if head == want else f"; it is named {src.suffix} but is not {src.suffix} data"


@contextmanager
def _refusable(out: str | Path) -> Iterator[None]:
    """Remove what an import wrote to ``out`` when the input is refused (verify must never
    see a recording of noise); other errors leave it, marked incomplete by the writer."""
    out = Path(out)
    existed = out.exists()
    try:
        yield
    except _Unusable:
        if existed:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() \
                    else child.unlink()
        else:
            shutil.rmtree(out, ignore_errors=True)
        raise


# -- importers -------------------------------------------------------------------------------
def _apply_instruments(w: RecordingWriter, meta: dict[str, dict[str, Any]] | None) -> None:
    if meta is None:
        return
    seen = w.instruments_seen()
    for inst in sorted(seen):
        if inst in meta:
            w.set_instrument(inst, meta[inst])
    w.update_source(instruments_missing=sorted(seen - meta.keys()))


def import_okx_capture(src: str | Path, out: str | Path, *, instruments: str | Path | None = None,
                       progress: bool | None = None, flush_rows: int = 100_000) -> ImportResult:
    """Import a raw capture with lines ``<recv_epoch_seconds>: <json>``.

    >>> import_okx_capture("OKX.ws.1.0", "rec", instruments="OKX.0").frames  # doctest: +SKIP
    410
    """
    src = Path(src)
    check_source(src, EXPECTED["okx-capture"])
    meta = load_instruments(instruments) if instruments is not None else None
    counts: Counter = Counter()
    tally = _Tally("okx-capture", src)
    source = {"importer": "okx-capture", "input": str(src.resolve()),
              "recv_time": "capture receive timestamps (decimal seconds, converted to ns "
                           "exactly)"}
    with _refusable(out), open_lines(src) as (lines, pos, size), \
            RecordingWriter(out, source, flush_rows=flush_rows, wire_format=WIRE_WS) as w, \
            _progress(size, pos, progress, src.name) as tick:
        last = 0
        for n, (_, line) in enumerate(lines, 1):
            last = _capture_line(w, line, n, last, counts, tally)
            if n % _PROGRESS_EVERY == 0:
                tick()
                tally.check(final=False)
        tally.check(final=True)
        _apply_instruments(w, meta)
        w.update_source(**{f"{k}_lines": v for k, v in sorted(counts.items())})
    return ImportResult(Path(out), "okx-capture", w.manifest)


def _capture_line(w: RecordingWriter, line: bytes, n: int, last: int, counts: Counter,
                  tally: _Tally) -> int:
    counts["total"] += 1
    m = _DATA.match(line)
    if m is not None:
        recv = seconds_to_ns(m.group(1))
        payload = line[m.end():]
        norm = normalize(payload)
        w.add_normalized(payload, norm, recv)
        tally.add(norm)
        return recv
    if not line.strip():
        counts["blank"] += 1
    elif _REQUEST.match(line):
        counts["request"] += 1
    elif (c := _CONNECT.match(line)) is not None:
        counts["connect"] += 1
        last = seconds_to_ns(c.group(2))
        w.add_event({"kind": "connect", "url": c.group(1).decode("utf-8", "replace"),
                     "recv_ns": last, "line": n})
    else:
        counts["bad"] += 1
        norm = Normalized("malformed", error="capture line without a '<recv_seconds>: ' prefix")
        w.add_normalized(line, norm, last)
        tally.add(norm)
    return last


def _ts_ns(norm: Normalized) -> int | None:
    if norm.ts_ms is None or norm.ts_ms * 1_000_000 >= _I64:
        return None
    return norm.ts_ms * 1_000_000


def _import_by_ts(src: Path, out: str | Path, importer: str, wire_format: str,
                  progress: bool | None, flush_rows: int) -> ImportResult:
    check_source(src, EXPECTED[importer])
    source = {"importer": importer, "input": str(src.resolve()),
              "recv_time": "derived from each message's exchange ts (ms -> ns); frames "
                           "without one take the previous frame's (the first frames take "
                           "the first ts found), and none is earlier than the frame before"}
    counts: Counter = Counter()
    members: list[str] = []
    tally = _Tally(importer, src)
    with _refusable(out), open_lines(src) as (lines, pos, size), \
            RecordingWriter(out, source, flush_rows=flush_rows, wire_format=wire_format) as w, \
            _progress(size, pos, progress, src.name) as tick:
        pending: list[tuple[bytes, Normalized]] = []
        last: int | None = None
        for n, (member, line) in enumerate(lines, 1):
            if not members or members[-1] != member:
                members.append(member)
            counts["total"] += 1
            if not line.strip():
                counts["blank"] += 1
                continue
            norm = normalize(line, wire_format)
            tally.add(norm)
            if tally.frames % _PROGRESS_EVERY == 0:
                tally.check(final=False)
            ts = _ts_ns(norm)
            # a receive clock does not go back: channels stamp their ts independently
            last = ts if last is None or (ts is not None and ts > last) else last
            pending.append((line, norm))
            if last is None and len(pending) < _MAX_PENDING:
                continue  # wait for the first timestamp
            for p, pn in pending:
                w.add_normalized(p, pn, last or 0)
            pending.clear()
            if n % _PROGRESS_EVERY == 0:
                tick()
        tally.check(final=True)
        for p, pn in pending:
            w.add_normalized(p, pn, last or 0)
        w.update_source(members=members[:1000],
                        **{f"{k}_lines": v for k, v in sorted(counts.items())})
    return ImportResult(Path(out), importer, w.manifest)


def import_okx_jsonl(src: str | Path, out: str | Path, *, progress: bool | None = None,
                     flush_rows: int = 100_000) -> ImportResult:
    """Import one raw OKX WebSocket message per line.

    >>> import_okx_jsonl("books.jsonl", "rec").frames  # doctest: +SKIP
    2
    """
    return _import_by_ts(Path(src), out, "okx-jsonl", WIRE_WS, progress, flush_rows)


def import_okx_l2(src: str | Path, out: str | Path, *, progress: bool | None = None,
                  flush_rows: int = 100_000) -> ImportResult:
    """Import one of OKX's daily historical L2 files (tar.gz, gz, zip or plain).

    >>> import_okx_l2("BTC-USDT-L2orderbook-400lv-2024-01-01.tar.gz", "rec")  # doctest: +SKIP
    """
    return _import_by_ts(Path(src), out, "okx-l2", WIRE_L2_HISTORY, progress, flush_rows)


IMPORTERS: dict[str, Callable[..., ImportResult]] = {
    "okx-capture": import_okx_capture,
    "okx-jsonl": import_okx_jsonl,
    "okx-l2": import_okx_l2,
}


def import_file(fmt: str, src: str | Path, out: str | Path, **options: Any) -> ImportResult:
    """Import ``src`` in format ``fmt`` (a key of :data:`IMPORTERS`) into a new recording.

    >>> import_file("okx-capture", "OKX.ws.1.0", "rec").malformed  # doctest: +SKIP
    0
    """
    try:
        importer = IMPORTERS[fmt]
    except KeyError:
        raise SourceError(f"unknown import format {fmt!r}; expected one of "
                          f"{', '.join(IMPORTERS)}") from None
    if fmt != "okx-capture" and options.get("instruments") is not None:
        raise SourceError("--instruments is only supported for okx-capture")
    options = {k: v for k, v in options.items() if not (k == "instruments" and v is None)}
    return importer(src, out, **options)
