"""Spreed WebRTC relay benchmark: N caller/callee pairs join one room (timed apart), then each caller sends M
Offers to its callee twice: paced (the next one after the previous arrived: the cost of one relay) and in one burst
(throughput); prints latency percentiles and relays per second, writes bench/results/spreed_relay.json.

Each connection may send 20 frames per second (the channel's rate limit): with the Hello, M > 19 measures
the limiter as well. Usage: python -m bench.spreed_relay [--pairs 50] [--offers 19]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, ClientWebSocketResponse, TCPConnector, WSMsgType
from aiohttp.test_utils import TestServer

from talkd.app import build_services, close_services, create_app
from talkd.cli import tune_gc_after_start
from talkd.config import Settings


def _frame(kind: str, inner: dict[str, object]) -> str:
    return orjson.dumps({"Type": kind, kind: inner}).decode()


async def _until(ws: ClientWebSocketResponse, data_type: str) -> dict[str, Any]:
    while True:
        message = await ws.receive(timeout=30)
        assert message.type is WSMsgType.TEXT, message
        data: dict[str, Any] = orjson.loads(message.data)["Data"]
        if data.get("Type") == data_type:
            return data


async def join(session: ClientSession, base: str) -> tuple[ClientWebSocketResponse, str]:
    ws = await session.ws_connect(f"{base}/ws")
    me = await _until(ws, "Self")
    await ws.send_str(_frame("Hello", {"Name": "bench", "Ua": "bench"}))
    await _until(ws, "Welcome")
    return ws, str(me["Id"])


async def relay(caller: ClientWebSocketResponse, callee: ClientWebSocketResponse, callee_id: str, offers: int,
                latencies: list[float], *, paced: bool) -> None:
    """The caller sends its Offers in one burst, or (paced) each after the previous one arrived; the callee
    timestamps each on arrival."""
    sent: dict[int, float] = {}
    arrived = asyncio.Event()

    async def receive() -> None:
        for _ in range(offers):
            offer = await _until(callee, "Offer")
            latencies.append(time.perf_counter() - sent[offer["Offer"]["n"]])
            arrived.set()

    receiver = asyncio.create_task(receive())
    for n in range(offers):
        sent[n] = time.perf_counter()
        await caller.send_str(_frame("Offer", {"To": callee_id, "Type": "Offer",
                                               "Offer": {"sdp": "v=0", "type": "offer", "n": n}}))
        if paced:
            await arrived.wait()
            arrived.clear()
            await asyncio.sleep(0.06)  # stay under the channel's 20 frames per second
    await receiver


async def main(pairs: int, offers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings().replace(storage__data_dir=Path(data_dir))
        services = await build_services(settings)
        server = TestServer(create_app(services), host="127.0.0.1", port=0)
        await server.start_server()
        tune_gc_after_start()  # as `talkd serve` does once it listens
        base = f"http://127.0.0.1:{server.port}"
        latencies: list[float] = []
        async with ClientSession(connector=TCPConnector(limit=0)) as session:  # every socket stays open
            started = time.perf_counter()
            sockets = [await join(session, base) for _ in range(2 * pairs)]  # one by one: each sees a Welcome
            joined = time.perf_counter() - started
            # Everyone's Joined notices for the later members are still queued: let them drain first.
            await asyncio.sleep(0.5)

            async def run(paced: bool, into: list[float]) -> float:
                started = time.perf_counter()
                await asyncio.gather(*(relay(sockets[2 * i][0], sockets[2 * i + 1][0], sockets[2 * i + 1][1],
                                             offers, into, paced=paced) for i in range(pairs)))
                return time.perf_counter() - started

            paced_latencies: list[float] = []
            await run(True, paced_latencies)
            await asyncio.sleep(1.0)  # a fresh rate-limit window for the burst
            elapsed = await run(False, latencies)
            for ws, _ in sockets:
                await ws.close()
        await server.close()
        await close_services(services)
    return {"pairs": pairs, "offers_per_pair": offers, "join_seconds": round(joined, 3),
            "relayed": len(latencies), "seconds": round(elapsed, 3),
            "relays_per_second": round(len(latencies) / elapsed, 1),
            "burst_p50_ms": _percentile(latencies, 0.5), "burst_p99_ms": _percentile(latencies, 0.99),
            "paced_p50_ms": _percentile(paced_latencies, 0.5), "paced_p99_ms": _percentile(paced_latencies, 0.99)}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, int(len(ordered) * fraction) - 1)] * 1000, 2)


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
