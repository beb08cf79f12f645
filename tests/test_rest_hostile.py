"""A REST error body's ``code`` and ``msg`` are quoted briefly whatever their size: OKX's own
short strings as they are, a long string cut, any other JSON value described (show)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from simlab.okx.messages import OkxParseError
from simlab.okx.rest import RestClient, RestError, parse_rest_book

HUGE = "x" * 100_000


@pytest.mark.parametrize("body", [{"code": HUGE, "msg": "m"}, {"code": "1", "msg": HUGE}])
def test_parse_rest_book_quotes_a_long_code_or_msg_briefly(body):
    with pytest.raises(OkxParseError) as e:
        parse_rest_book(orjson.dumps(body), "books", "X")
    assert e.value.reason.startswith("REST error code ") and len(e.value.reason) < 500


@pytest.mark.parametrize("body", [{"code": HUGE, "msg": "m"}, {"code": "1", "msg": HUGE}])
def test_rest_client_quotes_a_long_code_or_msg_briefly(body):
    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(body))

    async def main():
        app = web.Application()
        app.router.add_get("/api/v5/market/books", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        client = RestClient(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(RestError) as e:
                await client.get("/api/v5/market/books", {"instId": "X"})
        finally:
            await client.close()
            await runner.cleanup()
        return e.value

    err = asyncio.run(main())
    assert len(str(err)) < 500 and len(err.msg) <= 200 and len(err.code or "") <= 200
