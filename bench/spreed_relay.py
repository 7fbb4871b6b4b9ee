"""Spreed WebRTC relay benchmark: N caller/callee pairs in one room, each caller sends M Offers to its
callee; prints relay latency percentiles and throughput, writes bench/results/spreed_relay.json.

Each connection may send 20 frames per second (the channel's rate limit): with the Hello, M > 19 measures
the limiter as well. Usage: python -m bench.spreed_relay [--pairs 50] [--offers 19]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from aiohttp import ClientSession, TCPConnector, WSMsgType
from aiohttp.test_utils import TestServer

from talkd.app import build_services, close_services, create_app
from talkd.config import Settings


async def pair(base: str, session: ClientSession, offers: int, latencies: list[float]) -> None:
    caller = await session.ws_connect(f"{base}/ws")
    callee = await session.ws_connect(f"{base}/ws")
    ids = []
    for ws in (caller, callee):
        ids.append(orjson.loads((await ws.receive(timeout=10)).data)["Data"]["Id"])
        await ws.send_str(orjson.dumps({"Type": "Hello", "Hello": {"Name": "bench", "Ua": "bench"}}).decode())
    sent: dict[int, float] = {}

    async def receive() -> None:
        got = 0
        while got < offers:
            message = await callee.receive(timeout=30)
            assert message.type is WSMsgType.TEXT
            data = orjson.loads(message.data)["Data"]
            if data.get("Type") == "Offer":
                latencies.append(time.perf_counter() - sent[data["Offer"]["n"]])
                got += 1

    receiver = asyncio.create_task(receive())
    for n in range(offers):
        sent[n] = time.perf_counter()
        frame = {"Type": "Offer", "Offer": {"To": ids[1], "Type": "Offer", "Offer": {"sdp": "v=0", "type": "offer",
                                                                                   "n": n}}}
        await caller.send_str(orjson.dumps(frame).decode())
    await receiver
    await caller.close()
    await callee.close()


async def main(pairs: int, offers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings().replace(storage__data_dir=Path(data_dir))
        services = await build_services(settings)
        server = TestServer(create_app(services), host="127.0.0.1", port=0)
        await server.start_server()
        latencies: list[float] = []
        started = time.perf_counter()
        async with ClientSession(connector=TCPConnector(limit=0)) as session:  # every socket stays open
            await asyncio.gather(*(pair(f"http://127.0.0.1:{server.port}", session, offers, latencies)
                                   for _ in range(pairs)))
        elapsed = time.perf_counter() - started
        await server.close()
        await close_services(services)
    latencies.sort()
    return {"pairs": pairs, "offers_per_pair": offers, "relayed": len(latencies), "seconds": round(elapsed, 3),
            "relays_per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--offers", type=int, default=19)
    args = parser.parse_args()
    result = asyncio.run(main(args.pairs, args.offers))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "spreed_relay.json").write_text(json.dumps(result, indent=2) + "\n")
