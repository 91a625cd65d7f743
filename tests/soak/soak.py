#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Soak: sustained traffic while guests come and go; nothing may grow.

    python3 tests/soak/soak.py --build build [--seconds 600] [--rate 100000] [--no-memory-check]

zcd-gen (its own process, memif client) sends frames round robin to five
sim VMs of zcdemux (memif server) at a fixed rate for --seconds:
  vm1  an ordinary guest, whose credits a reload halves and restores;
  vm2  a guest that leaves every 20000 frames and is replaced (reboot_every);
  vm3  likewise every 33333 frames;
  vm4  a hostile guest (each return also duplicated, stale and forged);
  vm5  added and removed by a reload (SIGHUP) every 20 s.
zcdemux keeps its ledger and counters in a state file (--state).

Every 10 s it samples zcdemux's resident memory, open file descriptors and
stats JSON.  At the end zcdemux is stopped (SIGINT, before the generator)
and the run passes when:
  * zcdemux exits with status 0 (so the pool was whole and the ledger clean)
    and no sanitizer wrote a report;
  * every frame the port took is accounted for: delivered to its VM (vm5's
    removed incarnations included), or counted as dropped (no credit, VM
    between guests, or classified away, vm5's frames while it is absent);
  * every reload was applied;
  * vm2 and vm3 had new guests many times, vm4's bad returns were all
    rejected (three per frame it got);
  * with the memory check (not under ASan, whose quarantine grows by
    design): resident memory at the end is within 4 MiB of the first sample
    after a minute's warm-up, and the descriptor count is the same at every
    sample taken with vm5 configured, and at every one without.
Prints one line per sample and a verdict; exit status 0 on PASS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE_S = 10
WARMUP_SAMPLES = 6  # memory is compared from the first sample after a minute
RSS_SLACK_KIB = 4096
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
RELOAD_S = 20
VMS = [("vm1", {}), ("vm2", {"reboot_every": 20000}), ("vm3", {"reboot_every": 33333}),
       ("vm4", {"hostile": True}), ("vm5", {})]


def log(msg: str) -> None:
    print(f"soak: {msg}", flush=True)


def eal(lcore: int, prefix: str) -> list:
    return ["--no-huge", "-m", "1024", "--no-pci", "-l", str(lcore), "--file-prefix", prefix,
            "--log-level=lib.eal:warning", "--no-telemetry"]


def write_config(path: str, sock: str, reloaded: bool = False) -> None:
    """The configuration with every VM; reloaded: without vm5, vm1 at half credits.
    Written whole, then renamed into place, as an operator's tool would."""
    with open(path + ".new", "w") as fh:
        fh.write(f'ports:\n  - {{name: uplink, devargs: "net_memif0,role=server,socket={sock},'
                 'socket-abstract=no"}\n'
                 "hypervisor: {backend: sim}\n"
                 "dataplane: {buffers: 4096}\n"
                 "vms:\n")
        for k, (name, sim) in enumerate(VMS):
            if reloaded and name == "vm5":
                continue
            credits = 256 if reloaded and name == "vm1" else 512
            opts = ", ".join(f"{key}: {str(v).lower()}" for key, v in sim.items())
            fh.write(f'  - {{name: {name}, macs: ["02:00:00:00:00:0{k + 1}"], '
                     f"credits: {credits}, sim: {{{opts}}}}}\n")
    os.replace(path + ".new", path)


def wait_text(path: str, p: subprocess.Popen, text: str, timeout: float) -> None:
    """Until the log file at path holds text (the process is still running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        with open(path, errors="replace") as fh:
            if text in fh.read():
                return
        time.sleep(0.2)
    with open(path, errors="replace") as fh:
        raise RuntimeError(f"did not see {text!r}: {fh.read()[-2000:]}")


def open_descriptors(pid: int) -> list:
    fds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass  # closed meanwhile
    return fds


def sample(pid: int, stats_path: str) -> dict:
    with open(f"/proc/{pid}/status") as fh:
        rss = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:"))
    # A guest being replaced holds a few descriptors for a few milliseconds
    # (its files, while the process starts): of two looks 100 ms apart the
    # smaller is the steady count.  A leak stays in both.
    fds = open_descriptors(pid)
    time.sleep(0.1)
    fds = min(fds, open_descriptors(pid), key=len)
    try:
        with open(stats_path) as fh:
            st = json.load(fh)
    except (OSError, ValueError):
        st = {}
    return {"rss_kib": rss, "fds": len(fds), "fd_kinds": fd_kinds(fds), "stats": st}


def fd_kinds(targets: list) -> dict:
    """How many descriptors of each kind: sockets, eventfds and files by name."""
    kinds = {}
    for t in targets:
        kind = re.sub(r"\[\d+\]$", "", t) if t.startswith(("socket:", "pipe:")) else t
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def check(st: dict, taken: int, out: str, rc: int, samples: list, memory: bool,
          reloads: int) -> list:
    probs = []
    if rc != 0:
        probs.append(f"zcdemux exit status {rc}: {out[-1500:]}")
    probs += [f"sanitizer report: {out[out.find(m):][:1500]}" for m in SANITIZER_MARKERS if m in out][:1]
    vms = {v["name"]: v for v in st.get("vms", [])}
    port_rx = st.get("ports", [{}])[0].get("rx_packets", -1)
    if port_rx != taken:
        probs.append(f"the port received {port_rx} frames, the generator's port took {taken}")
    removed = st.get("removed_vms", {})
    accounted = sum(v["rx_packets"] + v["dropped_no_credit"] + v["dropped_disconnected"]
                    for v in list(vms.values()) + [removed]) + sum(st.get("drops", {}).values())
    if accounted != port_rx:
        probs.append(f"{accounted} frames delivered or dropped, {port_rx} received")
    for name, sim in VMS:
        every = sim.get("reboot_every")
        vm = vms.get(name, {})
        # A guest reads at most its share before it leaves; allow for frames
        # that arrived while it was away.
        if every and vm.get("connects", 0) < 1 + vm.get("rx_packets", 0) // (2 * every):
            probs.append(f"{name}: {vm.get('connects')} guests for {vm.get('rx_packets')} frames "
                         f"(a new one every {every})")
    if st.get("reloads") != {"applied": reloads, "rejected": 0}:
        probs.append(f"reloads {st.get('reloads')}, expected {reloads} applied")
    if removed.get("count", 0) < reloads // 2:
        probs.append(f"vm5 removed {removed.get('count')} times in {reloads} reloads")
    vm4 = vms.get("vm4", {})
    if vm4.get("bad_returns") != 3 * vm4.get("rx_packets", -1):
        probs.append(f"vm4: {vm4.get('bad_returns')} bad returns for {vm4.get('rx_packets')} frames")
    pool = st.get("pool", {})
    if pool.get("free") != pool.get("pages"):
        probs.append(f"pool: {pool.get('free')} of {pool.get('pages')} pages free at exit")
    if memory and len(samples) > WARMUP_SAMPLES:
        base, last = samples[WARMUP_SAMPLES], samples[-1]
        if last["rss_kib"] - base["rss_kib"] > RSS_SLACK_KIB:
            probs.append(f"resident memory grew from {base['rss_kib']} to {last['rss_kib']} KiB")
        # vm5's guest has a descriptor of its own while it is configured.
        by_vm5 = {}
        for smp in samples:
            by_vm5.setdefault(smp["vm5"], {}).setdefault(smp["fds"], []).append(smp)
        for vm5, by_count in by_vm5.items():
            if len(by_count) == 1:
                continue
            usual = max(by_count, key=lambda n: len(by_count[n]))
            probs.append(f"open descriptors changed with vm5 {'configured' if vm5 else 'absent'}: "
                         f"{ {n: len(smps) for n, smps in by_count.items()} } (count: samples)")
            # Which kinds of descriptor came or went, to tell a leak from a
            # connection that was briefly down.
            base = by_count[usual][0]["fd_kinds"]
            for n, smps in by_count.items():
                if n == usual:
                    continue
                for smp in smps:
                    diff = {k: smp["fd_kinds"].get(k, 0) - base.get(k, 0)
                            for k in set(base) | set(smp["fd_kinds"])
                            if smp["fd_kinds"].get(k, 0) != base.get(k, 0)}
                    probs.append(f"  at t={smp['t']} s: {n} descriptors, {diff} against "
                                 f"{usual}")
    elif memory:
        probs.append("too short for the memory check (at least 70 s)")
    return probs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="directory with zcdemux and zcd-gen")
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--rate", type=int, default=100000, help="frames per second offered")
    ap.add_argument("--no-memory-check", dest="memory", action="store_false",
                    help="skip the memory and descriptor check (sanitizer builds, valgrind)")
    ap.add_argument("--valgrind", action="store_true",
                    help="run zcdemux under valgrind's memcheck: any error or leak fails")
    a = ap.parse_args(argv)
    build = os.path.abspath(a.build)
    ncpu = os.cpu_count() or 1
    scratch = tempfile.mkdtemp(prefix="zcd-soak-")
    sock, config = os.path.join(scratch, "memif.sock"), os.path.join(scratch, "soak.yaml")
    gen_config = os.path.join(scratch, "gen.yaml")  # every VM, always
    stats, state = os.path.join(scratch, "stats.json"), os.path.join(scratch, "state")
    write_config(config, sock)
    write_config(gen_config, sock)

    wrapper = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
               "--quiet", f"--suppressions={os.path.join(HERE, 'dpdk.supp')}"] if a.valgrind else []
    # Its output goes to a file: a pipe nobody reads would fill up and stop
    # the daemon at its next log line.
    dut_log_path = os.path.join(scratch, "zcdemux.log")
    dut_log = open(dut_log_path, "w")
    dut = subprocess.Popen(wrapper + [os.path.join(build, "zcdemux")] + eal(ncpu - 1, "zcd-soak-dut") +
                           ["--", "--config", config, "--stats-json", stats,
                            "--stats-interval", str(SAMPLE_S), "--state", state],
                           stdin=subprocess.DEVNULL, stdout=dut_log, stderr=subprocess.STDOUT)
    wait_text(dut_log_path, dut, "zcdemux: running:", 600 if a.valgrind else 60)
    gen = subprocess.Popen([os.path.join(build, "zcd-gen")] + eal(0, "zcd-soak-gen") +
                           ["--vdev", f"net_memif0,role=client,socket={sock},socket-abstract=no,rsize=14",
                            "--", "--config", gen_config, "--size", "imix", "--rate", str(a.rate),
                            "--time", str(a.seconds), "--hold"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    log(f"{a.seconds} s at {a.rate} frames/s, zcdemux pid {dut.pid}, scratch {scratch}")
    samples, reloads = [], 0
    end = time.monotonic() + a.seconds
    while time.monotonic() < end and dut.poll() is None and gen.poll() is None:
        time.sleep(min(SAMPLE_S, max(0.0, end - time.monotonic())))
        if dut.poll() is not None:
            break
        s = sample(dut.pid, stats)
        s["vm5"] = reloads % 2 == 0  # the last reload was 10 s ago or more
        s["t"] = (len(samples) + 1) * SAMPLE_S
        samples.append(s)
        if len(samples) * SAMPLE_S % RELOAD_S == 0 and time.monotonic() < end - 1:
            reloads += 1
            write_config(config, sock, reloaded=reloads % 2 == 1)
            dut.send_signal(signal.SIGHUP)
        vms = s["stats"].get("vms", [])
        log(f"t={len(samples) * SAMPLE_S:4d}s rss {s['rss_kib']} KiB fds {s['fds']} "
            f"rx {s['stats'].get('ports', [{}])[0].get('rx_packets')} "
            f"guests {[v.get('connects') for v in vms]} "
            f"pool free {s['stats'].get('pool', {}).get('free')}")
    line = gen.stdout.readline()  # printed once sending ends
    report = json.loads(line) if line.startswith("{") else {}
    time.sleep(1)  # the last frames reach the VMs
    dut.send_signal(signal.SIGINT)
    try:
        dut.wait(timeout=60)
    except subprocess.TimeoutExpired:
        dut.kill()
        dut.wait()
    dut_log.close()
    with open(dut_log_path, errors="replace") as fh:
        out = fh.read()
    try:
        gen_err = gen.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        gen.kill()
        gen_err = gen.communicate()[1]
    with open(os.path.join(scratch, "zcd-gen.log"), "w") as fh:
        fh.write(json.dumps(report) + "\n" + gen_err)
    try:
        with open(stats) as fh:
            st = json.load(fh)
    except (OSError, ValueError) as ex:
        st = {}
        out += f"\n[soak: no stats JSON: {ex}]"
    taken = report.get("sent", 0) + report.get("warmup_sent", 0)
    probs = check(st, taken, out, dut.returncode, samples, a.memory, reloads)
    vms = {v["name"]: v for v in st.get("vms", [])}
    log(f"generator took {taken} frames; zcdemux delivered "
        f"{sum(v['rx_packets'] for v in vms.values())}; guests "
        f"{[v.get('connects') for v in vms.values()]}; reclaimed "
        f"{[v.get('reclaimed') for v in vms.values()]}; vm4 bad returns "
        f"{vms.get('vm4', {}).get('bad_returns')}")
    if samples:
        log(f"rss {samples[0]['rss_kib']} -> {samples[-1]['rss_kib']} KiB, "
            f"fds {samples[0]['fds']} -> {samples[-1]['fds']}")
    for p in probs:
        log(f"FAIL: {p}")
    if probs:
        log(f"zcdemux's and zcd-gen's output: {scratch}/zcdemux.log, {scratch}/zcd-gen.log")
    log("PASS" if not probs else "FAIL")
    return 0 if not probs else 1


if __name__ == "__main__":
    sys.exit(main())
