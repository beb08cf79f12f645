"""Figures quoted in README.md and docs/*.md come from a command printed beside them, and
match what that command gives (issue 15, item 11).

Two kinds of figure:

- **Benchmark figures** are not re-timed here (a loaded 2-core machine gives other rates
  every run). Each quoted rate must equal, at the precision quoted, its row of the one run
  in ``benchmarks/RESULTS.md`` that the text names, and the paragraph (or a table's
  caption) must name that run's command and date. A figure taken from another run, or a
  run that is not named, fails.
- **Deterministic figures** (counts from the real OKX capture, the published Almgren-Chriss
  numbers, the sample recording's size, a model coefficient) are recomputed by the command
  the doc prints, and compared with the figure the doc quotes, read from the doc itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def _norm(text: str) -> str:
    return " ".join(text.split())


def blocks(text: str) -> list[str]:
    """Paragraphs, tables and fenced code blocks of a markdown text, in order."""
    out: list[str] = []
    cur: list[str] = []
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and not line.strip() and not line.startswith("```"):
            if cur:
                out.append("\n".join(cur))
            cur = []
            continue
        cur.append(line)
    if cur:
        out.append("\n".join(cur))
    return out


def context(doc: str, quote: str) -> str:
    """The paragraph of ``doc`` that holds ``quote`` (whitespace-insensitive); for a table
    row, the table and the two blocks before it (its caption and the command above it)."""
    bs = blocks((ROOT / doc).read_text())
    hits = [i for i, b in enumerate(bs) if _norm(quote) in _norm(b)]
    assert hits, f"{doc} no longer says {quote!r}"
    i = hits[0]
    if bs[i].lstrip().startswith("|"):
        return "\n".join(bs[max(0, i - 2):i + 1])
    return bs[i]


def test_context_finds_a_tables_caption():
    text = "intro\n\n```sh\nrun --x\n```\n\ncaption (2026)\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n"
    bs = blocks(text)
    assert bs == ["intro", "```sh\nrun --x\n```", "caption (2026)",
                  "| a | b |\n| --- | --- |\n| 1 | 2 |"]


# -- benchmarks/RESULTS.md ---------------------------------------------------------------


@dataclass
class Run:
    heading: str
    prose: str
    rows: list[dict[str, str]]


def _table(lines: list[str]) -> list[dict[str, str]]:
    """Rows of a fixed-width table (header, a line of dashes, rows) as column -> text."""
    dash = next(i for i, ln in enumerate(lines) if ln.startswith("---"))
    spans = [m.span() for m in re.finditer(r"-+", lines[dash])]
    spans[-1] = (spans[-1][0], 10**6)
    names = [lines[dash - 1][a:b].strip() for a, b in spans]
    rows: list[dict[str, str]] = []
    for ln in lines[dash + 1:]:
        if not ln.strip():
            continue
        cells = [ln[a:b].strip() for a, b in spans]
        if not cells[0] and rows:   # a wrapped note: continues the row above
            for n, c in zip(names, cells, strict=True):
                if c:
                    rows[-1][n] = f"{rows[-1][n]} {c}".strip()
            continue
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def runs() -> list[Run]:
    """Every section of RESULTS.md: its heading, the prose around its table, the rows."""
    out = []
    for sec in re.split(r"^## ", RESULTS.read_text(), flags=re.M)[1:]:
        heading, _, body = sec.partition("\n")
        parts = re.split(r"^```[^\n]*\n", body, flags=re.M)
        prose = _norm(" ".join(parts[0::2]))
        rows = [r for t in parts[1::2] for r in _table(t.splitlines())]
        out.append(Run(heading.strip(), prose, rows))
    return out


def find_run(heading: str, command: str) -> Run:
    found = [r for r in runs() if r.heading == heading and command in r.prose]
    assert len(found) == 1, f"RESULTS.md: {len(found)} runs '## {heading}' with {command!r}"
    return found[0]


def row(run: Run, what: str, data: str = "", i: int = 0) -> dict[str, str]:
    found = [r for r in run.rows if r.get("what is timed", r.get("what")) == what
             and r.get("data", "").startswith(data)]
    assert len(found) > i, f"RESULTS.md '## {run.heading}': no row {what!r} ({data!r})"
    return found[i]


Source = Callable[[Run], float]


def med(what: str, data: str = "", i: int = 0) -> Source:
    """The median rate of a row."""
    return lambda run: float(row(run, what, data, i)["median /s"].replace(",", ""))


def col(what: str, column: str, data: str = "") -> Source:
    return lambda run: float(row(run, what, data)[column].replace(",", ""))


def note(what: str, pattern: str, group: int = 1, data: str = "") -> Source:
    """A number in a row's note."""
    def get(run: Run) -> float:
        m = re.search(pattern, row(run, what, data)["note"])
        assert m, f"RESULTS.md: note of {what!r} does not match {pattern!r}"
        return float(m.group(group).replace(",", ""))
    return get


def prose(pattern: str, group: int = 1) -> Source:
    """A number in a run's prose (its command line and remarks)."""
    def get(run: Run) -> float:
        m = re.search(pattern, run.prose)
        assert m, f"RESULTS.md '## {run.heading}': prose does not match {pattern!r}"
        return float(m.group(group).replace(",", ""))
    return get


def gain(before: Source, after: Source) -> Source:
    """after / before - 1, in %."""
    return lambda run: (after(run) / before(run) - 1) * 100


def per(unit: float, rate: Source) -> Source:
    """unit / rate: e.g. microseconds per frame from frames/s."""
    return lambda run: unit / rate(run)


def scaled(rate: Source, k: float) -> Source:
    """A value in other units: ns -> us is k = 1e-3."""
    return lambda run: rate(run) * k


def as_quoted(figure: str) -> tuple[Decimal, int]:
    """A figure as printed ('139,000', '2.4M', 'x6.7', '+8', '12.0') -> its value and its
    significant digits. An integer's trailing zeros are rounding, but at least 2 digits
    count: '10,000' says 10,000 to two digits."""
    s = figure.replace(",", "").lstrip("x+")
    scale = Decimal(1)
    if s[-1] in "kM":
        scale = Decimal(1000 if s[-1] == "k" else 1_000_000)
        s = s[:-1]
    digits = s.lstrip("-").replace(".", "").lstrip("0")
    sig = len(digits) if "." in s else max(len(digits.rstrip("0")), min(2, len(digits)))
    return Decimal(s) * scale, max(sig, 1)


def rounds_to(value: float, figure: str) -> bool:
    """Does ``value`` round, at the figure's precision, to ``figure``?"""
    want, sig = as_quoted(figure)
    if value == 0:
        return want == 0
    v = Decimal(repr(value))
    exp = v.copy_abs().adjusted() - sig + 1
    return v.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_UP) == want


@pytest.mark.parametrize("value, figure, ok", [
    (139_127, "139,000", True), (138_400, "139,000", False), (10_007, "10,000", True),
    (10_700, "10,000", False), (2_391_958, "2.4M", True), (27.7, "x28", True),
    (17.0, "17.0", True), (16.96, "17.0", True), (16.94, "17.0", False), (103.5, "104", True),
    (8.41, "+8", True), (1.396, "1.40", True), (0.536111, "0.536", True), (69, "69", True),
    (57, "69", False),
])
def test_rounds_to(value, figure, ok):
    assert rounds_to(value, figure) is ok


@dataclass(frozen=True)
class Claim:
    doc: str                               # path under the repository
    quote: str                             # what the doc says, figures included
    run: tuple[str, str]                   # RESULTS.md heading, a text of its command
    figures: tuple[tuple[str, Source], ...]  # figure as quoted -> its value in that run
    cites: tuple[str, ...]                 # what the paragraph or caption must name


WHOLE = ("2026-11-25", "Command: `python -m benchmarks --record`")
SWEEP = ("2026-11-25", "Command: `python -m benchmarks --only sweep --runs 5 --record`")
AB = ("2026-11-25 before/after (issue 9's optimisations)", "Command: `python -m benchmarks.ab`")
EMU = ("2026-11-24", "Command: `python -m benchmarks --runs 3 --record`")
SUITE = ("python -m benchmarks", "2026-11-25")   # the README table's caption and command
PEERS = ("in the same run", "--only peers")

BOOK_CK = "frames -> book, seq check, with checksum (C core + scanner)"
BOOK_CK_PY = "frames -> book, seq check, with checksum (pure Python + orjson)"
TICK = "per-tick latency, per-event run"
FRAMES = "OKX.ws.1.0 x100 (41,000 frames)"
HFT = "hftbacktest {}, elapse to end, {}"

#: The sweep rows (1 worker, 2 workers) the README and docs/sweeps.md quote.
POOL = ("sweep, process pool, 1 worker", "sweep, process pool, 2 workers")
DASK = ("sweep, Dask LocalCluster, 1 worker", "sweep, Dask LocalCluster, 2 workers")
SWEEP_CITES = ("python -m benchmarks --only sweep --runs 5", "2026-11-25")


def sweep(rows: tuple[str, str], *quoted: str) -> tuple[tuple[str, Source], ...]:
    """The figures quoted of one executor's sweep ``rows``, in this order: cells/s on 1
    worker, on 2, and the 2 / 1 ratio the 2-worker row notes (``x1.40``)."""
    sources = (med(rows[0]), med(rows[1]), note(rows[1], r"x([\d.]+)"))
    return tuple(zip(quoted, sources, strict=False))


#: The whole suite's sweep rows of the same day, as the README and docs/sweeps.md quote them.
WHOLE_SWEEP = (*sweep(POOL, "57", "83"), *sweep(DASK, "25", "41"))

CLAIMS = [
    # README.md: the performance table, one run (the whole suite, 2026-11-25)
    Claim("README.md", "139,000 frames/s (162,000 without checksum)", WHOLE, (
        ("139,000", med(BOOK_CK)),
        ("162,000", med("frames -> book, seq check, no checksum (C core + scanner)")),
    ), SUITE),
    Claim("README.md", "1,940,000 msgs/s (1,760,000 with a walk and depth 5)", WHOLE, (
        ("1,940,000", med("level rows -> books, top of book (c)")),
        ("1,760,000", med("level rows -> books, top + walk + depth 5 (c)")),
    ), SUITE),
    Claim("README.md", "| 343,000 ticks/s | 300,000 |", WHOLE, (
        ("343,000", med("cost pipeline, columnar (read + C book + walk + formulas)")),
    ), SUITE),
    Claim("README.md", "| 32,500 ticks/s |", WHOLE, (
        ("32,500", med("cost pipeline, per event (the live code path)")),
    ), SUITE),
    Claim("README.md", "p50 12.0 / 4.7 / 17.0 us, p99 67 / 13 / 73 us", WHOLE, (
        ("12.0", note(TICK, r"decode ([\d.]+)/")), ("67", note(TICK, r"decode [\d.]+/([\d.]+)")),
        ("4.7", note(TICK, r"walk\+models ([\d.]+)/")),
        ("13", note(TICK, r"walk\+models [\d.]+/([\d.]+)")),
        ("17.0", note(TICK, r"total ([\d.]+)/")), ("73", note(TICK, r"total [\d.]+/([\d.]+)")),
    ), SUITE),
    Claim("README.md", "total p50 57 us, p99 104 us", WHOLE, (
        ("57", note("per-tick latency, live (LiveSource <- emulator)", r"total ([\d.]+)/")),
        ("104", note("per-tick latency, live (LiveSource <- emulator)", r"total [\d.]+/([\d.]+)")),
    ), SUITE),
    Claim("README.md", "| 10,000 frames/s |", WHOLE, (
        ("10,000", med("recorder writer: frames -> Parquet (parse, check, write)")),
    ), SUITE),
    Claim("README.md", "the whole suite, peers included, took 418 s here", WHOLE, (
        ("418", prose(r"([\d,]+) s from start to end")),
    ), ("2026-11-25",)),
    # README.md: the peers, same run
    Claim("README.md", "| 13,200 frames/s | x6.7 (target 5) |", WHOLE, (
        ("13,200", med("cryptofeed OKX handler, frames -> book, checksum on")),
        ("x6.7", note("cryptofeed OKX handler, frames -> book, checksum on", r"simlab x([\d.]+)")),
    ), PEERS),
    Claim("README.md", "| 21,700 frames/s | x5.2 |", WHOLE, (
        ("21,700", med("cryptofeed OKX handler, frames -> book, checksum off")),
        ("x5.2", note("cryptofeed OKX handler, frames -> book, checksum off", r"simlab x([\d.]+)")),
    ), PEERS),
    Claim("README.md", "| 3,200 / 12,500 frames/s | x28 / x9.0 |", WHOLE, (
        ("3,200", med("ccxt 4.5.54 okx handle_message -> handle_order_book, checksum on")),
        ("12,500", med("ccxt 4.5.54 okx handle_message -> handle_order_book, checksum off")),
        ("x28", note("ccxt 4.5.54 okx handle_message -> handle_order_book, checksum on",
                     r"simlab x([\d.]+)")),
        ("x9.0", note("ccxt 4.5.54 okx handle_message -> handle_order_book, checksum off",
                      r"simlab x([\d.]+)")),
    ), PEERS),
    Claim("README.md", "| 23,000 frames/s | x4.9 |", WHOLE, (
        ("23,000", med("nautilus_trader OrderBook L2_MBP, frames -> deltas -> book (orjson + "
                       "Cython OrderBookDelta built in Python, Rust apply_deltas)")),
        ("x4.9", note("nautilus_trader OrderBook L2_MBP, frames -> deltas -> book (orjson + "
                      "Cython OrderBookDelta built in Python, Rust apply_deltas)",
                      r"simlab x([\d.]+)")),
    ), PEERS),
    Claim("README.md", "| 2.4M level rows/s | x22 |", WHOLE, (
        ("2.4M", med("nautilus_trader OrderBook L2_MBP, apply_deltas alone on pre-built "
                     "OrderBookDeltas (Rust core)")),
        ("x22", note("nautilus_trader OrderBook L2_MBP, apply_deltas alone on pre-built "
                     "OrderBookDeltas (Rust core)", r"simlab x([\d.]+)")),
    ), PEERS),
    Claim("README.md", "| 17.4M level rows/s | x3.0 (target 1) |", WHOLE, (
        ("17.4M", med(HFT.format("ROIVectorMarketDepthBacktest",
                                 "LOCAL events only (local book only)"))),
        ("x3.0", note(HFT.format("ROIVectorMarketDepthBacktest",
                                 "LOCAL events only (local book only)"), r"simlab x([\d.]+)")),
    ), PEERS),
    Claim("README.md", "| 6.6M level rows/s | x7.9 |", WHOLE, (
        ("6.6M", med(HFT.format("HashMapMarketDepthBacktest",
                                "EXCH|LOCAL events (exchange + local book)"))),
        ("x7.9", note(HFT.format("HashMapMarketDepthBacktest",
                                 "EXCH|LOCAL events (exchange + local book)"),
                      r"simlab x([\d.]+)")),
    ), PEERS),
    Claim("README.md", "simlab's checksum-on rate was 88,000 frames/s", WHOLE, (
        ("88,000", med("simlab frames -> book, seq check, checksum on (c core)", FRAMES)),
    ), ("in the same run",)),
    Claim("README.md", "takes 77 us back to back and 154 us right after a 10 ms sleep", WHOLE, (
        ("77", note("a fixed Python loop (2,000 additions): back to back / after 10 ms sleep",
                    r"(\d+) us /")),
        ("154", note("a fixed Python loop (2,000 additions): back to back / after 10 ms sleep",
                     r"/ (\d+) us")),
    ), ("in the same run",)),
    # README.md: before/after, python -m benchmarks.ab (two runs)
    Claim("README.md", "the columnar pipeline +8 % and +17 % (354,000 -> 384,000 and "
          "328,000 -> 383,000 ticks/s", AB, (
              ("+8", gain(med("cost pipeline columnar (before)"),
                          med("cost pipeline columnar (after)"))),
              ("+17", gain(med("cost pipeline columnar (before)", i=1),
                           med("cost pipeline columnar (after)", i=1))),
              ("354,000", med("cost pipeline columnar (before)")),
              ("384,000", med("cost pipeline columnar (after)")),
              ("328,000", med("cost pipeline columnar (before)", i=1)),
              ("383,000", med("cost pipeline columnar (after)", i=1)),
          ), ("python -m benchmarks.ab", "653bd85")),
    Claim("README.md", "the per-event path +3 % and +16 % (total p50 17.7 -> 17.6 and "
          "22.2 -> 18.8 us)", AB, (
              ("+3", gain(med("cost pipeline per event (before)"),
                          med("cost pipeline per event (after)"))),
              ("+16", gain(med("cost pipeline per event (before)", i=1),
                           med("cost pipeline per event (after)", i=1))),
              ("17.7", note("cost pipeline per event (before)", r"total p50 ([\d.]+)")),
              ("17.6", note("cost pipeline per event (after)", r"total p50 ([\d.]+)")),
          ), ("python -m benchmarks.ab", "653bd85")),
    # README.md: sweeps, their own run, and the whole suite's
    Claim("README.md", "process pool 69 cells/s on 1 worker and 97 on 2 (x1.40); Dask "
          "`LocalCluster` 44 and 59 (x1.33)", SWEEP, (
              *sweep(POOL, "69", "97", "x1.40"), *sweep(DASK, "44", "59", "x1.33")), SWEEP_CITES),
    Claim("README.md", "the same rows gave 57/83 and 25/41", WHOLE, WHOLE_SWEEP,
          ("whole suite's run",)),
    # docs/sweeps.md
    Claim("docs/sweeps.md", "| process pool | 69 cells/s | 97 cells/s | 1.40 |", SWEEP,
          sweep(POOL, "69", "97", "1.40"), SWEEP_CITES),
    Claim("docs/sweeps.md", "| Dask LocalCluster | 44 cells/s | 59 cells/s | 1.33 |", SWEEP,
          sweep(DASK, "44", "59", "1.33"), SWEEP_CITES),
    Claim("docs/sweeps.md", "gave 57 and 83 cells/s on the process pool and 25 and 41 on "
          "Dask", WHOLE, WHOLE_SWEEP, ("whole suite's run",)),
    Claim("docs/sweeps.md", "about 14.5 ms (1/69 s on one worker)", SWEEP, (
        ("14.5", per(1000, med(POOL[0]))), *sweep(POOL, "69"),
    ), ("1/69 s",)),   # the table's figure just above
    # docs/emulator.md: one run, 2026-11-24
    Claim("docs/emulator.md", "| emulator -> 1 client, CST market, checksums on | 15,606 |", EMU, (
        ("15,606", med("emulator -> 1 client, book msgs", "CST market")),
    ), ("python -m benchmarks --runs 3", "2026-11-24")),
    Claim("docs/emulator.md", "| emulator -> 1 client, CST market, checksum 0 | 16,488 |", EMU, (
        ("16,488", med("emulator -> 1 client, book msgs (checksum 0)", "CST market")),
    ), ("python -m benchmarks --runs 3", "2026-11-24")),
    Claim("docs/emulator.md", "| emulator -> 1 client, `RandomMarket` | 23,887 |", EMU, (
        ("23,887", med("emulator -> 1 client, book msgs", "RandomMarket")),
    ), ("python -m benchmarks --runs 3", "2026-11-24")),
    Claim("docs/emulator.md", "| emulator -> 1 client, a recording served as fast as read | "
          "26,199 |", EMU, (
              ("26,199", med("emulator -> 1 client, book msgs", "a recording")),
          ), ("python -m benchmarks --runs 3", "2026-11-24")),
    Claim("docs/emulator.md", "| publisher alone, CST market (market + OKX messages, no "
          "network) | 20,902 |", EMU, (
              ("20,902", med("publisher alone, book msgs", "CST market")),
          ), ("python -m benchmarks --runs 3", "2026-11-24")),
    Claim("docs/emulator.md", "the heavier CST market gives 15,606 where `RandomMarket` gives "
          "23,887 in the same run", EMU, (
              ("15,606", med("emulator -> 1 client, book msgs", "CST market")),
              ("23,887", med("emulator -> 1 client, book msgs", "RandomMarket")),
          ), ("in the same run",)),
    # docs/performance.md: the monitor's cost, the whole suite's run
    Claim("docs/performance.md", "1,524 ns a tick by itself, 3.9 % of a tick's CPU time; off "
          "against on, 25,478 against 21,406 ticks per CPU second, +19.0 %, with a spread of "
          "1.74 and 1.55", WHOLE, (
              ("1,524", note("monitor hand-over alone, per tick", r"(\d+) ns a tick")),
              ("3.9", note("monitor hand-over alone, per tick", r"= ([\d.]+) %")),
              ("25,478", med("cost pipeline, per event, monitor off")),
              ("21,406", med("cost pipeline, per event, monitor on (default)")),
              ("+19.0", note("cost pipeline, per event, monitor on (default)",
                             r"overhead \+([\d.]+) %")),
              ("1.74", col("cost pipeline, per event, monitor off", "max/min")),
              ("1.55", col("cost pipeline, per event, monitor on (default)", "max/min")),
          ), ("python -m benchmarks --record", "2026-11-25")),
    # docs/recording-format.md: the writer's cost per frame
    Claim("docs/recording-format.md", "about 100 us in all on the real capture's frames "
          "(10,007 frames/s", WHOLE, (
              ("100", per(1e6, med("recorder writer: frames -> Parquet (parse, check, write)"))),
              ("10,007", med("recorder writer: frames -> Parquet (parse, check, write)")),
          ), ("python -m benchmarks", "2026-11-25")),
]

# README.md figures fixed in issue 15 (each once quoted a run other than the one named).
README_FIXED = [
    Claim("README.md", "about 11x slower (139,000 against 12,300 frames/s", WHOLE, (
        ("11", lambda run: med(BOOK_CK)(run) / med(BOOK_CK_PY)(run)),
        ("139,000", med(BOOK_CK)),
        ("12,300", med(BOOK_CK_PY)),
    ), ("make bench", "2026-11-25")),
    Claim("README.md", "| 1,435 msgs/s, 0 lost, RSS peak 135 MB |", WHOLE, (
        ("1,435", med("simlab record <- emulator (live, loopback, own process)")),
        ("135", note("simlab record <- emulator (live, loopback, own process)",
                     r"RSS peak (\d+) MB")),
    ), SUITE),
    Claim("README.md", "| 1.5 us (3.9 % of a tick's CPU time) |", WHOLE, (
        ("1.5", scaled(note("monitor hand-over alone, per tick", r"(\d+) ns a tick"), 1e-3)),
        ("3.9", note("monitor hand-over alone, per tick", r"= ([\d.]+) %")),
    ), SUITE),
    Claim("README.md", "RSS peak 187 -> 148 MB (`python -m benchmarks.soak_record --minutes "
          "1`", AB, (
              ("187", prose(r"RSS start / peak / end \d+ / (\d+) / \d+ MB ->")),
              ("148", prose(r"-> \d+ / (\d+) / \d+ MB")),
          ), ("benchmarks.soak_record --minutes 1",)),
    Claim("README.md", "(the `train` rows of the whole suite's run above, which `--only train` "
          "runs alone; one simulated hour of BTC-USDT): labels + features 21,000 moments x "
          "sides/s, `simlab train maker-taker` 19,000 moments/s, `simlab train slippage` 4,900 "
          "rows/s", WHOLE, (
              ("21,000", med("maker/taker labels + features (fill_dataset)")),
              ("19,000", med("simlab train maker-taker (labels, split, fit, metrics)")),
              ("4,900", med("simlab train slippage (5 sizes, mean + 3 quantiles)")),
          ), ("whole suite's run",)),
    Claim("README.md", "runs columnar at 119,000 ticks/s (683,000 with the queue-share "
          "default)", WHOLE, (
              ("119,000", med("cost pipeline, limit order, trained logistic: columnar")),
              ("683,000", med("cost pipeline, limit order, queue-share default: columnar")),
          ), ("the `train` rows of the whole suite's run",)),
]


def _check(claim: Claim) -> None:
    ctx = _norm(context(claim.doc, claim.quote))
    for c in claim.cites:
        assert _norm(c) in ctx, f"{claim.doc}: {claim.quote!r} does not name {c!r} beside it"
    run = find_run(*claim.run)
    for figure, source in claim.figures:
        assert figure in claim.quote
        value = source(run)
        assert rounds_to(value, figure), (
            f"{claim.doc}: {figure} in {claim.quote!r}, but '## {run.heading}' of "
            f"RESULTS.md gives {value:g}")


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: f"{c.doc}:{c.quote[:40]}")
def test_benchmark_figure_is_its_runs_row(claim):
    _check(claim)


@pytest.mark.parametrize("claim", README_FIXED, ids=lambda c: f"{c.doc}:{c.quote[:40]}")
def test_readme_benchmark_figure_fixed(claim):
    _check(claim)


def _table_cells(doc: str, header: str, column: int) -> list[str]:
    """One column of the markdown table of ``doc`` whose header row starts with ``header``."""
    table = next(b for b in blocks((ROOT / doc).read_text()) if b.startswith(header))
    return [ln.split("|")[column + 1].strip() for ln in table.splitlines()[2:]]


@pytest.mark.parametrize("doc, header, column", [
    ("README.md", "| what | rate | target |", 1),
    ("README.md", "| peer (its fastest realistic setup) |", 1),
    ("README.md", "| peer (its fastest realistic setup) |", 2),
    ("docs/sweeps.md", "| executor | 1 worker |", 1),
    ("docs/sweeps.md", "| executor | 1 worker |", 2),
    ("docs/emulator.md", "| what | book messages/s |", 1),
])
def test_every_benchmark_table_figure_has_a_claim(doc, header, column):
    """A figure added to a benchmark table without its run's row here fails."""
    quotes = [_norm(c.quote) for c in CLAIMS + README_FIXED if c.doc == doc]
    cells = _table_cells(doc, header, column)
    assert cells
    for cell in cells:
        assert any(_norm(cell) in q for q in quotes), f"{doc}: {cell!r} has no claim here"


def test_a_figure_from_another_run_fails():
    # the README once quoted 57/83 cells/s (the whole suite's run) as the sweep run's
    wrong = Claim("README.md", "x", SWEEP, (("57", med("sweep, process pool, 1 worker")),), ())
    with pytest.raises(AssertionError, match="gives 69"):
        for figure, source in wrong.figures:
            value = source(find_run(*wrong.run))
            assert rounds_to(value, figure), f"gives {value:g}"


# -- deterministic figures, recomputed -----------------------------------------------------


def _figure(doc: str, pattern: str) -> tuple[str, ...]:
    m = re.search(pattern, _norm((ROOT / doc).read_text()))
    assert m, f"{doc} no longer matches {pattern!r}"
    return m.groups()


def _int(s: str) -> int:
    return int(s.replace(",", ""))


@pytest.fixture(scope="module")
def capture_report(okx_capture, tmp_path_factory):
    """`simlab import okx-capture OKX.ws.1.0 --out rec && simlab verify rec --json`."""
    import contextlib
    import io

    from simlab.cli import main

    rec = tmp_path_factory.mktemp("figures") / "rec"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["import", "okx-capture", str(okx_capture), "--out", str(rec),
                     "--no-progress"]) == 0
    imported = out.getvalue()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["verify", str(rec), "--json"]) == 0
    manifest = json.loads((rec / "manifest.json").read_text())
    return imported, json.loads(out.getvalue()), manifest


def test_readme_demo_counts_of_the_real_capture(capture_report):
    msgs, verified = _figure("README.md", r"(\d+) book messages, (\d+) checksums verified")
    _, rep, _ = capture_report
    books = rep["channels"]["books"]["total"]
    assert (books["messages"], books["checksum_verified"]) == (int(msgs), int(verified))
    assert books["checksum_failed"] == 0


def test_recording_format_manifest_example_is_the_real_capture(capture_report):
    doc = "docs/recording-format.md"
    _, _, m = capture_report
    (total_lines,) = _figure(doc, r'"total_lines": (\d+)')
    (arrivals,) = _figure(doc, r'"arrivals": (\d+)')
    raw, levels, trades = _figure(doc, r'"rows": \{"raw": (\d+), "levels": (\d+), '
                                       r'"trades": (\d+)\}')
    books, btc = _figure(doc, r'"channels": \{"books": \{"messages": (\d+), "instruments": '
                              r'\{"BTC-USDT": (\d+)')
    (subscribe,) = _figure(doc, r'"control": \{"subscribe": (\d+)\}')
    integ, verified = _figure(doc, r'"integrity": \{"books": \{"BTC-USDT": \{"messages": (\d+), '
                                   r'"checksum_verified": (\d+)')
    assert m["source"]["total_lines"] == int(total_lines)
    assert m["arrivals"] == int(arrivals)
    assert m["rows"] == {"raw": int(raw), "levels": int(levels), "trades": int(trades)}
    assert m["channels"]["books"]["messages"] == int(books)
    assert m["channels"]["books"]["instruments"]["BTC-USDT"] == int(btc)
    assert m["control"] == {"subscribe": int(subscribe)}
    i = m["integrity"]["books"]["BTC-USDT"]
    assert (i["messages"], i["checksum_verified"]) == (int(integ), int(verified))


def test_emulator_doc_counts_of_the_served_capture(capture_report):
    books, trades, checks = _figure(
        "docs/emulator.md",
        r"all (\d+) `books` and (\d+) `trades` frames byte-identical, all (\d+) checksums")
    imported, rep, _ = capture_report
    assert rep["channels"]["books"]["total"]["messages"] == int(books)
    assert rep["channels"]["books"]["total"]["checksum_verified"] == int(checks)
    assert f"trades {trades}" in imported


def test_almgren_chriss_published_figures():
    from simlab.models.impact import ACParams, expected_cost_closed, variance_closed

    teach = ACParams(sigma=0.12 / math.sqrt(250) * 50, eta=2.5e-6, gamma=2.5e-7,
                     epsilon=1 / 16, lam=1e-6, T=60, N=60)
    E, sd = expected_cost_closed(teach, 1e6), math.sqrt(variance_closed(teach, 1e6))
    for doc in ("README.md", "docs/replay-and-costs.md"):
        e, s = _figure(doc, r"E = \$([\d,]+\.\d\d), SD = \$([\d,]+\.\d\d)")
        assert (f"{E:,.2f}", f"{sd:,.2f}") == (e, s), doc


def test_sample_recording_as_the_readme_says():
    minutes, inst, mb = _figure("README.md", r"It is (\d+) synthetic minutes of ([\w-]+), "
                                             r"([\d.]+) MB, regenerated by `make sample-data`")
    sample = ROOT / "data" / "sample"
    m = json.loads((sample / "manifest.json").read_text())
    assert round((m["last_recv_ns"] - m["first_recv_ns"]) / 60e9) == int(minutes)
    assert list(m["instruments"]) == [inst]
    # what data/make_sample.py (make sample-data) prints
    size = sum(f.stat().st_size for f in sample.rglob("*") if f.is_file())
    assert f"{size / 1e6:.1f}" == mb
    (book_msgs,) = _figure("docs/sweeps.md", r"one replay of ([\d,]+) book messages")
    assert m["channels"]["books"]["messages"] == _int(book_msgs)


def test_synth_line_in_the_emulator_doc(tmp_path, capsys):
    from simlab.cli import main

    frames, books, trades, seconds = _figure(
        "docs/emulator.md", r"`simlab synth --out DIR` prints `wrote DIR: (\d+) frames "
                            r"\(books (\d+), trades (\d+)\), (\d+) simulated s in")
    assert main(["synth", "--out", str(tmp_path / "DIR"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{frames} frames (books {books}, trades {trades}), {seconds} simulated s in" in out


def test_learning_doc_coefficient_of_the_negative_tilt(tmp_path):
    from simlab.emulator.cst import CSTParams
    from simlab.emulator.offline import write_synthetic_recording
    from simlab.sim.train import train_maker_taker

    (beta, coef) = _figure("docs/learning.md", r"With `imbalance=(-[\d.]+)` the imbalance "
                                                r"coefficient is (-[\d.]+)")
    (coef_bullet,) = _figure("docs/learning.md", r"\+0\.25 for beta = \+0\.9 and (-[\d.]+) for "
                                                 r"beta = -0\.9")
    assert coef == coef_bullet
    rec = write_synthetic_recording(tmp_path / "b", seconds=1200, imbalance=float(beta),
                                    params=CSTParams(mu=8.0, depth=100), seed=2)
    r = train_maker_taker(rec, "BTC-USDT", quantity=0.01, horizon_s=1.0)
    got = dict(zip(r.model.features, r.model.coef, strict=True))["imbalance"]
    assert f"{got:.2f}" == coef


def test_learning_doc_bullets_quote_its_snippet():
    """The bullets under docs/learning.md's known-answer snippet, and the README's summary
    of it, quote the figures the snippet asserts (tests/test_docs_snippets.py runs it)."""
    text = _norm((ROOT / "docs" / "learning.md").read_text())
    start = text.index("The figures below come from this")
    snippet, bullets = text[start:text.index("```", text.index("```python", start) + 9)], text
    pairs = [  # (in the snippet's asserts, in the prose)
        (r'round\(r\.metrics\["auc"\], 2\) == (0\.\d+)',
         r"Brier [\d.]+ against [\d.]+, AUC (0\.\d+)"),
        (r'round\(r\.metrics\["log_loss_skill"\], 2\) == 0\.0(\d)', r"\(skill (\d) %\)"),
        (r"== \[(0\.\d+), (0\.\d+), (0\.\d+), (0\.\d+)\]",
         r"log-loss (0\.\d+) against (0\.\d+) \(skill \d %\), Brier (0\.\d+) against (0\.\d+)"),
        (r'round\(coef\["imbalance"\], 2\) == (0\.\d+)',
         r"coefficient is \+(0\.\d+) for beta = \+0\.9"),
        (r"round\(by_quintile\.iloc\[0\], 2\) == (0\.\d+) and round\(by_quintile\.iloc\[-1\], 2\) "
         r"== (0\.\d+)", r"\((0\.\d+) to (0\.\d+) by quintile\)"),
        (r'\["coverage"\]\.round\(3\)\.tolist\(\) == \[(0\.\d+), (0\.\d+), (0\.\d+)\]',
         r"Held-out coverage is (0\.\d+), (0\.\d+) and (0\.\d+)"),
        (r"nunique\(\) == (\d+)", r"sample size \((\d+) moments\)"),
    ]
    for in_code, in_prose in pairs:
        code, said = re.search(in_code, snippet), re.search(in_prose, bullets)
        assert code and said, (in_code, in_prose)
        assert [float(x) for x in code.groups()] == [float(x) for x in said.groups()], in_prose
    # the README's summary of the same run
    auc, skill = _figure("README.md", r"horizon gives AUC (0\.\d+) and log-loss skill (\d+) %")
    assert float(auc) == float(re.search(pairs[0][0], snippet).group(1))
    assert int(skill) == int(re.search(pairs[1][0], snippet).group(1))
