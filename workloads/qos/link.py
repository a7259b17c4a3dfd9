"""The hospital side of a probed link: round-trip pings on a long-lived connection and
short throughput bursts on connections of their own, against a reflector (reflector.py).

Timeouts use `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow a
cancellation that races with its result, and a probe that ignores its cancellation never
stops."""
from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections import deque

from .reflector import BURST, BURST_RESULT, CHUNK, PING
from .stats import LinkFigures, Sample, figures, next_jitter

# a burst is timed from its first chunk to its last one: one of a chunk or two arrives in a
# single read and times at nothing (0 Mbps), so a low contract rate still sends this much
MIN_BURST_BYTES = 16 * CHUNK


def burst_size(mbps: float, seconds: float) -> int:
    """Bytes of a burst that carries `seconds` of `mbps`, at least MIN_BURST_BYTES."""
    return max(MIN_BURST_BYTES, int(mbps * 1e6 / 8 * seconds))

# DSCP per slice type, as the slice's traffic would be marked on the hospital LAN
# (RFC 4594: EF for real-time interactive, AF41 for multimedia, AF21 for low-latency data)
DSCP = {"URLLC": 46, "eMBB": 34, "mIoT": 18}


async def _connect(host: str, port: int, timeout: float, dscp: int | None):
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if dscp is not None:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
    return reader, writer


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return
    writer.close()
    try:  # a close flushes first; a peer that stopped reading must not hold us up
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except Exception:
        writer.transport.abort()


async def upload_mbps(host: str, port: int, nbytes: int, max_s: float,
                      dscp: int | None = None) -> float:
    """Achieved uplink rate as the reflector saw it; 0 when nothing arrived."""
    reader, writer = await _connect(host, port, max_s, dscp)

    async def send() -> None:
        writer.write(BURST.pack(b"U", nbytes, int(max_s * 1000)))
        block, left = bytes(CHUNK), nbytes
        while left > 0:
            writer.write(block[:min(CHUNK, left)])
            left -= CHUNK
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        async with asyncio.timeout(max_s + 5.0):
            reply = await reader.readexactly(BURST_RESULT.size)
        _, received, elapsed_ns = BURST_RESULT.unpack(reply)
    finally:
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender
        await _close(writer)
    return received * 8 / elapsed_ns * 1000 if elapsed_ns else 0.0


async def download_mbps(host: str, port: int, nbytes: int, max_s: float,
                        dscp: int | None = None) -> float:
    """Achieved downlink rate from first to last chunk; 0 when nothing arrived."""
    reader, writer = await _connect(host, port, max_s, dscp)
    try:
        writer.write(BURST.pack(b"D", nbytes, int(max_s * 1000)))
        await writer.drain()
        first = last = None
        after_first = got = 0
        deadline = time.monotonic() + max_s + 5.0
        while got < nbytes:
            left = deadline - time.monotonic()
            if first is not None:
                left = min(left, first / 1e9 + max_s - time.perf_counter_ns() / 1e9)
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    chunk = await reader.read(CHUNK)
            except TimeoutError:
                break
            if not chunk:
                break
            now = time.perf_counter_ns()
            if first is None:
                first = now
            else:
                after_first += len(chunk)
            last = now
            got += len(chunk)
    finally:
        await _close(writer)
    return after_first * 8 / (last - first) * 1000 if first is not None and last > first else 0.0


class LinkProbe:
    """Continuous probing of one link: a ping every `interval_s` (answered within
    `timeout_s` or counted lost) and, when `burst_bytes` and `burst_every_s` are set, an
    upload and a download burst every `burst_every_s`. Keeps the last `window_s` seconds of
    pings and the bursts of the last three burst periods."""

    def __init__(self, host: str, port: int, *, interval_s: float = 1.0, timeout_s: float = 1.0,
                 window_s: float = 10.0, burst_bytes: int = 0, burst_every_s: float | None = 60.0,
                 burst_max_s: float = 2.0, dscp: int | None = None,
                 burst_lock: asyncio.Lock | None = None):
        self.host, self.port = host, port
        self.interval_s, self.timeout_s, self.window_s = interval_s, timeout_s, window_s
        self.burst_bytes, self.burst_every_s, self.burst_max_s = burst_bytes, burst_every_s, burst_max_s
        self.dscp = dscp
        # probes that share a link share a lock, so that their bursts do not split its capacity
        self.burst_lock = burst_lock or asyncio.Lock()
        self.samples: deque[Sample] = deque()
        self.uplink: deque[tuple[float, float]] = deque()
        self.downlink: deque[tuple[float, float]] = deque()
        self._jitter = 0.0
        self._last_rtt: float | None = None
        self._seq = 0
        self._reader = self._writer = None

    async def ping(self) -> float | None:
        """One round trip in ms, or None when it failed or took longer than the timeout."""
        self._seq += 1
        try:
            if self._writer is None:
                self._reader, self._writer = await _connect(self.host, self.port, self.timeout_s,
                                                            self.dscp)
            sent = time.perf_counter_ns()
            message = PING.pack(b"P", self._seq, sent)
            self._writer.write(message)
            # a ping that timed out closes the connection, so the next bytes are this echo
            async with asyncio.timeout(self.timeout_s):
                echo = await self._reader.readexactly(PING.size)
            if echo != message:
                raise ConnectionError("the reflector answered a different ping")
            return (time.perf_counter_ns() - sent) / 1e6
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            await _close(self._writer)
            self._reader = self._writer = None
            return None

    def record(self, at: float, rtt_ms: float | None) -> None:
        if rtt_ms is not None:
            self._jitter = next_jitter(self._jitter, self._last_rtt, rtt_ms)
            self._last_rtt = rtt_ms
        self.samples.append(Sample(at, rtt_ms, self._jitter))
        self._trim(at)

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self.samples and self.samples[0].at < horizon:
            self.samples.popleft()
        burst_horizon = now - max(self.window_s, 3 * (self.burst_every_s or 0))
        for series in (self.uplink, self.downlink):
            while series and series[0][0] < burst_horizon:
                series.popleft()

    def window(self, now: float | None = None) -> tuple[list[Sample], list[float], list[float]]:
        """The window's pings, uplink and downlink burst rates (Mbps)."""
        self._trim(time.monotonic() if now is None else now)
        return (list(self.samples), [m for _, m in self.uplink], [m for _, m in self.downlink])

    def figures(self, now: float | None = None) -> LinkFigures:
        return figures(*self.window(now))

    async def burst(self) -> None:
        async with self.burst_lock:
            at = time.monotonic()
            for series, measure in ((self.uplink, upload_mbps), (self.downlink, download_mbps)):
                try:
                    mbps = await measure(self.host, self.port, self.burst_bytes, self.burst_max_s,
                                         self.dscp)
                except (OSError, TimeoutError, asyncio.IncompleteReadError):
                    mbps = 0.0
                series.append((at, mbps))

    async def run(self) -> None:
        bursts = (asyncio.create_task(self._bursts()) if self.burst_bytes and self.burst_every_s
                  else None)
        try:
            # a random phase, so that many probes started together do not ping in lockstep
            await asyncio.sleep(random.uniform(0, self.interval_s))
            start = time.monotonic()
            tick = 0
            while True:
                at = time.monotonic()
                self.record(at, await self.ping())
                # a fixed cadence: a slow answer delays the next ping, it does not shift them all
                tick = max(tick + 1, int((time.monotonic() - start) / self.interval_s))
                await asyncio.sleep(max(0.0, start + tick * self.interval_s - time.monotonic()))
        finally:
            if bursts:
                bursts.cancel()
            await _close(self._writer)
            self._reader = self._writer = None

    async def _bursts(self) -> None:
        while True:
            await self.burst()
            await asyncio.sleep(self.burst_every_s)
