"""Peers A (cryptofeed, ccxt): on the real capture they rebuild simlab's books, verify the
checksums they claim to, and need no network. Run only with the ``bench`` extra installed."""

from __future__ import annotations

import pytest
from support import real

from benchmarks._common import capture_frames
from benchmarks.peers import ccxt_okx, cryptofeed_okx

ROW_KEYS = {"what", "data", "n", "rate", "spread", "note", "unit"}


@pytest.fixture
def frames() -> list[bytes]:
    """The real capture twice over, as the benchmark repeats it (snapshots re-sent)."""
    real("cryptofeed", "OKX.0")
    return capture_frames(real("cryptofeed", "OKX.ws.1.0")) * 2


def test_first_cycle_is_the_capture(frames):
    # subscribe acks recur inside the capture, so the period is not the first repeat
    capture = frames[:len(frames) // 2]
    assert cryptofeed_okx.first_cycle(frames) == capture
    assert cryptofeed_okx.first_cycle(capture) == capture
    assert cryptofeed_okx.cycles(frames) == f"OKX.ws.1.0 x2 ({len(frames):,} frames)"


def test_cryptofeed_rebuilds_simlab_books(frames, offline):
    pytest.importorskip("cryptofeed")
    chk = cryptofeed_okx.check(frames)
    assert chk["frames"] == 410 and chk["books"] == 3
    assert chk["diffs"] == []
    assert chk["verified"] == chk["simlab_verified"] == 290
    assert chk["simlab_failed"] == 0
    assert chk["tamper_detected"]


def test_cryptofeed_rows(frames, offline):
    pytest.importorskip("cryptofeed")
    rows = cryptofeed_okx.run(frames, runs=1)
    assert [r["what"].rsplit(" ", 1)[1] for r in rows] == ["on", "off"]
    for r in rows:
        assert set(r) == ROW_KEYS
        assert r["n"] == len(frames) and r["rate"] > 0 and r["unit"] == "frames/s"
    assert "580 per timed run" in rows[0]["note"]  # 290 verified pushes a cycle, 2 cycles


def _ccxt_version() -> tuple[int, ...]:
    return tuple(int(x) for x in ccxt_okx.version().split(".")[:3])


def test_ccxt_rebuilds_simlab_books(frames, offline):
    pytest.importorskip("ccxt")
    chk = ccxt_okx.check(frames)
    assert chk["frames"] == 410 and chk["books"] == 3 and chk["book_msgs"] == 290
    assert chk["diffs"] == []
    assert chk["rejected"] == 0
    if _ccxt_version() <= (4, 5, 54):  # later releases dropped OKX's checksum check
        assert chk["verifies"]


def test_ccxt_rows(frames, offline):
    pytest.importorskip("ccxt")
    rows = ccxt_okx.run(frames, runs=1)
    verifies = ccxt_okx.check(frames)["verifies"]
    assert len(rows) == (2 if verifies else 1)
    for r in rows:
        assert set(r) == ROW_KEYS
        assert r["n"] == len(frames) and r["rate"] > 0 and r["unit"] == "frames/s"
    if verifies:
        assert "290 of 290 checksums verified" in rows[0]["note"]
        assert "0 rejected per timed run" in rows[0]["note"]
