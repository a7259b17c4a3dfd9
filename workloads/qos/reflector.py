"""The MEC side of a probed link: a small TCP reflector the prober talks to through the
5G link (in tests and the demo: through one Toxiproxy proxy per base station).

Wire format (network byte order), one command per message:
  b"P" seq:u64 sent_ns:i64    ping; echoed back unchanged (17 bytes)
  b"U" nbytes:u64 max_ms:u32  upload burst: the client sends nbytes; the reflector answers
                              b"A" bytes:u64 elapsed_ns:u64 (bytes received after the first
                              chunk and the time from first to last chunk) once it has them
                              all or max_ms after the first byte, then closes
  b"D" nbytes:u64 max_ms:u32  download burst: the reflector sends nbytes, then closes
Bursts use a connection of their own, so an aborted burst leaves no bytes in a ping stream.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time

PING = struct.Struct("!cQq")
BURST = struct.Struct("!cQI")
BURST_RESULT = struct.Struct("!cQQ")
CHUNK = 64 * 1024
MAX_BURST_BYTES = 1 << 30

log = logging.getLogger(__name__)


async def _upload(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, nbytes: int,
                  max_ms: int) -> None:
    first = last = None
    after_first = 0
    remaining = nbytes
    deadline = None
    while remaining > 0:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            async with asyncio.timeout(timeout):
                chunk = await reader.read(min(CHUNK, remaining))
        except TimeoutError:
            break
        if not chunk:
            break
        now = time.perf_counter_ns()
        if first is None:
            first, deadline = now, time.monotonic() + max_ms / 1000
        else:
            after_first += len(chunk)
        last = now
        remaining -= len(chunk)
    elapsed = (last - first) if first is not None else 0
    writer.write(BURST_RESULT.pack(b"A", after_first, elapsed))
    await writer.drain()


async def _download(writer: asyncio.StreamWriter, nbytes: int, max_ms: int) -> None:
    block = bytes(CHUNK)
    deadline = time.monotonic() + max_ms / 1000 + 1.0
    while nbytes > 0 and time.monotonic() < deadline:
        n = min(CHUNK, nbytes)
        writer.write(block[:n])
        await writer.drain()
        nbytes -= n


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            kind = await reader.readexactly(1)
            if kind == b"P":
                writer.write(kind + await reader.readexactly(PING.size - 1))
                await writer.drain()
            elif kind in (b"U", b"D"):
                _, nbytes, max_ms = BURST.unpack(kind + await reader.readexactly(BURST.size - 1))
                if nbytes > MAX_BURST_BYTES:
                    log.warning("refused a burst of %d bytes (limit %d)", nbytes, MAX_BURST_BYTES)
                    return
                if kind == b"U":
                    await _upload(reader, writer, nbytes, max_ms)
                else:
                    await _download(writer, nbytes, max_ms)
                return
            else:
                log.warning("closed a connection that sent an unknown command %r", kind)
                return
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    finally:
        writer.close()


async def serve(host: str, port: int) -> asyncio.Server:
    return await asyncio.start_server(handle, host, port)
