"""The live OKX feed as a :class:`~simlab.feed.source.Source`.

:class:`LiveSource` runs the live client (:class:`simlab.okx.client.OkxClient`), which yields
each frame decoded once, its book applied in stream order
(:class:`~simlab.okx.decoded.Decoded`), and turns those into events with
:meth:`~simlab.feed.decode.FrameDecoder.decoded`: the events the replay engine's decoder
gives for the recorded frames, without a second parse or book application. Client status
events become :class:`Notice` events. The frames a recorder writes are the frames the client
yields, so replaying that recording gives these events again.

:class:`FrameTap` is the same for code that already consumes the client's frames (the
recorder's ``tap``): it turns each recorded frame into events as it is written (a plain
:class:`RawFrame`, without the client's decoding, is decoded).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from simlab.book import L2Book
from simlab.okx.client import ClientEvent, OkxClient
from simlab.okx.decoded import Decoded
from simlab.okx.frames import RawFrame
from simlab.okx.rest import instruments_or_none

from .decode import FrameDecoder
from .events import Event, Notice

log = logging.getLogger(__name__)


class LiveSource:
    """Subscribe to ``(channel, instId)`` pairs and stream their events.

    Keyword options are :class:`~simlab.okx.client.ClientConfig` fields (``ws_url``,
    ``rest_url`` ...: OKX's by default). ``duration`` (s) ends the stream; otherwise it runs
    until :meth:`close`. Instrument metadata is fetched from the REST API at start.

    >>> async def main():                                              # doctest: +SKIP
    ...     async with LiveSource([("books", "BTC-USDT")], duration=10) as src:
    ...         async for ev in src:
    ...             if ev.kind == "book" and ev.valid:
    ...                 print(ev.book.mid)
    """

    def __init__(self, subscriptions: Iterable[tuple[str, str]], *,
                 duration: float | None = None, verify_checksum: bool = True,
                 **client_options: Any) -> None:
        self.subscriptions = [(str(c), str(i)) for c, i in subscriptions]
        if not self.subscriptions:
            raise ValueError("subscriptions: expected at least one (channel, instId) pair")
        if duration is not None and not duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
        self.duration = duration
        self.client_options = client_options
        self.decoder = FrameDecoder(verify_checksum=verify_checksum)
        self.instruments: dict[str, dict[str, Any]] = {}
        self.client: OkxClient | None = None

    async def __aenter__(self) -> LiveSource:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def _metadata(self) -> None:
        # without metadata, sizes are taken as base units (pipeline: contract_terms)
        self.instruments.update(await instruments_or_none(
            self.client_options.get("rest_url"), sorted({i for _, i in self.subscriptions})))

    async def __aiter__(self) -> AsyncIterator[Event]:
        import asyncio

        await self._metadata()
        self.client = client = OkxClient(self.subscriptions, book_factory=L2Book,
                                         **self.client_options)
        timer = None
        if self.duration is not None:
            timer = asyncio.get_running_loop().call_later(
                self.duration, lambda: asyncio.ensure_future(client.close()))
        decoded = self.decoder.decoded
        try:
            async for item in client.stream(decoded=True):
                if type(item) is Decoded:
                    for ev in decoded(item):
                        yield ev
                elif isinstance(item, ClientEvent):
                    yield client_notice(item)
        finally:
            if timer is not None:
                timer.cancel()
            await client.close()


def client_notice(ev: ClientEvent) -> Notice:
    """A live client's status event as a feed :class:`Notice`.

    >>> client_notice(ClientEvent("disconnect", 5, 0, detail="1006")).what
    'disconnect'
    """
    return Notice(ev.kind, ev.data.get("arrival"), ev.recv_ns, ev.channel, ev.inst, ev.detail,
                  dict(ev.data))


class FrameTap:
    """Decode frames as a recorder writes them and hand the events to ``on_event``.

    Pass it as ``Recorder(..., tap=FrameTap(pipeline.on_event))``: the recorder calls it with
    each frame it queues for writing, numbered as in the recording, so the events are those a
    replay of the recording will give.

    >>> seen = []
    >>> tap = FrameTap(seen.append)
    >>> tap(RawFrame(0, 10, 0, "_event", "_none", b"pong")); seen
    []
    """

    def __init__(self, on_event: Callable[[Event], Any], **decoder_options: Any) -> None:
        self.decoder = FrameDecoder(**decoder_options)
        self.on_event = on_event

    def __call__(self, frame: RawFrame) -> None:
        d = self.decoder
        for ev in d.decoded(frame) if type(frame) is Decoded else d.decode(frame):
            self.on_event(ev)
