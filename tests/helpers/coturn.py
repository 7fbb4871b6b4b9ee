"""A real coturn on loopback for tests: `turnserver` with the TURN REST API secret (use-auth-secret),
no TLS, no CLI, logging to a file; `turnutils_uclient` to allocate relays against it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.binaries import wait_listening

START_TIMEOUT = 10.0
UCLIENT_TIMEOUT = 30.0


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now (coturn listens on both)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for coturn")


@dataclass
class Coturn:
    port: int
    secret: str
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    async def wait_for_log(self, text: str, timeout: float = 5.0) -> bool:
        """coturn writes its log asynchronously: look for `text` for up to `timeout` seconds."""
        for _ in range(int(timeout / 0.1)):
            if text in self.log():
                return True
            await asyncio.sleep(0.1)
        return text in self.log()


@contextlib.asynccontextmanager
async def running_coturn(directory: Path, secret: str) -> AsyncIterator[Coturn]:
    port = free_port()
    server = Coturn(port=port, secret=secret, log_file=directory / "turnserver.log")
    args = [
        "turnserver", "-n",  # no configuration file: everything is on this line
        "--verbose",  # logs each request's outcome, which the tests read
        "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
        "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=talkd.test",
        "--no-tls", "--no-dtls", "--no-cli", "--fingerprint",
        "--allow-loopback-peers",  # the relays the test client talks between are on 127.0.0.1
        f"--log-file={server.log_file}", "--simple-log", "--no-stdout-log",
        f"--pidfile={directory / 'turnserver.pid'}", f"--userdb={directory / 'turndb'}",
    ]
    process = await asyncio.create_subprocess_exec(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_listening(process, server.port, name="turnserver", timeout=START_TIMEOUT, log=server.log)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                process.kill()
                await process.wait()


@dataclass(frozen=True)
class UclientResult:
    returncode: int
    output: str


async def allocate_and_relay(host: str, port: int, username: str, password: str, *, tcp: bool,
                             messages: int = 2) -> UclientResult:
    """turnutils_uclient: allocate two relays on the server with these credentials (-y: the client
    talks to itself through them), send `messages` packets each way (-n), no RTCP streams (-c)."""
    args = ["turnutils_uclient", "-p", str(port), "-u", username, "-w", password, "-y", "-c", "-n", str(messages)]
    if tcp:
        args.append("-t")
    process = await asyncio.create_subprocess_exec(*args, host, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), UCLIENT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return UclientResult(process.returncode if process.returncode is not None else -1, out.decode(errors="replace"))
