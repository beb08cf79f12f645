"""Layout of a simlab recording: dataset names, Parquet schemas and partition paths.

A recording is a directory::

    manifest.json
    raw/channel=<ch>/inst=<instId>/date=<YYYY-MM-DD>/part-000000.parquet
    levels/...   (same partitioning)
    trades/...

Partition values are URI-encoded (pyarrow's hive default), so any channel or instrument
name gives a safe directory name. The date is the UTC day of the local receive time.
See ``docs/recording-format.md``.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote

import pyarrow as pa

FORMAT_NAME = "simlab-recording"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RAW, LEVELS, TRADES = "raw", "levels", "trades"
DATASETS = (RAW, LEVELS, TRADES)
DERIVED = (LEVELS, TRADES)

#: Partition for frames that belong to no channel: control events and ``pong``.
EVENT_CHANNEL = "_event"
#: Partition for frames that could not be parsed or normalised (kept byte-for-byte).
MALFORMED_CHANNEL = "_malformed"
#: Instrument partition value for frames without an instrument.
NO_INST = "_none"
#: Longest encoded partition value accepted; longer names go to the malformed partition.
MAX_PARTITION_VALUE = 200

RAW_SCHEMA = pa.schema([
    pa.field("arrival", pa.int64(), nullable=False),
    pa.field("recv_ns", pa.int64(), nullable=False),
    pa.field("conn", pa.int32(), nullable=False),
    pa.field("payload", pa.binary(), nullable=False),
])

#: The columns a normalised row starts with: the frame it came from (its raw ``arrival``),
#: that frame's receive time and the exchange's time of the message.
_STAMPS = [
    pa.field("arrival", pa.int64(), nullable=False),
    pa.field("recv_ns", pa.int64(), nullable=False),
    pa.field("ts_ms", pa.int64(), nullable=False),
]

LEVELS_SCHEMA = pa.schema([
    *_STAMPS,
    pa.field("seq_id", pa.int64()),
    pa.field("prev_seq_id", pa.int64()),
    pa.field("checksum", pa.int64()),
    pa.field("snapshot", pa.bool_(), nullable=False),
    pa.field("side", pa.string()),
    pa.field("price", pa.float64()),
    pa.field("size", pa.float64()),
    pa.field("count", pa.int32()),
    pa.field("price_str", pa.string()),
    pa.field("size_str", pa.string()),
])

TRADES_SCHEMA = pa.schema([
    *_STAMPS,
    pa.field("trade_id", pa.string(), nullable=False),
    pa.field("side", pa.string(), nullable=False),
    pa.field("price", pa.float64(), nullable=False),
    pa.field("size", pa.float64(), nullable=False),
    pa.field("price_str", pa.string(), nullable=False),
    pa.field("size_str", pa.string(), nullable=False),
    pa.field("count", pa.int32()),
    pa.field("seq_id", pa.int64()),
    pa.field("source", pa.string()),
])

SCHEMAS = {RAW: RAW_SCHEMA, LEVELS: LEVELS_SCHEMA, TRADES: TRADES_SCHEMA}

#: Columns the reader adds from the partition of each file.
PARTITION_COLUMNS = ("channel", "inst")

_NS_PER_DAY = 86_400 * 10**9
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()
_dates: dict[int, str] = {}


def utc_date(recv_ns: int) -> str:
    """UTC calendar day of a time in ns since the epoch, as used in ``date=`` partitions.

    >>> utc_date(1652459225503749100)
    '2022-05-13'
    """
    day = recv_ns // _NS_PER_DAY
    s = _dates.get(day)
    if s is None:
        from datetime import date

        s = _dates[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
    return s


@lru_cache(maxsize=4096)
def encode_value(value: str) -> str:
    """URI-encode a partition value the way pyarrow's hive partitioning decodes it.

    >>> encode_value("BTC-USDT"), encode_value("a/b c")
    ('BTC-USDT', 'a%2Fb%20c')
    """
    return quote(value, safe="-_.~")


def partition_ok(channel: str, inst: str) -> bool:
    """True when both values are non-empty and short enough to be directory names.

    >>> partition_ok("books", "BTC-USDT"), partition_ok("", "X")
    (True, False)
    """
    return all(v and len(encode_value(v)) <= MAX_PARTITION_VALUE for v in (channel, inst))


def partition_dir(dataset: str, channel: str, inst: str, date: str) -> str:
    """Relative directory of one partition (always with ``/``).

    >>> partition_dir("raw", "books", "BTC-USDT", "2022-05-13")
    'raw/channel=books/inst=BTC-USDT/date=2022-05-13'
    """
    return f"{dataset}/channel={encode_value(channel)}/inst={encode_value(inst)}/date={date}"


def part_name(n: int) -> str:
    """File name of the ``n``-th part file of a partition.

    >>> part_name(3)
    'part-000003.parquet'
    """
    return f"part-{n:06d}.parquet"
