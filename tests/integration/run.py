#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Integration tests: run the real zcdemux binary on generated captures.

    python3 tests/integration/run.py --binary build/zcdemux --work build/it [-k SUBSTRING] [-v]

For every scenario of tests/tools/zcdgen.py: write the capture, the config
(absolute paths) and the oracle's expected results under WORK/<scenario>/,
run the daemon, then check

  * exit status 0 (timeout: killed, failed with the tail of its stderr);
  * every VM's sink, frame by frame and byte for byte (caplen == origlen ==
    frame length; pcap header: magic a1b2c3d4, v2.4, linktype 1, snaplen >= 65535);
  * every counter of the stats JSON the spec lists, exactly; pool.free == pool.pages > 0.

Then: the demo exactly as `make demo` runs it (configs/demo.yaml, relative
paths, from a scratch cwd), configuration errors (non-zero exit, one
"<config>:<line>: <key>: ..." line on stderr, no sink created, no EAL output),
--help, --duration, SIGINT, the live counters over DPDK telemetry, the
same scenarios through a real network port (veth + net_af_packet, as root),
the benchmark tools (tools_test.py: zcd-gen over net_memif, checked
frame by frame; zcd-bench's CSV), and two polling lcores on two RX queues
(scaleout_test.py), a guest that breaks its ring (faults_test.py),
reloading the configuration under traffic (reload_test.py), and zcdemux
killed mid-stream and restarted, or taken over by a standby, on its state
file (restart_test.py).

Timeouts scale with ZCD_TEST_TIMEOUT_SCALE (e.g. 3 under AddressSanitizer;
the default is 3 when the binary looks ASan-instrumented, else 1).

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

import zcdgen  # noqa: E402
import faults_test  # noqa: E402
import reload_test  # noqa: E402
import restart_test  # noqa: E402
import scaleout_test  # noqa: E402
import tools_test  # noqa: E402

VM_COUNTERS = ["rx_packets", "rx_bytes", "remapped", "copied", "dropped_no_credit", "returned",
               "bad_returns", "residue_bytes", "forged_returns", "stale_returns", "duplicate_returns"]
DROP_COUNTERS = ["runt", "oversize", "unknown_unicast", "pool_empty", "no_receiver"]
PORT_COUNTERS = ["rx_packets", "rx_bytes"]


# --------------------------------------------------------------------------
# Plumbing


@dataclass
class Ctx:
    binary: str
    work: str
    base_timeout: float
    scale: float
    verbose: bool
    max_problems: int = 12

    @property
    def timeout(self) -> float:
        return self.base_timeout * self.scale


@dataclass
class RunResult:
    rc: Optional[int]
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool = False
    argv: list = field(default_factory=list)


def _dpdk_runtime_dir(prefix: str) -> str:
    if os.getuid() == 0:
        base = "/var/run"
    else:
        base = os.environ.get("XDG_RUNTIME_DIR", "/tmp")
    return os.path.join(base, "dpdk", prefix)


def eal_args(scenario: str) -> list:
    prefix = f"zcd-it-{scenario}-{os.getpid()}"
    return ["--no-huge", "-m", "512", "--no-pci", "-l", "0", "--file-prefix", prefix,
            "--log-level=lib.eal:warning"]


def _cleanup_runtime(argv: list) -> None:
    if "--file-prefix" in argv:
        prefix = argv[argv.index("--file-prefix") + 1]
        if prefix.startswith("zcd-it-") and prefix.endswith(f"-{os.getpid()}"):
            shutil.rmtree(_dpdk_runtime_dir(prefix), ignore_errors=True)


def run_daemon(ctx: Ctx, argv: list, workdir: str, cwd: Optional[str] = None,
               timeout: Optional[float] = None, sigint_after: Optional[float] = None) -> RunResult:
    """Run argv with stdout/stderr to files in workdir.  With sigint_after,
    send SIGINT after that many seconds (rc None + note if it exited first)."""
    timeout = ctx.timeout if timeout is None else timeout
    out_path = os.path.join(workdir, "daemon.stdout")
    err_path = os.path.join(workdir, "daemon.stderr")
    with open(os.path.join(workdir, "command.txt"), "w") as fh:
        fh.write(f"cd {cwd or os.getcwd()}\n" + " ".join(_shquote(a) for a in argv) + "\n")
    t0 = time.monotonic()
    timed_out = False
    early_exit = None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd)
        try:
            if sigint_after is not None:
                try:
                    early_exit = proc.wait(timeout=sigint_after)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGINT)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - t0
    _cleanup_runtime(argv)
    res = RunResult(proc.returncode, _read(out_path), _read(err_path), elapsed, timed_out, argv)
    if early_exit is not None:
        res.rc = None
        res.stderr += f"\n[run.py: exited with status {early_exit} before SIGINT was sent]"
    return res


def run_for_stats(ctx: Ctx, name: str, config: str, wd: str, extra: list) -> tuple:
    """Run zcdemux on config with --stats-json and extra options, as a test
    expects it to end: exit status 0, no sanitizer report.  Returns (run
    result, stats dict or None, problems so far)."""
    stats = os.path.join(wd, "stats.json")
    res = run_daemon(ctx, daemon_argv(ctx, name, config, stats, extra), wd)
    probs = sanitizer_problems(res)
    if res.timed_out:
        return res, None, probs + [f"timed out; stderr tail:\n{tail(res.stderr)}"]
    if res.rc != 0:
        probs.append(f"exit status {res.rc}, expected 0; stderr tail:\n{tail(res.stderr)}")
    try:
        with open(stats) as fh:
            return res, json.load(fh), probs
    except (OSError, ValueError) as ex:
        return res, None, probs + [f"stats JSON: {ex}"]


def wait_for_text(path: str, text: str, proc: subprocess.Popen, timeout: float) -> bool:
    """True once the file at path holds text, False if proc ends or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if text in _read(path):
            return True
        time.sleep(0.05)
    return False


def in_order_problem(got: list, expected: list) -> Optional[str]:
    """None if got is an in-order subsequence of expected, else what is wrong."""
    pos = 0
    for k, d in enumerate(got):
        while pos < len(expected) and expected[pos] != d:
            pos += 1
        if pos == len(expected):
            return f"frame {k} of {len(got)} is out of order or not its own"
        pos += 1
    return None


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _shquote(a: str) -> str:
    return a if re.fullmatch(r"[A-Za-z0-9_./:=,@+-]+", a) else "'" + a.replace("'", "'\\''") + "'"


def tail(text: str, n: int = 15) -> str:
    lines = text.rstrip().splitlines()[-n:]
    return "\n".join("      | " + ln for ln in lines) if lines else "      | (empty)"


def fresh_dir(path: str) -> str:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


# --------------------------------------------------------------------------
# Checking a run against the oracle


def describe_frame(data: bytes, by_bytes: dict, scn: zcdgen.Scenario) -> str:
    f = by_bytes.get(data)
    if f is not None:
        return f"frame seq {f.seq} ({f.desc})"
    seq = zcdgen.seq_from_frame(data)
    if seq is not None and seq < len(scn.frames):
        f = scn.frames[seq]
        return f"a corrupted copy of seq {f.seq}? ({f.desc}; got {len(data)} bytes)"
    return f"an unknown frame of {len(data)} bytes, starting {data[:16].hex()}"


def _position_hint(i: int, expected: list, actual: list) -> str:
    """Where the two frames at index i sit in the other sequence, if anywhere."""
    exp_pos = {f.data: k for k, f in enumerate(expected)}
    act_pos = {}
    for k, d in enumerate(actual):
        act_pos.setdefault(d, k)
    hints = []
    k = exp_pos.get(actual[i])
    if k is not None:
        hints.append(f"it is expected at #{k}")
    else:
        hints.append("it is not expected in this sink at all")
    k = act_pos.get(expected[i].data)
    hints.append(f"the expected frame is at actual #{k}" if k is not None
                 else "the expected frame is missing from the sink")
    return " (" + "; ".join(hints) + ")"


def compare_sink(scn, vm: str, path: str, expected: list, by_bytes: dict) -> list:
    probs = []
    if not os.path.exists(path):
        return [f"sink {vm}: {path} was not created"]
    try:
        pf = zcdgen.read_pcap(path)
    except (zcdgen.PcapError, OSError) as ex:
        return [f"sink {vm}: unreadable pcap: {ex}"]
    if pf.magic != zcdgen.PCAP_MAGIC:
        probs.append(f"sink {vm}: pcap magic {pf.magic:#x}, expected {zcdgen.PCAP_MAGIC:#x}")
    if pf.version != (2, 4):
        probs.append(f"sink {vm}: pcap version {pf.version}, expected (2, 4)")
    if pf.linktype != zcdgen.PCAP_LINKTYPE_ETHERNET:
        probs.append(f"sink {vm}: linktype {pf.linktype}, expected 1")
    if pf.snaplen < 65535:
        probs.append(f"sink {vm}: snaplen {pf.snaplen}, expected >= 65535")
    actual = []
    for i, (_ts, _frac, caplen, origlen, data) in enumerate(pf.records):
        if caplen != origlen:
            probs.append(f"sink {vm}: frame {i}: caplen {caplen} != origlen {origlen}")
        actual.append(data)
    n = min(len(expected), len(actual))
    mismatches = [i for i in range(n) if expected[i].data != actual[i]]
    if mismatches:
        i = mismatches[0]
        e, a = expected[i], actual[i]
        off = next((k for k in range(min(len(e.data), len(a))) if e.data[k] != a[k]), min(len(e.data), len(a)))
        probs.append(
            f"sink {vm}: frame {i} differs ({len(mismatches)} of {n} frames differ): "
            f"expected seq {e.seq} ({e.desc}), {len(e.data)} bytes; actual {len(a)} bytes, "
            f"first difference at byte {off}"
            + (f" (expected {e.data[off]:#04x}, actual {a[off]:#04x})" if off < min(len(e.data), len(a)) else "")
            + f"; the actual frame is {describe_frame(a, by_bytes, scn)}"
            + _position_hint(i, expected, actual))
    if len(actual) != len(expected):
        msg = f"sink {vm}: expected {len(expected)} frames, got {len(actual)}"
        if len(actual) < len(expected):
            e = expected[len(actual)]
            msg += f"; first missing: #{len(actual)} = seq {e.seq} ({e.desc})"
        else:
            msg += f"; first extra: #{len(expected)} = {describe_frame(actual[len(expected)], by_bytes, scn)}"
        probs.append(msg)
    return probs


def compare_stats(path: str, exp: zcdgen.Expected) -> list:
    try:
        with open(path) as fh:
            st = json.load(fh)
    except FileNotFoundError:
        return [f"stats JSON {path} was not written"]
    except (OSError, ValueError) as ex:
        return [f"stats JSON {path}: {ex}"]
    return compare_stats_dict(st, exp)


def _get(d, key):
    if not isinstance(d, dict):
        return None, "not an object"
    if key not in d:
        return None, "missing"
    return d[key], None


def compare_stats_dict(st: dict, exp: zcdgen.Expected) -> list:
    probs = []
    want = exp.stats

    def cmp(label, obj, key, expected):
        v, err = _get(obj, key)
        if err:
            probs.append(f"counter {label}.{key}: expected {expected}, {err}")
        elif v != expected or isinstance(v, bool):
            probs.append(f"counter {label}.{key}: expected {expected}, actual {v}")

    ports = st.get("ports") if isinstance(st, dict) else None
    if not isinstance(ports, list) or len(ports) != len(want["ports"]):
        probs.append(f"stats: ports: expected {len(want['ports'])} entries, actual {ports!r:.200}")
    else:
        for wp, ap in zip(want["ports"], ports):
            cmp("ports[0]", ap, "name", wp["name"])
            for k in PORT_COUNTERS:
                cmp(f"ports[{wp['name']}]", ap, k, wp[k])
    vms = st.get("vms") if isinstance(st, dict) else None
    if not isinstance(vms, list) or len(vms) != len(want["vms"]):
        probs.append(f"stats: vms: expected {len(want['vms'])} entries in config order, "
                     f"actual {len(vms) if isinstance(vms, list) else vms!r}")
    else:
        for k, (wv, av) in enumerate(zip(want["vms"], vms)):
            cmp(f"vms[{k}]", av, "name", wv["name"])
            for c in VM_COUNTERS:
                cmp(f"vms[{wv['name']}]", av, c, wv[c])
    drops = st.get("drops") if isinstance(st, dict) else None
    for c in DROP_COUNTERS:
        cmp("drops", drops, c, want["drops"][c])
    probs += check_pool(st)
    return probs


def check_pool(st: dict) -> list:
    pool = st.get("pool") if isinstance(st, dict) else None
    if not isinstance(pool, dict) or "pages" not in pool or "free" not in pool:
        return [f"stats: pool.pages/pool.free missing: {pool!r:.200}"]
    pages, free = pool["pages"], pool["free"]
    if not isinstance(pages, int) or pages <= 0:
        return [f"counter pool.pages: expected > 0, actual {pages}"]
    if free != pages:
        return [f"counter pool.free: expected {pages} (== pool.pages), actual {free}"]
    return []


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_problems(res: RunResult) -> list:
    """A sanitizer report fails a run even where a non-zero exit is expected."""
    return [f"sanitizer report on stderr:\n{tail(res.stderr, 30)}"
            for m in SANITIZER_MARKERS if m in res.stderr][:1]


def check_run(ctx: Ctx, scn, exp, res: RunResult, stats_path: str, sinks: dict) -> list:
    probs = sanitizer_problems(res)
    if res.timed_out:
        return [f"timed out after {res.elapsed:.0f}s (killed); stderr tail:\n{tail(res.stderr)}"]
    if res.rc != 0:
        probs.append(f"exit status {res.rc}, expected 0; stderr tail:\n{tail(res.stderr)}")
    probs += compare_stats(stats_path, exp)
    by_bytes = {f.data: f for f in scn.frames}
    for v in scn.vms:
        if v.name in sinks:
            probs += compare_sink(scn, v.name, sinks[v.name], exp.per_vm[v.name], by_bytes)
    return probs


# --------------------------------------------------------------------------
# Tests


@dataclass
class Outcome:
    name: str
    problems: list
    elapsed: float
    note: str = ""


def daemon_argv(ctx: Ctx, name: str, config: str, stats: Optional[str], extra: list) -> list:
    argv = [ctx.binary] + eal_args(name) + ["--", "--config", config]
    if stats:
        argv += ["--stats-json", stats]
    return argv + extra


def check_notifications(scn, stats_path: str) -> list:
    """A VM with notify: poll never gets an event; one with events gets some."""
    try:
        with open(stats_path) as fh:
            vms = {v.get("name"): v for v in json.load(fh).get("vms", [])}
    except (OSError, ValueError):
        return []  # compare_stats has said so already
    probs = []
    for v in scn.vms:
        sent = vms.get(v.name, {}).get("notifications")
        if v.notify == "poll" and sent != 0:
            probs.append(f"{v.name} (notify: poll): {sent} notifications, expected 0")
        if v.notify == "event" and not sent:
            probs.append(f"{v.name} (notify: event): no notification sent")
    return probs


def test_scenario(ctx: Ctx, name: str) -> Outcome:
    scn = zcdgen.get_scenario(name)
    exp = zcdgen.oracle(scn)
    wd = fresh_dir(os.path.join(ctx.work, name))
    files = zcdgen.write_scenario(scn, wd, exp)
    stats = os.path.join(wd, "stats.json")
    argv = daemon_argv(ctx, name, files["config"], stats, ["--idle-exit", "300"])
    res = run_daemon(ctx, argv, wd)
    probs = check_run(ctx, scn, exp, res, stats, files["sinks"])
    probs += check_notifications(scn, stats)
    note = f"{len(scn.frames)} frames, {len(scn.vms)} VMs" + (f", iommu {scn.iommu}" if scn.iommu else "")
    return Outcome(name, probs, res.elapsed, note)


def test_demo(ctx: Ctx) -> Outcome:
    """configs/demo.yaml as `make demo` runs it, relative paths from a scratch cwd."""
    scn = zcdgen.get_scenario("demo")
    exp = zcdgen.oracle(scn)
    wd = fresh_dir(os.path.join(ctx.work, "demo"))
    demo_dir = os.path.join(wd, "build", "demo")
    os.makedirs(demo_dir)
    zcdgen.write_pcap(os.path.join(demo_dir, "traffic.pcap"), scn.frames)
    config = os.path.join(REPO, "configs", "demo.yaml")
    probs = []
    try:
        with open(config) as fh:
            cfg = zcdgen.yaml_load(fh.read())
        want = scn.config("build/demo/traffic.pcap", "build/demo")
        if cfg != want:
            probs.append(f"configs/demo.yaml does not describe the demo scenario:\n  file: {cfg}\n  want: {want}")
    except (OSError, ValueError, AssertionError) as ex:
        probs.append(f"configs/demo.yaml: {ex}")
    stats = os.path.join(wd, "stats.json")
    argv = daemon_argv(ctx, "demo", config, stats, ["--idle-exit", "500"])
    res = run_daemon(ctx, argv, wd, cwd=wd)
    sinks = {v.name: os.path.join(demo_dir, f"{v.name}.pcap") for v in scn.vms}
    probs += check_run(ctx, scn, exp, res, stats, sinks)
    return Outcome("demo", probs, res.elapsed, f"configs/demo.yaml, {len(scn.frames)} frames")


def test_help(ctx: Ctx) -> Outcome:
    wd = fresh_dir(os.path.join(ctx.work, "help"))
    res = run_daemon(ctx, [ctx.binary, "--help"], wd, timeout=30 * ctx.scale)
    probs = sanitizer_problems(res)
    if res.timed_out:
        probs.append("--help timed out")
    elif res.rc != 0:
        probs.append(f"--help: exit status {res.rc}, expected 0; stderr tail:\n{tail(res.stderr)}")
    if "--config" not in res.stdout + res.stderr:
        probs.append("--help: usage does not mention --config")
    if "EAL:" in res.stdout + res.stderr:
        probs.append("--help: EAL output (DPDK was started)")
    return Outcome("help", probs, res.elapsed)


def _sig_or_duration(ctx: Ctx, name: str, mode: str) -> Outcome:
    scn = zcdgen.get_scenario("unicast")
    exp = zcdgen.oracle(scn)
    wd = fresh_dir(os.path.join(ctx.work, name))
    files = zcdgen.write_scenario(scn, wd, exp)
    stats = os.path.join(wd, "stats.json")
    if mode == "sigint":
        argv = daemon_argv(ctx, name, files["config"], stats, ["--duration", "600"])
        res = run_daemon(ctx, argv, wd, sigint_after=2.0 * ctx.scale)
    else:
        argv = daemon_argv(ctx, name, files["config"], stats, ["--duration", "2"])
        res = run_daemon(ctx, argv, wd)
    if res.timed_out:
        return Outcome(name, [f"did not exit ({mode}) within {ctx.timeout:.0f}s; stderr tail:\n"
                              f"{tail(res.stderr)}"], res.elapsed)
    if res.rc is None:
        return Outcome(name, [f"exited on its own before SIGINT; stderr tail:\n{tail(res.stderr)}"],
                       res.elapsed)
    probs = []
    if mode == "duration" and res.elapsed < 2.0:
        probs.append(f"--duration 2 exited after {res.elapsed:.2f}s")
    try:
        with open(stats) as fh:
            st = json.load(fh)
    except (OSError, ValueError) as ex:
        st = None
        probs.append(f"stats JSON: {ex}")
    read = None
    if isinstance(st, dict) and isinstance(st.get("ports"), list) and st["ports"]:
        read = st["ports"][0].get("rx_packets") if isinstance(st["ports"][0], dict) else None
    if read == len(scn.frames):
        probs += check_run(ctx, scn, exp, res, stats, files["sinks"])
        note = "whole capture read: all outputs checked"
    else:
        probs += sanitizer_problems(res)
        if res.rc != 0:
            probs.append(f"exit status {res.rc}, expected 0; stderr tail:\n{tail(res.stderr)}")
        if st is not None:
            probs += check_pool(st)
        note = f"only {read} of {len(scn.frames)} frames read before the stop: exit status and pool checked"
    return Outcome(name, probs, res.elapsed, note)


# ---- live counters over DPDK telemetry

def telemetry_query(sock_path: str, cmd: str):
    """One command on DPDK's telemetry socket (what dpdk-telemetry.py does)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(5)
        s.connect(sock_path)
        s.recv(1 << 16)  # greeting with the version and max output length
        s.send(cmd.encode())
        reply = json.loads(s.recv(1 << 20).decode())[cmd]
    if reply is None:  # the daemon has not registered its commands yet
        raise ValueError(f"{cmd}: no answer yet")
    return reply


def telemetry_stats(sock_path: str, scn) -> dict:
    """The /zcdemux/* answers, shaped like the stats JSON."""
    ports = telemetry_query(sock_path, "/zcdemux/ports")
    vms = telemetry_query(sock_path, "/zcdemux/vms")
    return {
        "ports": [dict(name=n, **c) for n, c in ports.items()],
        "vms": [dict(name=v.name, **vms[v.name]) for v in scn.vms if v.name in vms],
        "drops": telemetry_query(sock_path, "/zcdemux/drops"),
        "pool": telemetry_query(sock_path, "/zcdemux/pool"),
    }


def live_problems(live: dict, scn, exp) -> list:
    """Counters as at exit; but while running, the stalled VMs still hold
    every page remapped to them, so the pool is short by exactly those."""
    held = sum(v["remapped"] for v in exp.stats["vms"]
               if next(x for x in scn.vms if x.name == v["name"]).stall)
    pool = live["pool"]
    probs = [p for p in compare_stats_dict(live, exp) if not p.startswith("counter pool.")]
    if pool.get("granted") != held or pool.get("free") != pool.get("pages", 0) - held * pool.get(
            "pages_per_buffer", 1):
        probs.append(f"pool: expected {held} buffers granted to stalled VMs and the rest free, "
                     f"actual {pool}")
    return probs


def test_telemetry(ctx: Ctx) -> Outcome:
    """While the daemon runs, /zcdemux/* must report the same counters the
    stats JSON reports at exit."""
    name = "telemetry"
    scn = zcdgen.get_scenario("stall")
    exp = zcdgen.oracle(scn)
    wd = fresh_dir(os.path.join(ctx.work, name))
    files = zcdgen.write_scenario(scn, wd, exp)
    stats = os.path.join(wd, "stats.json")
    argv = daemon_argv(ctx, name, files["config"], stats, ["--duration", "600"])
    prefix = argv[argv.index("--file-prefix") + 1]
    sock_path = os.path.join(_dpdk_runtime_dir(prefix), "dpdk_telemetry.v2")
    probs, live = [], None
    t0 = time.monotonic()
    with open(os.path.join(wd, "daemon.stdout"), "wb") as out, \
            open(os.path.join(wd, "daemon.stderr"), "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            # Until the counters settle on what the oracle expects, or time is up.
            while time.monotonic() - t0 < ctx.timeout / 2 and proc.poll() is None:
                try:
                    live = telemetry_stats(sock_path, scn)
                    if not live_problems(live, scn, exp):
                        break
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.2)
            if live is None:
                probs.append("telemetry: no answer from " + sock_path)
            else:
                probs += ["telemetry: " + p for p in live_problems(live, scn, exp)]
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=ctx.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            probs.append("did not exit after SIGINT")
    _cleanup_runtime(argv)
    res = RunResult(proc.returncode, _read(os.path.join(wd, "daemon.stdout")),
                    _read(os.path.join(wd, "daemon.stderr")), time.monotonic() - t0)
    probs += check_run(ctx, scn, exp, res, stats, files["sinks"])
    return Outcome(name, probs, res.elapsed, "/zcdemux/ports, vms, drops, pool while running")


# ---- a real network port: net_af_packet on a veth pair in a private netns

REPLAY = os.path.join(REPO, "build", "zcd-replay")


def _sh(*argv) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_af_packet(ctx: Ctx, name: str, scenario: str) -> Outcome:
    """The scenario's frames sent by zcd-replay into one end of a veth pair,
    zcdemux reading the other end with net_af_packet (which hands VLAN tags
    over out of band: they must still reach the VMs on the frame)."""
    scn = zcdgen.get_scenario(scenario)
    # DPDK 22.11's af_packet PMD reports a tag the kernel took off without its
    # TPID, so zcdemux can only put it back as 802.1Q (README, "Ports"): leave
    # 802.1ad-tagged frames out here; the pcap scenarios cover them.
    scn.frames = [f for f in scn.frames if f.data[12:14] != b"\x88\xa8"]
    exp = zcdgen.oracle(scn)
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return Outcome(name, [], 0.0, "SKIPPED: needs root and iproute2 for a network namespace")
    wd = fresh_dir(os.path.join(ctx.work, name))
    files = zcdgen.write_scenario(scn, wd, exp)
    cfg = files["config_dict"]
    cfg["ports"][0]["devargs"] = "net_af_packet0,iface=zcdb,framecnt=4096"
    with open(files["config"], "w") as fh:
        fh.write(zcdgen.yaml_dump(cfg))
    ns = f"zcd-it-{os.getpid()}"
    stats = os.path.join(wd, "stats.json")
    argv = ["ip", "netns", "exec", ns] + daemon_argv(ctx, name, files["config"], stats,
                                                     ["--idle-exit", "3000"])
    probs, t0 = [], time.monotonic()
    try:
        _sh("ip", "netns", "add", ns)
        _sh("ip", "-n", ns, "link", "add", "zcda", "mtu", "9000", "type", "veth", "peer",
            "name", "zcdb", "mtu", "9000")
        # No IPv6: the kernel would send its own multicast frames on link up.
        for dev in ("all", "default", "zcda", "zcdb"):
            knob = f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"
            _sh("ip", "netns", "exec", ns, "sh", "-c", f"[ ! -e {knob} ] || echo 1 > {knob}")
        _sh("ip", "-n", ns, "link", "set", "zcda", "up")
        _sh("ip", "-n", ns, "link", "set", "zcdb", "up")
        with open(os.path.join(wd, "daemon.stdout"), "wb") as out, \
                open(os.path.join(wd, "daemon.stderr"), "wb") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            # Send only once the port is up and every guest is connected.
            while "running:" not in _read(os.path.join(wd, "daemon.stderr")):
                if proc.poll() is not None or time.monotonic() - t0 > ctx.timeout / 2:
                    break
                time.sleep(0.05)
            replay = subprocess.run(["ip", "netns", "exec", ns, REPLAY, "--rate", "5000", "zcda",
                                     files["traffic"]], capture_output=True, text=True)
            if replay.returncode != 0:
                probs.append(f"zcd-replay failed: {replay.stderr.strip()}")
            try:
                proc.wait(timeout=ctx.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                probs.append("timed out")
    except subprocess.CalledProcessError as ex:
        probs.append(f"{' '.join(ex.cmd)}: {ex.stderr.decode().strip()}")
        proc = None
    finally:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        _cleanup_runtime(argv)
    res = RunResult(proc.returncode if proc else None, _read(os.path.join(wd, "daemon.stdout")),
                    _read(os.path.join(wd, "daemon.stderr")), time.monotonic() - t0)
    if proc is not None and not probs:
        probs += check_run(ctx, scn, exp, res, stats, files["sinks"])
    # No log line per frame: the PMD's own attempt to put tags back must be off.
    pmd_errors = res.stderr.count("Failed to reinsert VLAN tag")
    if pmd_errors:
        probs.append(f"net_af_packet logged \"Failed to reinsert VLAN tag\" {pmd_errors} times")
    return Outcome(name, probs, res.elapsed, f"{len(scn.frames)} frames over veth + net_af_packet")


# ---- bench/pktgen's traffic generators, each sending into one end of a
#      veth pair in a private netns, zcdemux reading the other end with
#      net_af_packet (kernel pktgen, dpdk-testpmd), and their helpers

PKTGEN_DIR = os.path.join(REPO, "bench", "pktgen")
FCS = 4
# VMs the generators send to: two MACs untagged, one VLAN, and vm_a's first
# MAC again on another VLAN (demultiplexed by the tag alone).
GEN_VMS = [("vm_a", ["02:00:00:00:0a:01", "02:00:00:00:0a:02"], 0),
           ("vm_b", ["02:00:00:00:0b:01"], 10),
           ("vm_c", ["02:00:00:00:0a:01"], 20)]


def _root_skip() -> Optional[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "SKIPPED: needs root and iproute2 for a network namespace"
    return None


def _pktgen_missing() -> Optional[str]:
    """Why the kernel's pktgen cannot be used here (None: it can)."""
    if os.path.isdir("/proc/net/pktgen"):
        return None
    try:
        r = subprocess.run(["modprobe", "pktgen"], capture_output=True, text=True, timeout=60)
        msg = (r.stderr or r.stdout).strip().splitlines()
        msg = msg[-1] if msg else f"status {r.returncode}"
    except (OSError, subprocess.TimeoutExpired) as ex:
        msg = str(ex)
    if os.path.isdir("/proc/net/pktgen"):
        return None
    return (f"the running kernel ({os.uname().release}) has no pktgen: /proc/net/pktgen is missing "
            f"and `modprobe pktgen` failed ({msg})")


def _gen_config(path: str, vms: list, ring: str, sinkdir: Optional[str]) -> dict:
    """A config reading zcdb with net_af_packet; sinks in sinkdir, or guests that
    give every buffer back at once (no sink) when sinkdir is None."""
    cfg = {"ports": [{"name": "uplink", "devargs": f"net_af_packet0,iface=zcdb,{ring}"}],
           "hypervisor": {"backend": "sim"},
           "dataplane": {"mtu": 1500, "unknown_unicast": "drop"},
           "vms": []}
    for name, macs, vlan in vms:
        vm = {"name": name, "macs": macs}
        if vlan:
            vm["vlan"] = vlan
        vm["credits"] = 1024
        vm["sim"] = ({"sink": os.path.join(sinkdir, f"{name}.pcap")} if sinkdir
                     else {"instant_return": True})
        cfg["vms"].append(vm)
    with open(path, "w") as fh:
        fh.write(zcdgen.yaml_dump(cfg))
    return cfg


class _VethNs:
    """A private network namespace with the veth pair zcda <-> zcdb, up, IPv6
    off (the kernel then sends no frame of its own); deleted on exit."""

    def __init__(self, name: str):
        self.ns = f"zcd-it-{name}-{os.getpid()}"

    def __enter__(self):
        _sh("ip", "netns", "add", self.ns)
        try:
            _sh("ip", "-n", self.ns, "link", "add", "zcda", "type", "veth", "peer", "name", "zcdb")
            for dev in ("all", "default", "zcda", "zcdb"):
                knob = f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"
                _sh("ip", "netns", "exec", self.ns, "sh", "-c", f"[ ! -e {knob} ] || echo 1 > {knob}")
            _sh("ip", "-n", self.ns, "link", "set", "zcda", "up")
            _sh("ip", "-n", self.ns, "link", "set", "zcdb", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)

    def cmd(self, argv: list) -> list:
        return ["ip", "netns", "exec", self.ns] + argv

    def link(self, dev: str) -> dict:
        r = subprocess.run(["ip", "-n", self.ns, "-s", "-j", "link", "show", "dev", dev],
                           capture_output=True, text=True, check=True)
        return json.loads(r.stdout)[0]


class _NsDaemon:
    """zcdemux in the namespace, writing its stats every second until SIGINT."""

    def __init__(self, ctx: Ctx, name: str, wd: str, net: _VethNs, config: str):
        self.ctx, self.wd = ctx, wd
        self.stats = os.path.join(wd, "stats.json")
        self.argv = net.cmd(daemon_argv(ctx, name, config, self.stats, ["--stats-interval", "1"]))
        self.proc = None
        self.t0 = time.monotonic()

    def start(self, wait_for: str = "running:") -> Optional[str]:
        """None once zcdemux logged wait_for (by default: it runs, every guest
        connected), else what went wrong."""
        with open(os.path.join(self.wd, "command.txt"), "w") as fh:
            fh.write(" ".join(_shquote(a) for a in self.argv) + "\n")
        with open(os.path.join(self.wd, "daemon.stdout"), "wb") as out, \
                open(os.path.join(self.wd, "daemon.stderr"), "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        end = time.monotonic() + self.ctx.timeout / 2
        while wait_for not in _read(os.path.join(self.wd, "daemon.stderr")):
            if self.proc.poll() is not None or time.monotonic() > end:
                return f"zcdemux did not start:\n{tail(_read(os.path.join(self.wd, 'daemon.stderr')))}"
            time.sleep(0.05)
        return None

    def wait_settled(self, frames: int, timeout: float) -> None:
        """Until the port has received frames and every VM has given back all
        it was handed (a guest's sink then holds them all), or timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                with open(self.stats) as fh:
                    st = json.load(fh)
                if (st["ports"][0]["rx_packets"] >= frames
                        and all(v["returned"] == v["rx_packets"] for v in st["vms"])):
                    return
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.2)

    def wait_quiet(self, timeout: float) -> None:
        """Until its stats (written every second) stayed the same for two
        seconds, or timeout."""
        end, last, quiet = time.monotonic() + timeout, None, 0
        while time.monotonic() < end and self.proc.poll() is None and quiet < 10:
            text = _read(self.stats)
            quiet = quiet + 1 if text and text == last else 0
            last = text
            time.sleep(0.2)

    def stop(self) -> RunResult:
        if self.proc is None:
            return RunResult(None, "", "", 0.0, False, self.argv)
        timed_out = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=self.ctx.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.proc.kill()
            self.proc.wait()
        _cleanup_runtime(self.argv)
        return RunResult(self.proc.returncode, _read(os.path.join(self.wd, "daemon.stdout")),
                         _read(os.path.join(self.wd, "daemon.stderr")), time.monotonic() - self.t0,
                         timed_out, self.argv)


def _with_daemon(ctx: Ctx, name: str, wd: str, config: str, traffic) -> tuple:
    """In a fresh _VethNs, zcdemux on zcdb with config; traffic(net) sends and
    returns (problems, frames the port must receive); then zcdemux is let
    settle and stopped.  Returns (problems, RunResult or None, zcda's MAC)."""
    probs, res, src = [], None, b""
    try:
        with _VethNs(name) as net:
            src = zcdgen.parse_mac(net.link("zcda")["address"])
            daemon = _NsDaemon(ctx, name, wd, net, config)
            try:
                err = daemon.start()
                if err:
                    probs.append(err)
                else:
                    more, frames = traffic(net)
                    probs += more
                    if not more:
                        daemon.wait_settled(frames, ctx.timeout / 2)
            finally:
                res = daemon.stop()
    except subprocess.CalledProcessError as ex:
        err = ex.stderr.decode(errors="replace") if isinstance(ex.stderr, bytes) else (ex.stderr or "")
        probs.append(f"{' '.join(map(str, ex.cmd))}: status {ex.returncode}: {err.strip()}")
    return probs, res, src


def _check_generated(res: RunResult, stats: str, want: dict, src: bytes, sinks: bool, wd: str) -> list:
    """want: {vm: (mac, vlan, [frame lengths in arrival order])}.  Every VM's
    counters, and with sinks every frame: its length, destination and source
    MAC, the VM's 802.1Q tag or none, an IPv4 packet inside."""
    probs = sanitizer_problems(res)
    if res.timed_out or res.rc != 0:
        return probs + [f"zcdemux exit status {res.rc}" + (" (killed after the timeout)" if res.timed_out else "")
                        + f", expected 0; stderr tail:\n{tail(res.stderr)}"]
    try:
        with open(stats) as fh:
            st = json.load(fh)
    except (OSError, ValueError) as ex:
        return probs + [f"stats JSON: {ex}"]
    total = sum(len(w[2]) for w in want.values())
    port = st["ports"][0]
    if (port["rx_packets"], port["rx_bytes"]) != (total, sum(sum(w[2]) for w in want.values())):
        probs.append(f"port rx_packets/rx_bytes {port['rx_packets']}/{port['rx_bytes']}, expected "
                     f"{total}/{sum(sum(w[2]) for w in want.values())}")
    if any(st["drops"].values()):
        probs.append(f"drops: {st['drops']}, expected none")
    probs += check_pool(st)
    for vm, (mac, vlan, lengths) in want.items():
        vs = next((v for v in st["vms"] if v["name"] == vm), None)
        if vs is None:
            probs.append(f"{vm}: not in the stats")
            continue
        small = sum(1 for n in lengths if n < 256)  # below the default copy_threshold: copied
        exp = {"rx_packets": len(lengths), "rx_bytes": sum(lengths), "copied": small,
               "remapped": len(lengths) - small, "returned": len(lengths), "dropped_no_credit": 0,
               "bad_returns": 0, "residue_bytes": 0}
        for k, val in exp.items():
            if vs.get(k) != val:
                probs.append(f"{vm}.{k}: expected {val}, actual {vs.get(k)}")
        if not sinks:
            continue
        try:
            frames = [r[4] for r in zcdgen.read_pcap(os.path.join(wd, "sinks", f"{vm}.pcap")).records]
        except (OSError, zcdgen.PcapError) as ex:
            probs.append(f"{vm}: sink: {ex}")
            continue
        got = [len(f) for f in frames]
        if got != lengths:
            first = next((i for i, (a, b) in enumerate(zip(got, lengths)) if a != b), min(len(got), len(lengths)))
            probs.append(f"{vm}: sink has {len(got)} frames, expected {len(lengths)}; first difference at "
                         f"frame {first}: {got[first:first + 1]} bytes, expected {lengths[first:first + 1]}")
        tag = b"\x81\x00" + vlan.to_bytes(2, "big") if vlan else b""
        for i, f in enumerate(frames):
            bad = []
            if f[0:6] != zcdgen.parse_mac(mac):
                bad.append(f"destination {zcdgen.mac_text(f[0:6])}, expected {mac}")
            if f[6:12] != src:
                bad.append(f"source {zcdgen.mac_text(f[6:12])}, expected {zcdgen.mac_text(src)}")
            if f[12:12 + len(tag)] != tag or f[12 + len(tag):14 + len(tag)] != b"\x08\x00":
                bad.append(f"bytes 12.. {f[12:18].hex()}, expected {(tag + bytes([8, 0])).hex()}")
            if bad:
                probs.append(f"{vm}: frame {i}: " + "; ".join(bad))
                break
    return probs


def _frames_for(vms: list, per_mac: int, sizes: list) -> dict:
    """{vm: (first MAC, vlan, lengths)}: per_mac frames per MAC and size, the
    sizes one after the other (size on the wire, the sink holds it without
    FCS).  pktgen's tagged frames are at least 62 bytes: tag + its header."""
    return {name: (macs[0], vlan, [max(s - FCS, 62 if vlan else 0) for s in sizes
                                   for _ in range(per_mac * len(macs))])
            for name, macs, vlan in vms}


def test_pktgen_kernel(ctx: Ctx) -> Outcome:
    """bench/pktgen/zcd-pktgen.sh with the kernel's pktgen: a fixed count per
    VM MAC in three frame sizes, VLANs tagged, paced; every frame must reach
    its VM, exactly."""
    name = "pktgen_kernel"
    skip = _root_skip()
    if skip:
        return Outcome(name, [], 0.0, skip)
    missing = _pktgen_missing()
    if missing:
        return Outcome(name, [], 0.0, f"SKIPPED: {missing}; `make test-iommu` runs zcd-pktgen.sh "
                                      "on its VM's Debian kernel")
    sizes, count, rate = [64, 300, 1518], 50, 3000
    threads = 2 if os.path.isdir("/proc/net/pktgen/kpktgend_1") else 1
    wd = fresh_dir(os.path.join(ctx.work, name))
    os.makedirs(os.path.join(wd, "sinks"))
    config = os.path.join(wd, "config.yaml")
    _gen_config(config, GEN_VMS, "framecnt=4096", os.path.join(wd, "sinks"))
    want = _frames_for(GEN_VMS, count, sizes)
    streams = sum(len(m) for _, m, _ in GEN_VMS)

    def traffic(net):
        argv = net.cmd(["bash", os.path.join(PKTGEN_DIR, "zcd-pktgen.sh"), "-i", "zcda", "-c", config,
                        "-s", ",".join(map(str, sizes)), "-n", str(count), "-r", str(rate), "-t", str(threads)])
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=ctx.timeout)
        except subprocess.TimeoutExpired:
            return ["zcd-pktgen.sh timed out"], 0
        with open(os.path.join(wd, "pktgen.out"), "w") as fh:
            fh.write(r.stdout + r.stderr)
        ok = re.findall(rf"^zcd-pktgen: (\S+): sent {count}: OK", r.stdout, re.M)
        if r.returncode != 0 or len(ok) != streams * len(sizes):
            return [f"zcd-pktgen.sh: status {r.returncode}, {len(ok)} of {streams * len(sizes)} streams "
                    f"sent {count}:\n{tail(r.stdout + r.stderr)}"], 0
        if "vm_b=02:00:00:00:0b:01/10" not in ok:
            return [f"zcd-pktgen.sh: no stream vm_b=02:00:00:00:0b:01/10 in {ok}"], 0
        return [], streams * count * len(sizes)

    t0 = time.monotonic()
    probs, res, src = _with_daemon(ctx, name, wd, config, traffic)
    if not probs:
        probs += _check_generated(res, os.path.join(wd, "stats.json"), want, src, True, wd)
    return Outcome(name, probs, time.monotonic() - t0,
                   f"{count} frames per VM MAC of {'/'.join(map(str, sizes))} bytes, {rate} pps, "
                   f"{threads} pktgen thread(s), over veth + net_af_packet")


def test_pktgen_script(ctx: Ctx) -> Outcome:
    """zcd-pktgen.sh's own work, on any kernel: the pktgen commands it would
    write for a configuration (--dry-run), its usage and its refusals (not
    root, no such interface, no pktgen in the kernel)."""
    name = "pktgen_script"
    t0 = time.monotonic()
    wd = fresh_dir(os.path.join(ctx.work, name))
    script = os.path.join(PKTGEN_DIR, "zcd-pktgen.sh")
    config = os.path.join(wd, "config.yaml")
    _gen_config(config, GEN_VMS, "framecnt=4096", None)
    probs = []

    def run(argv, **kw):
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)

    r = run([script, "--help"])
    if r.returncode != 0 or "Usage:" not in r.stdout or "--src-mac" not in r.stdout:
        probs.append(f"--help: status {r.returncode}, no usage text:\n{tail(r.stdout + r.stderr)}")
    r = run([script, "-i", "zcda", "-d", "02:00:00:00:0a:01", "-s", "64,20000"])
    if r.returncode != 2 or '"20000" is not a frame size' not in r.stderr:
        probs.append(f"-s 20000: status {r.returncode}, expected 2 and a reason: {r.stderr.strip()}")

    # The commands for GEN_VMS: one device per VM MAC, spread over 2 threads.
    r = run([script, "-i", "zcda", "-c", config, "-s", "64,1518", "-n", "7", "-r", "1000", "-t", "2",
             "--src-mac", "02:00:00:00:ff:01", "--dry-run"])
    macs = [(m, vlan) for _, ms, vlan in GEN_VMS for m in ms]
    expected = []
    for size in (64, 1518):
        expected += ["kpktgend_0: rem_device_all", "kpktgend_1: rem_device_all"]
        for i, (mac, vlan) in enumerate(macs):
            dev = f"zcda@{i}"
            expected += [f"kpktgend_{i % 2}: add_device {dev}", f"{dev}: pkt_size {size - FCS}",
                         f"{dev}: count 7", f"{dev}: delay {len(macs) * 1000000000 // 1000}",
                         f"{dev}: clone_skb 0", f"{dev}: dst_mac {mac}", f"{dev}: src_mac 02:00:00:00:ff:01",
                         f"{dev}: dst 198.18.0.{i + 1}", f"{dev}: src_min 198.19.0.1",
                         f"{dev}: src_max 198.19.0.1"] + ([f"{dev}: vlan_id {vlan}"] if vlan else [])
        expected += ["pgctrl: start", "kpktgend_0: rem_device_all", "kpktgend_1: rem_device_all"]
    got = [ln for ln in r.stdout.splitlines() if not ln.startswith("zcd-pktgen: ")]
    if r.returncode != 0 or got != expected:
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        probs.append(f"--dry-run: status {r.returncode}; command {first}: "
                     f"{got[first:first + 1]}, expected {expected[first:first + 1]}\n{tail(r.stderr)}")
    if r.stdout.count("zcd-pktgen: round ") != 2:
        probs.append(f"--dry-run: expected two rounds:\n{tail(r.stdout)}")

    skip = _root_skip()
    if skip:
        return Outcome(name, probs, time.monotonic() - t0, "dry run and usage only; refusals " + skip)
    refusals = []
    try:
        with _VethNs(name) as net:
            # (case, who runs it, interface, what it must say)
            refusals.append(("no interface", [], "zcdnone", 'no network interface "zcdnone"'))
            if shutil.which("setpriv"):
                refusals.append(("not root", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                                 "zcda", "needs root"))
            if _pktgen_missing():  # it must stop at the check, before it sends anything
                refusals.append(("no pktgen", [], "zcda", "has no pktgen"))
            for _, prefix, iface, reason in refusals:
                r = run(net.cmd(prefix + [script, "-i", iface, "-c", config, "-n", "1"]))
                if r.returncode != 1 or reason not in r.stderr:
                    probs.append(f"refusal \"{reason}\": status {r.returncode}, stderr: {r.stderr.strip()}")
    except subprocess.CalledProcessError as ex:
        probs.append(f"{' '.join(ex.cmd)}: {ex.stderr.decode().strip()}")
    return Outcome(name, probs, time.monotonic() - t0,
                   "dry run, usage; refusals: " + ", ".join(r[0] for r in refusals))


def test_pktgen_vms(ctx: Ctx) -> Outcome:
    """zcd-vms.py (with PyYAML and with its builtin reader) lists the same VMs
    as zcdemux's own loader (zcd-gen --list-vms) for the shipped and the test
    configurations; the checked-in testpmd example is what the generator writes."""
    name = "pktgen_vms"
    t0 = time.monotonic()
    wd = fresh_dir(os.path.join(ctx.work, name))
    vms_py = os.path.join(PKTGEN_DIR, "zcd-vms.py")
    gen = os.path.join(os.path.dirname(ctx.binary), "zcd-gen")
    configs = [os.path.join(REPO, "configs", f) for f in sorted(os.listdir(os.path.join(REPO, "configs")))
               if f.endswith(".yaml")]
    for scn in ("vlans", "mixed", "jumbo"):
        configs.append(zcdgen.write_scenario(zcdgen.get_scenario(scn), os.path.join(wd, scn))["config"])
    configs.append(os.path.join(wd, "gen.yaml"))
    _gen_config(configs[-1], GEN_VMS, "framecnt=4096", None)
    parsers = ["builtin"] + (["pyyaml"] if importlib.util.find_spec("yaml") else [])
    probs = []
    for cfg in configs:
        ref = subprocess.run([gen, "--list-vms", "--config", cfg], capture_output=True, text=True)
        if ref.returncode != 0 or not ref.stdout:
            probs.append(f"zcd-gen --list-vms {cfg}: status {ref.returncode}: {ref.stderr.strip()}")
            continue
        for p in parsers:
            r = subprocess.run([sys.executable, vms_py, "--parser", p, cfg], capture_output=True, text=True)
            if r.returncode != 0 or r.stdout != ref.stdout:
                probs.append(f"zcd-vms.py --parser {p} {os.path.relpath(cfg, REPO)}: status {r.returncode}, "
                             f"output differs from the loader's:\n{tail(r.stdout + r.stderr)}")
    # Without PyYAML (not installed by default on Debian 12): the builtin
    # reader, and the apt-get line for what it cannot read.
    noyaml = os.path.join(wd, "noyaml")
    os.makedirs(noyaml)
    with open(os.path.join(noyaml, "yaml.py"), "w") as fh:
        fh.write('raise ImportError("PyYAML hidden by the test")\n')
    env = dict(os.environ, PYTHONPATH=noyaml)
    demo = os.path.join(REPO, "configs", "demo.yaml")
    r = subprocess.run([sys.executable, vms_py, demo], capture_output=True, text=True, env=env)
    ref = subprocess.run([gen, "--list-vms", "--config", demo], capture_output=True, text=True)
    if r.returncode != 0 or r.stdout != ref.stdout:
        probs.append(f"zcd-vms.py without PyYAML: status {r.returncode}:\n{tail(r.stdout + r.stderr)}")
    r = subprocess.run([sys.executable, vms_py, "--parser", "pyyaml", demo], capture_output=True, text=True,
                       env=env)
    if r.returncode != 1 or "apt-get install python3-yaml" not in r.stderr:
        probs.append(f"zcd-vms.py --parser pyyaml without PyYAML: status {r.returncode}, no apt-get line: "
                     f"{r.stderr.strip()}")
    bad = os.path.join(wd, "anchors.yaml")
    with open(bad, "w") as fh:
        fh.write('vms:\n  - name: a\n    macs: &m ["02:00:00:00:00:01"]\n')
    r = subprocess.run([sys.executable, vms_py, "--parser", "builtin", bad], capture_output=True, text=True)
    if r.returncode != 1 or "apt-get install python3-yaml" not in r.stderr:
        probs.append(f"builtin reader on YAML anchors: status {r.returncode}, no apt-get hint: {r.stderr.strip()}")
    example = os.path.join(PKTGEN_DIR, "demo.testpmd")
    r = subprocess.run([sys.executable, os.path.join(PKTGEN_DIR, "zcd-testpmd-cmds.py"), "configs/demo.yaml",
                        "--vm", "vm1", "--vm", "vm2", "--size", "512"], capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0 or r.stdout != _read(example):
        probs.append(f"{os.path.relpath(example, REPO)} is not what zcd-testpmd-cmds.py writes now "
                     f"(status {r.returncode}):\n{tail(r.stdout + r.stderr)}")
    return Outcome(name, probs, time.monotonic() - t0,
                   f"{len(configs)} configs, parsers: {', '.join(parsers)}")


def _testpmd_argv(name: str, net: _VethNs, cmds: str, ports: int) -> list:
    cores = "0,1" if (os.cpu_count() or 1) > 1 else "0"
    argv = ["dpdk-testpmd", "--no-huge", "-m", "256", "--no-pci", "-l", cores,
            "--file-prefix", f"zcd-it-{name}-testpmd-{os.getpid()}", "--log-level=lib.eal:warning",
            "--no-telemetry"]
    for p in range(ports):  # every port sends out of zcda, each to its own VM
        argv += ["--vdev", f"net_af_packet{p},iface=zcda"]
    return net.cmd(argv + ["--", "-i", "--total-num-mbufs=4096", "--cmdline-file", cmds])


def _testpmd_tx(out: str) -> dict:
    """{port: (TX-packets, TX-dropped)} from testpmd's first forward statistics."""
    tx = {}
    for m in re.finditer(r"Forward statistics for port (\d+)\s+-+\s+RX-packets:.*?\n\s*TX-packets:\s*(\d+)"
                         r"\s+TX-dropped:\s*(\d+)", out):
        tx.setdefault(int(m.group(1)), (int(m.group(2)), int(m.group(3))))
    return tx


def test_testpmd_txonly(ctx: Ctx) -> Outcome:
    """dpdk-testpmd with command files from bench/pktgen/zcd-testpmd-cmds.py,
    two net_af_packet ports on zcda, one VM each (vm_b on VLAN 10, tagged by
    the port's VLAN insertion): a bounded run (--mode burst: txonly frames
    for exactly 4 bursts of 32 per port), every frame checked in the sinks;
    then --mode txonly until about 10000 frames have gone out, `stop`: each
    VM must have exactly the TX-packets of its port."""
    name = "testpmd_txonly"
    skip = _root_skip()
    if skip:
        return Outcome(name, [], 0.0, skip)
    if shutil.which("dpdk-testpmd") is None:
        return Outcome(name, [], 0.0, "SKIPPED: no dpdk-testpmd (apt-get install dpdk-dev)")
    t0 = time.monotonic()
    wd = fresh_dir(os.path.join(ctx.work, name))
    vms = [("vm_a", ["02:00:00:00:0a:01"], 0), ("vm_b", ["02:00:00:00:0b:01"], 10),
           ("vm_c", ["02:00:00:00:0c:01"], 0)]  # vm_c gets nothing

    def commands(d: str, *args) -> tuple:
        cmds = os.path.join(d, "cmds")
        r = subprocess.run([sys.executable, os.path.join(PKTGEN_DIR, "zcd-testpmd-cmds.py"),
                            os.path.join(d, "config.yaml"), "--vm", "vm_a", "--vm", "vm_b", "-o", cmds, *args],
                           capture_output=True, text=True)
        return cmds, ([] if r.returncode == 0 else [f"zcd-testpmd-cmds.py: status {r.returncode}: "
                                                     f"{r.stderr.strip()}"])

    # 1. Bounded: 4 bursts of 32 per port, 300 bytes for the untagged VM and
    # 4 more for the tagged one (testpmd has one txpkts for both ports).
    size, bursts = 300, 4
    n = bursts * 32
    d1 = fresh_dir(os.path.join(wd, "burst"))
    os.makedirs(os.path.join(d1, "sinks"))
    _gen_config(os.path.join(d1, "config.yaml"), vms, "framecnt=4096", os.path.join(d1, "sinks"))
    cmds, probs = commands(d1, "--mode", "burst", "--bursts", str(bursts), "--size", str(size))

    def bounded(net):
        argv = _testpmd_argv(name, net, cmds, 2)
        try:
            tp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=ctx.timeout)
        except subprocess.TimeoutExpired:
            return ["testpmd timed out"], 0
        finally:
            _cleanup_runtime(argv)
        with open(os.path.join(d1, "testpmd.out"), "w") as fh:
            fh.write(tp.stdout + tp.stderr)
        tx = _testpmd_tx(tp.stdout)
        if tp.returncode != 0 or tx != {0: (n, 0), 1: (n, 0)}:
            return [f"testpmd: status {tp.returncode}, TX-packets/dropped per port {tx}, expected {n}/0 "
                    f"on ports 0 and 1:\n{tail(tp.stdout + tp.stderr)}"], 0
        return [], 2 * n

    if not probs:
        probs, res, src = _with_daemon(ctx, name, d1, os.path.join(d1, "config.yaml"), bounded)
    if not probs:
        want = {"vm_a": ("02:00:00:00:0a:01", 0, [size - FCS] * n),
                "vm_b": ("02:00:00:00:0b:01", 10, [size] * n), "vm_c": ("02:00:00:00:0c:01", 0, [])}
        probs += _check_generated(res, os.path.join(d1, "stats.json"), want, src, True, d1)
    if probs:
        return Outcome(name, probs, time.monotonic() - t0, "burst")

    # 2. txonly as a user runs it, for a while.  net_af_packet reports no
    # drops, so zcdemux's ring holds more frames than are sent: none can be
    # lost however busy the machine is, and the counts must match.
    size, goal = 128, 10000
    d2 = fresh_dir(os.path.join(wd, "txonly"))
    _gen_config(os.path.join(d2, "config.yaml"), vms, "framesz=512,framecnt=65536", None)
    cmds, probs = commands(d2, "--mode", "txonly", "--size", str(size))
    tx = {}

    def continuous(net):
        argv = _testpmd_argv(name, net, cmds, 2)
        out_path = os.path.join(d2, "testpmd.out")
        with open(out_path, "wb") as out:
            tp = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
        try:
            end = time.monotonic() + ctx.timeout / 2
            while tp.poll() is None and time.monotonic() < end:
                if net.link("zcda")["stats64"]["tx"]["packets"] >= goal:
                    break
                time.sleep(0.01)
            tp.communicate(b"stop\nquit\n", timeout=ctx.timeout)
        except subprocess.TimeoutExpired:
            tp.kill()
            tp.wait()
            return ["testpmd did not quit"], 0
        finally:
            _cleanup_runtime(argv)
        text = _read(out_path)
        tx.update(_testpmd_tx(text))
        sent = net.link("zcda")["stats64"]["tx"]["packets"]
        if tp.returncode != 0 or set(tx) != {0, 1} or sent < goal:
            return [f"testpmd: status {tp.returncode}, TX per port {tx}, {sent} frames out of zcda, "
                    f"expected at least {goal}:\n{tail(text)}"], 0
        if sent != tx[0][0] + tx[1][0]:
            return [f"testpmd counted {tx[0][0]} + {tx[1][0]} frames sent, zcda sent {sent}"], 0
        return [], sent

    if not probs:
        probs, res, src = _with_daemon(ctx, name, d2, os.path.join(d2, "config.yaml"), continuous)
    if not probs:
        want = {"vm_a": ("02:00:00:00:0a:01", 0, [size - FCS] * tx[0][0]),
                "vm_b": ("02:00:00:00:0b:01", 10, [size] * tx[1][0]), "vm_c": ("02:00:00:00:0c:01", 0, [])}
        probs += _check_generated(res, os.path.join(d2, "stats.json"), want, src, False, d2)
    note = (f"burst: {n} frames per port; txonly: {tx.get(0, (0,))[0]} + {tx.get(1, (0,))[0]} frames "
            "by testpmd's TX-packets (veth + net_af_packet)")
    return Outcome(name, probs, time.monotonic() - t0, note)


# ---- the test-only DMA fault injection, mechanics only (the real IOMMU
#      faulting the device's write is tests/iommu's job)

def test_fault_injection(ctx: Ctx) -> Outcome:
    """--inject-dma-fault: the victim (a buffer a stalled VM holds) is chosen,
    one buffer is posted with its IOVA, the frame received into it is dropped
    and counted, and the victim is compared at the end."""
    name = "fault_injection"
    scn = zcdgen.get_scenario("stall")
    wd = fresh_dir(os.path.join(ctx.work, name))
    traffic = os.path.join(wd, "traffic.pcap")
    zcdgen.write_pcap(traffic, scn.frames)
    stalled = next(v for v in scn.vms if v.stall)
    cfg = {
        "ports": [{"name": "uplink", "devargs": f"net_pcap0,rx_pcap={traffic}"}],
        "hypervisor": {"backend": "sim"},
        "iommu": {"backend": "sim", "check": True},
        "dataplane": {"rx_descriptors": 32},
        "vms": [{"name": "held", "macs": list(stalled.macs), "credits": 8,
                 "sim": {"stall": True}}],
    }
    config = os.path.join(wd, "config.yaml")
    with open(config, "w") as fh:
        fh.write(zcdgen.yaml_dump(cfg))
    res, st, probs = run_for_stats(ctx, name, config, wd, ["--idle-exit", "300",
                                                           "--inject-dma-fault"])
    if st is None:
        return Outcome(name, probs, res.elapsed)
    want = {"posted": True, "frames_dropped": 1, "victim_checked": True, "victim_changed": False}
    fi = st.get("fault_injection", {})
    for k, v in want.items():
        if fi.get(k) != v:
            probs.append(f"fault_injection.{k} = {fi.get(k)}, expected {v}")
    if st["ports"][0]["rx_packets"] != len(scn.frames):
        probs.append(f"ports[0].rx_packets = {st['ports'][0]['rx_packets']}, expected {len(scn.frames)}")
    if st["vms"][0]["rx_packets"] != 8 or st["iommu"]["mismatches"] != 0:
        probs.append(f"vms[0].rx_packets = {st['vms'][0]['rx_packets']} (expected 8), "
                     f"iommu.mismatches = {st['iommu']['mismatches']} (expected 0)")
    probs += check_pool(st)
    return Outcome(name, probs, res.elapsed, "sim IOMMU: victim chosen, posted, dropped, compared")


# ---- make install

def test_install(ctx: Ctx) -> Outcome:
    """make install into a scratch DESTDIR: every file where the README says,
    the unit pointing at the installed daemon and configuration."""
    wd = fresh_dir(os.path.join(ctx.work, "install"))
    dest = os.path.join(wd, "root")
    t0 = time.monotonic()
    # The build under test, with the flags it was made with (install depends on all).
    argv = ["make", "-s", "-C", REPO, "install", f"DESTDIR={dest}", "PREFIX=/usr",
            f"BUILD={os.path.dirname(ctx.binary)}"]
    if looks_like_asan(ctx.binary):
        argv.append("SANITIZE=1")
    res = subprocess.run(argv, capture_output=True, text=True)
    probs = []
    if res.returncode != 0:
        return Outcome("install", [f"make install failed: {res.stderr.strip()[-800:]}"],
                       time.monotonic() - t0)
    # zcdemux looks for the simulated guest's program in ../lib/zcdemux from itself.
    for rel in ("usr/bin/zcdemux", "usr/bin/zcdemux-guest", "usr/lib/zcdemux/zcdemux-sim-guest",
                "usr/lib/systemd/system/zcdemux.service",
                "etc/modules-load.d/zcdemux.conf", "etc/zcdemux/zcdemux.yaml",
                "usr/share/zcdemux/examples/demo.yaml", "usr/share/zcdemux/examples/xen.yaml",
                "usr/src/zcdemux-grant-0.1/zcdemux_grant.c", "usr/src/zcdemux-grant-0.1/Kbuild",
                "usr/src/zcdemux-grant-0.1/dkms.conf",
                "usr/src/zcdemux-grant-0.1/include/zcdemux/xen_grant.h"):
        if not os.path.isfile(os.path.join(dest, rel)):
            probs.append(f"/{rel} was not installed")
    unit = _read(os.path.join(dest, "usr/lib/systemd/system/zcdemux.service"))
    if "ExecStart=/usr/bin/zcdemux " not in unit or "--config /etc/zcdemux/zcdemux.yaml" not in unit:
        probs.append("the systemd unit does not run /usr/bin/zcdemux on /etc/zcdemux/zcdemux.yaml")
    if "@" in unit:
        probs.append("the systemd unit has an unsubstituted @VARIABLE@")
    if "zcdemux_grant" not in _read(os.path.join(dest, "etc/modules-load.d/zcdemux.conf")):
        probs.append("modules-load.d does not load zcdemux_grant")
    return Outcome("install", probs, time.monotonic() - t0, "DESTDIR, PREFIX=/usr")


# ---- configuration errors

def _base_config_lines(pcap: str, sinkdir: str) -> list:
    return [
        "# zcdemux integration test: configuration error",   # 1
        "ports:",                                              # 2
        "  - name: uplink",                                    # 3
        f'    devargs: "net_pcap0,rx_pcap={pcap}"',            # 4
        "hypervisor:",                                         # 5
        "  backend: sim",                                      # 6
        "iommu:",                                              # 7
        "  backend: none",                                     # 8
        "dataplane:",                                          # 9
        "  mtu: 1500",                                         # 10
        "  unknown_unicast: drop",                             # 11
        "vms:",                                                # 12
        "  - name: vm1",                                       # 13
        '    macs: ["02:00:00:00:00:01", "02:00:00:00:00:aa"]',  # 14
        "    sim:",                                            # 15
        f'      sink: "{sinkdir}/vm1.pcap"',                   # 16
        "      stall: false",                                  # 17
        "  - name: vm2",                                       # 18
        '    macs: ["02:00:00:00:00:02"]',                     # 19
        "    vlan: 10",                                        # 20
        "    credits: 64",                                     # 21
        "    sim:",                                            # 22
        f'      sink: "{sinkdir}/vm2.pcap"',                   # 23
        "      stall: false",                                  # 24
    ]


def _replace(lines, lineno, text):
    out = list(lines)
    out[lineno - 1] = text
    return out


def _insert(lines, after, text):
    out = list(lines)
    out.insert(after, text)
    return out


# (name, edit(lines) -> lines, expected line or None, key substrings (any), what)
CONFIG_ERRORS = [
    ("unknown_key", lambda L: _insert(L, 14, '    colour: "blue"'), 15, ("colour",),
     "an unknown key in a VM"),
    ("unknown_top_key", lambda L: L + ["statistics: yes"], 25, ("statistics",),
     "an unknown top-level key"),
    ("bad_mac", lambda L: _replace(L, 19, '    macs: ["02:00:00:00:00:0g"]'), 19, ("mac",),
     "a malformed MAC"),
    ("short_mac", lambda L: _replace(L, 19, '    macs: ["02:00:00:00:02"]'), 19, ("mac",),
     "a MAC with five octets"),
    ("duplicate_mac_vlan", lambda L: _replace(_replace(L, 19, '    macs: ["02:00:00:00:00:01"]'), 20,
                                              "    # untagged, like vm1"),
     range(18, 25), ("mac", "vlan"), "the same (MAC, untagged) in two VMs"),
    ("duplicate_mac_case", lambda L: _replace(_replace(L, 19, '    macs: ["02:00:00:00:00:AA"]'), 20,
                                              "    # untagged, like vm1"),
     range(18, 25), ("mac", "vlan"), "the same MAC in another case in two untagged VMs"),
    ("unknown_hv_backend", lambda L: _replace(L, 6, "  backend: vmware"), 6, ("backend",),
     "an unknown hypervisor backend"),
    ("unknown_iommu_backend", lambda L: _replace(L, 8, "  backend: nosuch"), 8, ("backend",),
     "an unknown iommu backend"),
    ("vlan_4095", lambda L: _replace(L, 20, "    vlan: 4095"), 20, ("vlan",), "VLAN ID 4095"),
    ("mtu_9001", lambda L: _replace(L, 10, "  mtu: 9001"), 10, ("mtu",), "mtu above 9000"),
    ("unknown_unicast_novm", lambda L: _replace(L, 11, "  unknown_unicast: vm9"), 11,
     ("unknown_unicast",), "unknown_unicast naming no VM"),
]


def test_config_error(ctx: Ctx, case) -> Outcome:
    cname, edit, want_line, keys, what = case
    name = f"config_error/{cname}"
    wd = fresh_dir(os.path.join(ctx.work, "config_error", cname))
    pcap = os.path.join(wd, "traffic.pcap")
    zcdgen.write_pcap(pcap, zcdgen.get_scenario("runts").frames[:20])
    sinkdir = os.path.join(wd, "sinks")
    os.makedirs(sinkdir)
    if cname == "missing_file":
        config = os.path.join(wd, "no-such-config.yaml")
    else:
        config = os.path.join(wd, "config.yaml")
        with open(config, "w") as fh:
            fh.write("\n".join(edit(_base_config_lines(pcap, sinkdir))) + "\n")
    stats = os.path.join(wd, "stats.json")
    argv = daemon_argv(ctx, f"cfg-{cname}", config, stats, ["--idle-exit", "300"])
    res = run_daemon(ctx, argv, wd, timeout=60 * ctx.scale)
    probs = sanitizer_problems(res)
    if res.timed_out:
        return Outcome(name, [f"{what}: timed out (did the daemon start anyway?)"], res.elapsed)
    if res.rc == 0:
        probs.append(f"{what}: exit status 0, expected non-zero")
    elif res.rc < 0:
        probs.append(f"{what}: killed by signal {-res.rc}")
    pat = re.compile(r"^" + re.escape(config) + r"(?::(\d+))?: (.*)$")
    hits = [m for m in (pat.match(ln) for ln in res.stderr.splitlines()) if m]
    if not hits:
        probs.append(f"{what}: no '{config}:<line>: <key>: ...' line on stderr; stderr tail:\n{tail(res.stderr)}")
    else:
        m = hits[0]
        line = int(m.group(1)) if m.group(1) else None
        rest = m.group(2)
        if want_line is None:
            if line is not None:
                probs.append(f"{what}: error names line {line}, expected no line: {m.group(0)}")
        else:
            ok_lines = want_line if isinstance(want_line, range) else [want_line]
            if line is None:
                probs.append(f"{what}: error has no line number, expected "
                             f"{_lines_text(ok_lines)}: {m.group(0)}")
            elif line not in ok_lines:
                probs.append(f"{what}: error names line {line}, expected {_lines_text(ok_lines)}: {m.group(0)}")
            key, sep, msg = rest.partition(": ")
            if not sep or not msg.strip():
                probs.append(f"{what}: error is not '<key>: <message>' after the line: {m.group(0)}")
            elif not any(k in key.lower() for k in keys):
                probs.append(f"{what}: key '{key}' does not name {' or '.join(keys)}: {m.group(0)}")
    for fn in ("vm1.pcap", "vm2.pcap"):
        if os.path.exists(os.path.join(sinkdir, fn)):
            probs.append(f"{what}: sink {fn} was created")
    if "EAL:" in res.stderr or "EAL:" in res.stdout:
        probs.append(f"{what}: EAL output: DPDK was started before the config was rejected")
    return Outcome(name, probs, res.elapsed, what)


def _lines_text(lines) -> str:
    lines = list(lines)
    return str(lines[0]) if len(lines) == 1 else f"{lines[0]}-{lines[-1]}"


CONFIG_ERRORS.append(("missing_file", None, None, (), "a config file that does not exist"))


# --------------------------------------------------------------------------
# Main


def looks_like_asan(binary: str) -> bool:
    try:
        with open(binary, "rb") as fh:
            data = fh.read()
        return b"__asan_init" in data or b"libasan.so" in data
    except OSError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "build", "zcdemux"))
    ap.add_argument("--work", default=os.path.join(REPO, "build", "it"))
    ap.add_argument("-k", dest="filter", default=None, help="run only tests whose name contains this")
    ap.add_argument("-v", dest="verbose", action="store_true", help="every problem, commands, stderr")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="per-run timeout in seconds before scaling (default 120)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    a = ap.parse_args(argv)

    binary = os.path.abspath(a.binary)
    scale_env = os.environ.get("ZCD_TEST_TIMEOUT_SCALE")
    if scale_env:
        scale = float(scale_env)
    else:
        scale = 3.0 if looks_like_asan(binary) else 1.0
    ctx = Ctx(binary, os.path.abspath(a.work), a.timeout, scale, a.verbose)

    tests = [("oracle_selftest", lambda: Outcome("oracle_selftest", zcdgen.selftest(REPO), 0.0))]
    tests.append(("help", lambda: test_help(ctx)))
    for case in CONFIG_ERRORS:
        tests.append((f"config_error/{case[0]}", lambda c=case: test_config_error(ctx, c)))
    for name in zcdgen.SCENARIOS:
        if name == "demo":
            continue
        tests.append((name, lambda n=name: test_scenario(ctx, n)))
    tests.append(("demo", lambda: test_demo(ctx)))
    tests.append(("ring_scribble", lambda: faults_test.test_ring_scribble(ctx, sys.modules[__name__])))
    tests.append(("guest_reboot", lambda: faults_test.test_guest_reboot(ctx, sys.modules[__name__])))
    tests.append(("guest_dies", lambda: faults_test.test_guest_dies(ctx, sys.modules[__name__])))
    tests.append(("pool_exhaustion", lambda: faults_test.test_pool_exhaustion(
        ctx, sys.modules[__name__])))
    tests.append(("two_lcores", lambda: scaleout_test.test_two_lcores(
        ctx, sys.modules[__name__], "two_lcores", None)))
    tests.append(("two_lcores_iommu", lambda: scaleout_test.test_two_lcores(
        ctx, sys.modules[__name__], "two_lcores_iommu", {"backend": "sim", "mode": "deferred"})))
    tests.append(("duration", lambda: _sig_or_duration(ctx, "duration", "duration")))
    tests.append(("signal_sigint", lambda: _sig_or_duration(ctx, "signal_sigint", "sigint")))
    tests.append(("telemetry", lambda: test_telemetry(ctx)))
    tests.append(("install", lambda: test_install(ctx)))
    tests.append(("fault_injection", lambda: test_fault_injection(ctx)))
    tests.append(("reload", lambda: reload_test.test_reload(ctx, sys.modules[__name__], "reload", 1)))
    tests.append(("reload_two_lcores", lambda: reload_test.test_reload(
        ctx, sys.modules[__name__], "reload_two_lcores", 2)))
    tests.append(("credits", lambda: reload_test.test_credits(ctx, sys.modules[__name__])))
    tests.append(("restart_kill9", lambda: restart_test.test_restart(
        ctx, sys.modules[__name__], "restart_kill9", False)))
    tests.append(("standby_takeover", lambda: restart_test.test_restart(
        ctx, sys.modules[__name__], "standby_takeover", True)))
    tests.append(("guest_killed", lambda: restart_test.test_guest_killed(
        ctx, sys.modules[__name__], "guest_killed")))
    tests.append(("state_no_space", lambda: restart_test.test_no_space(
        ctx, sys.modules[__name__], "state_no_space")))
    tests.append(("af_packet_vlans", lambda: test_af_packet(ctx, "af_packet_vlans", "vlans")))
    tests.append(("af_packet_unicast", lambda: test_af_packet(ctx, "af_packet_unicast", "unicast")))
    tests.append(("memif", lambda: tools_test.test_memif(ctx, sys.modules[__name__])))
    tests.append(("bench", lambda: tools_test.test_bench(ctx, sys.modules[__name__])))
    tests.append(("testpmd", lambda: tools_test.test_testpmd(ctx, sys.modules[__name__])))
    tests.append(("pktgen_vms", lambda: test_pktgen_vms(ctx)))
    tests.append(("pktgen_script", lambda: test_pktgen_script(ctx)))
    tests.append(("pktgen_kernel", lambda: test_pktgen_kernel(ctx)))
    tests.append(("testpmd_txonly", lambda: test_testpmd_txonly(ctx)))
    if a.filter:
        tests = [t for t in tests if a.filter in t[0]]
    if a.list:
        print("\n".join(n for n, _ in tests))
        return 0
    if not tests:
        print(f"run.py: no test matches -k {a.filter!r}")
        return 2
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"run.py: {binary} is not an executable (build it with `make`)")
        return 2

    os.makedirs(ctx.work, exist_ok=True)
    print(f"zcdemux integration tests: {binary}, work {ctx.work}, timeout {ctx.timeout:.0f}s per run")
    t0 = time.monotonic()
    failed = []
    width = max(len(n) for n, _ in tests)
    for name, fn in tests:
        try:
            out = fn()
        except Exception as ex:  # a bug in the runner or oracle: report, keep going
            import traceback
            out = Outcome(name, [f"runner error: {ex!r}\n{traceback.format_exc()}"], 0.0)
        status = "PASS" if not out.problems else "FAIL"
        print(f"{status}  {name:<{width}}  {out.elapsed:5.1f}s  {out.note}", flush=True)
        if out.problems:
            failed.append(name)
            shown = out.problems if ctx.verbose else out.problems[:ctx.max_problems]
            for p in shown:
                print("    - " + p)
            if len(shown) < len(out.problems):
                print(f"    ... and {len(out.problems) - len(shown)} more (-v shows all)")
            wd = os.path.join(ctx.work, name)
            if os.path.isdir(wd):
                print(f"    work dir: {wd} (command.txt, daemon.stderr, expected/frames.txt)")
        if ctx.verbose and os.path.exists(os.path.join(ctx.work, name, "daemon.stderr")):
            err = _read(os.path.join(ctx.work, name, "daemon.stderr"))
            if err.strip():
                print("    stderr:\n" + tail(err, 30))
    total = time.monotonic() - t0
    print(f"\n{len(tests) - len(failed)} passed, {len(failed)} failed, {total:.1f}s"
          + (": " + " ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
