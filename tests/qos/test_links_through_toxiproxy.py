"""Probing real emulated links: the reflector process behind Toxiproxy proxies."""
import asyncio
import socket
import subprocess
import sys


from medmec.operator.profiles import PROFILES
from medmec.workloads.qos import budget, link

SURGERY = PROFILES["remote-surgery"]


async def probe_for(address, seconds, interval=0.05):
    probe = link.LinkProbe(*address, interval_s=interval, timeout_s=0.5, window_s=seconds)
    task = asyncio.create_task(probe.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return probe


def judge(bs, probe):
    samples, up, down = probe.window()
    return budget.judge(bs, samples, SURGERY, budget.Policy(), up, down)


def test_added_latency_shows_in_the_round_trip_and_breaches_the_surgery_budget(toxi, links):
    clean = asyncio.run(probe_for(links["gnb-north"], 1.0)).figures()
    assert clean.loss_ratio == 0 and clean.rtt_p50_ms < 10
    toxi.add_latency("gnb-north", 80, jitter_ms=0)
    slow = asyncio.run(probe_for(links["gnb-north"], 1.5))
    f = slow.figures()
    assert 80 <= f.rtt_p50_ms < 120
    v = judge("gnb-north", slow)
    assert v.ok is False and v.reason == "NetworkLatencyOverBudget"
    # the other base station's link is untouched
    assert asyncio.run(probe_for(links["gnb-south"], 0.5)).figures().rtt_p50_ms < 10


def test_jitter_toxic_raises_the_rfc3550_estimate(toxi, links):
    toxi.add_latency("gnb-south", 40, jitter_ms=35)
    f = asyncio.run(probe_for(links["gnb-south"], 2.0, interval=0.1)).figures()
    assert f.jitter_ms > 10


def test_a_cut_link_is_seen_as_down_and_recovers(toxi, links):
    toxi.set_enabled("gnb-north", False)
    down = asyncio.run(probe_for(links["gnb-north"], 1.0, interval=0.1))
    v = judge("gnb-north", down)
    assert v.reason == "LinkDown"
    toxi.set_enabled("gnb-north", True)
    assert asyncio.run(probe_for(links["gnb-north"], 0.5)).figures().loss_ratio == 0


def test_bursts_measure_a_bandwidth_cap(toxi, links):
    toxi.limit_bandwidth("gnb-north", 8)
    up = asyncio.run(link.upload_mbps(*links["gnb-north"], 2_000_000, 1.0))
    down = asyncio.run(link.download_mbps(*links["gnb-north"], 2_000_000, 1.0))
    assert 6 < up < 9.5 and 6 < down < 9.5
    toxi.remove_bandwidth_limit("gnb-north")
    assert asyncio.run(link.upload_mbps(*links["gnb-north"], 20_000_000, 2.0)) > 200


def test_a_low_contract_rate_is_still_measured_by_its_bursts(toxi, links):
    """A 1 Mbps slice: 0.2 s of its rate (25 kB) would fit in one read and time at 0 Mbps,
    below every contract; the burst is sized up so that it is timed."""
    size = link.burst_size(1, 0.2)
    assert size == link.MIN_BURST_BYTES > 1e6 / 8 * 0.2
    probe = link.LinkProbe(*links["gnb-south"], burst_bytes=size, burst_every_s=60)
    asyncio.run(probe.burst())
    _, up, down = probe.window()
    assert up[0] > 1 and down[0] > 1, (up, down)


def test_the_reflector_drops_a_bad_client_and_keeps_serving(reflector):
    with socket.create_connection(("127.0.0.1", reflector), timeout=2) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert s.recv(100) == b""  # closed on the unknown command
    with socket.create_connection(("127.0.0.1", reflector), timeout=2) as s:
        s.sendall(b"U" + (1 << 40).to_bytes(8, "big") + (1000).to_bytes(4, "big"))
        assert s.recv(100) == b""  # a burst over the limit is refused
    assert asyncio.run(probe_for(("127.0.0.1", reflector), 0.3)).figures().loss_ratio == 0


def accept(links, *extra):
    args = [sys.executable, "-m", "medmec", "qos", "accept", "commissioning",
            "--profile", "remote-surgery", "--duration", "3s"]
    for bs, (host, port) in links.items():
        args += ["--link", f"{bs}={host}:{port}"]
    return subprocess.run(args + list(extra), capture_output=True, text=True, timeout=60)


def test_acceptance_passes_a_clean_link_and_fails_a_bandwidth_cap_under_the_profile(toxi, links):
    clean = accept(links)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "overall: PASS" in clean.stdout and "FAIL" not in clean.stdout
    assert clean.stdout.count("PASS") == 2 * 4 + 1  # four measured rows per base station
    toxi.limit_bandwidth("gnb-south", 20)  # the profile needs 100 Mbps
    capped = accept(links)
    assert capped.returncode == 1, capped.stdout + capped.stderr
    failed = [line for line in capped.stdout.splitlines()
              if line.endswith("FAIL") and not line.startswith("overall")]
    assert {line.split()[0] for line in failed} == {"gnb-south"}
    assert any("uplink bandwidth" in line for line in failed)
    assert any("downlink bandwidth" in line for line in failed)
    assert "overall: FAIL" in capped.stdout


def test_acceptance_rejects_bad_arguments_clearly(links):
    result = accept(links, "--duration", "soon")
    assert result.returncode == 2 and "expected a positive duration" in result.stderr
