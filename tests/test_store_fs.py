"""Recordings read through pyarrow filesystems (simlab.store.reader.Recording): a file://
URI, a LocalFileSystem or SubTreeFileSystem with a path, and a filesystem with no local
files at all (fsspec's in-memory one) give the same tables, books and priced ticks as the
plain local path; errors name the URI."""

from __future__ import annotations

import itertools
import pickle
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from simlab.feed import ReplaySource
from simlab.feed.replay import open_recordings
from simlab.feed.tables import book_messages
from simlab.sim.calibrate import calibrate_recording
from simlab.sim.order import OrderSpec
from simlab.sim.run import price_recording
from simlab.store import Recording
from simlab.store.manifest import RecordingError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
INST = "BTC-USDT"
ARRIVALS = 15180  # sample frames: 6001 book + 9175 trade messages + 4 events
T0 = 1767225600005000000  # its first receive time (ns)


@pytest.fixture(scope="module")
def sample() -> Path:
    if not (SAMPLE / "manifest.json").is_file():
        pytest.skip(f"sample recording {SAMPLE} absent (make sample-data)")
    return SAMPLE


@pytest.fixture(scope="module")
def memfs(sample):
    """The sample recording copied into an in-memory filesystem: nothing of it is on local
    disk at that path, so any read that bypasses the filesystem fails."""
    fsspec = pytest.importorskip("fsspec")
    mem = fsspec.filesystem("memory")
    root = f"/simlab-test-{uuid.uuid4().hex}/sample"
    for f in sample.rglob("*"):
        if f.is_file():
            mem.pipe(f"{root}/{f.relative_to(sample).as_posix()}", f.read_bytes())
    yield pafs.PyFileSystem(pafs.FSSpecHandler(mem)), root
    mem.rm(root.rsplit("/", 1)[0], recursive=True)


@pytest.fixture(scope="module")
def opened(sample, memfs):
    """The sample recording opened every supported way except the plain path."""
    mem, mem_root = memfs
    return {
        "file-uri": Recording(sample.as_uri()),
        "local-fs": Recording(str(sample), filesystem=pafs.LocalFileSystem()),
        "subtree-root": Recording("", filesystem=pafs.SubTreeFileSystem(
            str(sample), pafs.LocalFileSystem())),
        "subtree-child": Recording("sample", filesystem=pafs.SubTreeFileSystem(
            str(sample.parent), pafs.LocalFileSystem())),
        "memory": Recording(mem_root, filesystem=mem),
    }


WAYS = ["file-uri", "local-fs", "subtree-root", "subtree-child", "memory"]


def test_sample_counts(sample):
    # the published size of the sample (docs/recording-format.md, manifest): guards the
    # equality tests below against comparing two empty reads
    rec = Recording(sample)
    assert rec.filesystem is None and isinstance(rec.path, Path)
    assert rec.manifest["arrivals"] == ARRIVALS
    assert rec.raw_table().num_rows == ARRIVALS
    assert rec.manifest["first_recv_ns"] == T0


@pytest.mark.parametrize("way", WAYS)
def test_tables_equal_the_plain_path(sample, opened, way):
    plain, rec = Recording(sample), opened[way]
    assert rec.filesystem is not None
    assert rec.manifest == plain.manifest
    for dataset in ("raw", "levels", "trades"):
        assert rec.table(dataset).equals(plain.table(dataset)), dataset
    cols = ["recv_ns", "snapshot", "side", "price", "size"]
    kw = {"channel": "books", "inst": INST, "columns": cols, "read_dictionary": ["side"]}
    assert rec.stream_table("levels", **kw).equals(plain.stream_table("levels", **kw))
    a = list(itertools.islice(rec.iter_raw(from_arrival=5000), 300))
    assert a == list(itertools.islice(plain.iter_raw(from_arrival=5000), 300))
    assert len(a) == 300 and a[0].arrival >= 5000


@pytest.mark.parametrize("way", WAYS)
def test_same_books(sample, opened, way):
    plain, rec = Recording(sample), opened[way]
    m, p = book_messages(rec, "books", INST), book_messages(Recording(sample), "books", INST)
    assert len(m) == len(p) == 6001
    for field in ("arrival", "recv_ns", "valid", "flags", "msg_start", "side", "price",
                  "size"):
        np.testing.assert_array_equal(getattr(m, field), getattr(p, field), err_msg=field)
    # the per-event engine over 5 s: the same rebuilt books, event for event
    span = dict(insts=[INST], start=T0 + 100 * 10**9, end=T0 + 105 * 10**9)

    def books(r):
        return [(e.arrival, e.valid, e.book.levels("bid", 5), e.book.levels("ask", 5))
                for e in ReplaySource(r, **span) if e.kind == "book"]

    got, want = books(rec), books(plain)
    assert got == want and len(want) >= 40  # ~10 book messages a second


@pytest.mark.parametrize("way", ["file-uri", "subtree-root", "memory"])
def test_same_price_recording_table(sample, opened, way):
    order = OrderSpec(INST, "buy", 10_000.0)
    want, winfo = price_recording(str(sample), order)
    got, info = price_recording(opened[way], order)
    assert len(want.table) == 6001
    pd.testing.assert_frame_equal(got.table, want.table)
    assert info["impact_provenance"] == winfo["impact_provenance"]
    assert calibrate_recording(opened[way], INST) == calibrate_recording(str(sample), INST)


def test_uri_string_through_the_pipeline_names_the_uri(sample):
    uri = sample.as_uri()
    order = OrderSpec(INST, "sell", 5_000.0)
    got, info = price_recording(uri, order, mode="events", start=T0 + 200 * 10**9,
                                end=T0 + 210 * 10**9)
    want, _ = price_recording(str(sample), order, mode="events", start=T0 + 200 * 10**9,
                              end=T0 + 210 * 10**9)
    assert info["recordings"] == [uri]
    cols = [c for c in want.table.columns if "latency" not in c]
    assert len(want.table) > 50
    pd.testing.assert_frame_equal(got.table[cols], want.table[cols])


def test_open_recordings_accepts_filesystem_pairs(sample):
    sub = pafs.SubTreeFileSystem(str(sample.parent), pafs.LocalFileSystem())
    (one,) = open_recordings((sub, "sample"))
    assert one.filesystem is sub and one.root == "sample"
    recs = open_recordings([str(sample), sample.as_uri(), (sub, "sample"), one])
    assert [r.filesystem is None for r in recs] == [True, False, False, False]
    assert recs[3] is one
    assert {r.name for r in recs} == {"sample"}


def test_display_names(sample):
    uri = sample.as_uri()
    assert Recording(uri).path == uri
    assert Recording(uri + "/").name == "sample"
    sub = Recording("sample", filesystem=pafs.SubTreeFileSystem(str(sample.parent),
                                                                 pafs.LocalFileSystem()))
    assert sub.path == str(sample)  # the subtree's base joined with the path
    assert "filesystem=subtree" in repr(sub)


def test_pickles_for_workers(opened):
    # a Dask worker receives the Recording (or its URI): the filesystem travels with it
    for way in ("file-uri", "subtree-root"):
        rec = pickle.loads(pickle.dumps(opened[way]))
        assert rec.trades_table().equals(opened[way].trades_table())


def test_errors_name_the_uri(tmp_path, sample):
    with pytest.raises(RecordingError, match=r"^file:///no/such/rec: no such recording"):
        Recording("file:///no/such/rec")
    with pytest.raises(RecordingError, match=r"no manifest\.json; not a simlab recording"):
        Recording(tmp_path.as_uri())
    (tmp_path / "f").write_text("x")
    with pytest.raises(RecordingError, match=r"/f: not a directory"):
        Recording((tmp_path / "f").as_uri())
    with pytest.raises(RecordingError, match=r"^nosuch://x: pyarrow cannot open this URI"):
        Recording("nosuch://x")
    with pytest.raises(ValueError, match="either a URI or a path inside filesystem="):
        Recording(sample.as_uri(), filesystem=pafs.LocalFileSystem())
    with pytest.raises(TypeError, match=r"filesystem must be a pyarrow\.fs\.FileSystem"):
        Recording(str(sample), filesystem="local")
    with pytest.raises(TypeError, match="recording must be a path or a URI string, got int"):
        Recording(3)


def test_damaged_manifest_and_missing_file_through_a_filesystem(memfs):
    mem, root = memfs
    bad = root.rsplit("/", 1)[0] + "/broken"
    mem.copy_file(f"{root}/manifest.json", f"{bad}/manifest.json")
    rec = Recording(bad, filesystem=mem)  # the manifest lists files this copy lacks
    entry = rec.files("levels")[0]
    where = re.escape(f"{bad}/{entry['path']}")
    with pytest.raises(RecordingError, match=rf"^{where}: listed in the manifest but missing"):
        rec.stream_table("levels", channel="books", inst=INST, columns=["price"])
    with pytest.raises(RecordingError, match="listed in the manifest but missing"):
        rec.levels_table()
    with mem.open_output_stream(f"{bad}/manifest.json") as f:
        f.write(b"{not json")
    where = re.escape(f"{bad}/manifest.json")
    with pytest.raises(RecordingError, match=rf"^{where}: unreadable manifest"):
        Recording(bad, filesystem=mem)
    with mem.open_output_stream(f"{bad}/manifest.json") as f:
        f.write(b'{"format": "other"}')
    with pytest.raises(RecordingError, match="not a simlab manifest"):
        Recording(bad, filesystem=mem)


def test_verify_asks_for_a_local_copy(sample):
    from simlab.store.verify import verify

    with pytest.raises(RecordingError, match="verify works on a local recording directory"):
        verify(SAMPLE.as_uri())
