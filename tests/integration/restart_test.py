# SPDX-License-Identifier: BSD-3-Clause
"""Integration tests of processes killed mid-stream, run by run.py (as root:
frames come over a veth pair in a private network namespace, read by
net_af_packet, at a bounded rate, so that the kill lands mid-stream).

  restart_kill9     4000 frames round robin to three VMs: vm1 returns every
                    buffer at once, vm2's guest keeps its last 16, vm3's
                    never returns any (32 credits).  Half way, zcdemux is
                    killed with SIGKILL and a new one started on the same
                    --state file (with its own sinks).  The guests, processes
                    of their own, run on; the new one takes them over.  It
                    must say the old one stopped without cleaning up, and:
                      * every frame either zcdemux received is delivered once
                        or counted: port rx == delivered + dropped (credits,
                        classification) + lost_in_restart, over both runs;
                      * the guests' sinks, the first run's then the second's,
                        hold each VM's frames in order, none twice, byte for
                        byte as sent;
                      * what vm2 and vm3 held when the first one died stays
                        theirs (state.kept, logged per VM), nothing is taken
                        back at the restart, and every return made after it
                        matches (no bad returns); vm3 has every remapped
                        buffer taken back at the end, over both runs;
                      * the pool is whole at the end and the exit status 0.
  standby_takeover  the same, with the second zcdemux started at the
                    beginning with --standby: it waits on the lock and takes
                    over when the first is killed.  Its state file (and the
                    pool's and guests' files beside it) is on a hugetlbfs
                    mount of its own, with huge pages reserved for it (given
                    back afterwards).  The note says how long the takeover
                    took (kill to "running"), not checked.
  guest_killed      the same traffic and VMs, no state file; half way,
                    vm2's guest process is killed with SIGKILL while it holds
                    its last 16 buffers.  zcdemux must say so, take back what
                    it held, start a new guest for vm2 and carry on: every
                    frame received is delivered or counted, each VM's sink
                    holds its frames in order, none twice, byte for byte
                    (vm2's lacks what the killed guest had not written out
                    yet); vm1's and vm3's guests are the ones they started
                    with and their sinks hold every frame delivered to them;
                    the pool is whole at the end and the exit status 0.
  state_no_space    --state on a 64 KiB tmpfs, too small for the file:
                    zcdemux stops before anything starts (exit status 1),
                    saying so, rather than die of SIGBUS later.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import time

import zcdgen

FRAMES = 4000
RATE = 2000
MACS = {"vm1": "02:00:00:00:01:01", "vm2": "02:00:00:00:02:01", "vm3": "02:00:00:00:03:01"}
ORDER = ["vm1", "vm2", "vm3"]
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
# 2 MiB pages: 1 for the state file, 8 for the pool's 4096 buffers, 2 for each
# of the three guests' files (the part only zcdemux writes, and the guest's),
# and some to spare.
STATE_HUGEPAGES = 18


@contextlib.contextmanager
def _state_file(wd: str, name: str, on_hugetlbfs: bool):
    """The path of a state file that does not exist yet: on tmpfs, or on a
    hugetlbfs mount of its own with huge pages reserved for it.  The file,
    the mount and the reservation are gone afterwards."""
    if not on_hugetlbfs:
        path = f"/dev/shm/zcd-it-{name}-{os.getpid()}.state"
        if os.path.exists(path):
            os.unlink(path)
        try:
            yield path
        finally:
            if os.path.exists(path):
                os.unlink(path)
        return
    mount = os.path.join(wd, "hugetlbfs")
    with open(NR_HUGEPAGES) as fh:
        before = int(fh.read())
    with open(NR_HUGEPAGES, "w") as fh:
        fh.write(str(before + STATE_HUGEPAGES))
    try:
        os.makedirs(mount, exist_ok=True)
        subprocess.run(["mount", "-t", "hugetlbfs", "nodev", mount], check=True,
                       capture_output=True)
        try:
            yield os.path.join(mount, "state")
        finally:
            subprocess.run(["umount", mount], check=True, capture_output=True)
    finally:
        with open(NR_HUGEPAGES, "w") as fh:
            fh.write(str(before))


def _config(port: str, sinks: dict) -> str:
    lines = ["ports:", "  - name: uplink", f"    devargs: \"{port}\"",
             "hypervisor:", "  backend: sim", "dataplane:", "  buffers: 4096", "vms:"]
    guest = {"vm1": [], "vm2": ["      hold: 16"], "vm3": ["      stall: true"]}
    for name in ORDER:
        lines += [f"  - name: {name}", f"    macs: [\"{MACS[name]}\"]",
                  f"    credits: {32 if name == 'vm3' else 64}", "    sim:",
                  f"      sink: \"{sinks[name]}\""] + guest[name]
    return "\n".join(lines) + "\n"


def _records(path: str) -> list:
    """A sink's whole records; one written by a killed zcdemux may end in
    the middle of a record, which is left out."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as fh:
        raw = fh.read()
    end = 24
    while end + 16 <= len(raw):
        caplen = struct.unpack_from("<I", raw, end + 8)[0]
        if end + 16 + caplen > len(raw):
            break
        end += 16 + caplen
    return zcdgen.parse_pcap(raw[:end]).records if end >= 24 else []


def _traffic(wd: str, name: str) -> tuple:
    """FRAMES frames round robin to the VMs, of varied sizes, and the pcap
    in wd that holds them."""
    frames = [zcdgen.build_frame(name, seq, zcdgen.parse_mac(MACS[ORDER[seq % 3]]),
                                 64 + (seq * 37) % 1400) for seq in range(FRAMES)]
    traffic = os.path.join(wd, "traffic.pcap")
    zcdgen.write_pcap(traffic, frames)
    return frames, traffic


def _stopped(run, name: str, probs: list, res, stats: str, elapsed: float) -> tuple:
    """(None, its stats) for a zcdemux that ran and exited cleanly, else
    (the Outcome saying what went wrong, None).  probs gains its sanitizer
    reports."""
    if res is None or probs:
        return run.Outcome(name, probs, elapsed), None
    probs += run.sanitizer_problems(res)
    if res.timed_out or res.rc != 0:
        return run.Outcome(name, probs + [f"exit status {res.rc}; stderr tail:\n"
                                          f"{run.tail(res.stderr)}"], elapsed), None
    try:
        with open(stats) as fh:
            return None, json.load(fh)
    except (OSError, ValueError) as ex:
        return run.Outcome(name, probs + [f"stats JSON: {ex}"], elapsed), None


def test_restart(ctx, run, name: str, standby: bool) -> "run.Outcome":
    if os.geteuid() != 0:
        return run.Outcome(name, [], 0.0, "SKIPPED: needs root for a network namespace")
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    frames, traffic = _traffic(wd, name)
    port = "net_af_packet0,iface=zcdb,framecnt=4096"
    runs = {}
    for r in ("a", "b"):
        d = run.fresh_dir(os.path.join(wd, r))
        sinks = {v: os.path.join(d, f"{v}.pcap") for v in ORDER}
        config = os.path.join(d, "zcdemux.yaml")
        with open(config, "w") as fh:
            fh.write(_config(port, sinks))
        runs[r] = {"dir": d, "sinks": sinks, "config": config}

    probs, res, takeover = [], None, None
    t0 = time.monotonic()
    try:
        with _state_file(wd, name, standby) as state, run._VethNs(name) as net:
            a = run._NsDaemon(ctx, f"{name}-a", runs["a"]["dir"], net, runs["a"]["config"])
            b = run._NsDaemon(ctx, f"{name}-b", runs["b"]["dir"], net, runs["b"]["config"])
            a.argv += ["--state", state]
            b.argv += ["--state", state] + (["--standby"] if standby else [])
            b_err = os.path.join(runs["b"]["dir"], "daemon.stderr")
            try:
                err = a.start()
                if not err and standby:
                    err = b.start("standby: waiting to take over")
                if err:
                    probs.append(err)
                else:
                    replay = subprocess.Popen(
                        net.cmd([run.REPLAY, "--rate", str(RATE), "zcda", traffic]),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    time.sleep(FRAMES / RATE / 2)
                    a.proc.send_signal(signal.SIGKILL)
                    killed = time.monotonic()
                    a.proc.wait()
                    if not standby:
                        err = b.start()
                    elif not run.wait_for_text(b_err, "running:", b.proc, ctx.timeout / 2):
                        err = f"the standby did not take over:\n{run.tail(run._read(b_err))}"
                    takeover = time.monotonic() - killed
                    if err:
                        probs.append(err)
                    _, errout = replay.communicate(timeout=ctx.timeout)
                    if replay.returncode != 0:
                        probs.append(f"zcd-replay failed: {errout.strip()}")
                    b.wait_quiet(ctx.timeout / 2)
            finally:
                a.stop()
                res = b.stop()
    except subprocess.CalledProcessError as ex:
        err = ex.stderr.decode(errors="replace") if isinstance(ex.stderr, bytes) else ex.stderr
        probs.append(f"{' '.join(map(str, ex.cmd))}: status {ex.returncode}: {err}")
    elapsed = time.monotonic() - t0
    failed, st = _stopped(run, name, probs, res, b.stats, elapsed)
    if failed:
        return failed

    s = st["state"]
    if not (s["run"] == 2 and s["previous"] == "unclean" and s["restarts"] == 1
            and s["unclean"] == 1):
        probs.append(f"state: {s}, expected run 2 after an unclean stop")
    if f"after pid {a.proc.pid} stopped without cleaning up" not in res.stderr:
        probs.append(f"no 'after pid {a.proc.pid} stopped without cleaning up' line:\n"
                     f"{run.tail(res.stderr)}")

    vms = {v["name"]: v for v in st["vms"]}
    delivered = sum(v["rx_packets"] for v in vms.values())
    dropped = sum(v["dropped_no_credit"] + v["dropped_disconnected"] for v in vms.values()) + \
        sum(st["drops"].values())
    rx = st["ports"][0]["rx_packets"]
    if rx != delivered + dropped + s["lost_in_restart"]:
        probs.append(f"port rx {rx} != delivered {delivered} + dropped {dropped} + lost in "
                     f"restart {s['lost_in_restart']}")
    if not 0 < rx <= FRAMES:
        probs.append(f"port rx {rx} of {FRAMES} sent")

    sink_probs, held = _sink_problems(run, frames, {v: [runs[r]["sinks"][v] for r in ("a", "b")]
                                                   for v in ORDER})
    probs += sink_probs
    for v in ORDER:
        if held[v] > vms[v]["rx_packets"]:
            probs.append(f"{v}: {held[v]} frames in its sinks, {vms[v]['rx_packets']} delivered")
    seen = sum(held.values())
    vm3 = vms["vm3"]
    if vm3["reclaimed"] != vm3["remapped"] or vm3["returned"] != 0:
        probs.append(f"vm3 (never returns): reclaimed {vm3['reclaimed']}, remapped "
                     f"{vm3['remapped']}, returned {vm3['returned']}")
    if s["kept"] == 0 or s["taken_back"] != 0:
        probs.append(f"state: kept {s['kept']}, taken back {s['taken_back']}: vm2 and vm3 held "
                     f"buffers at the kill and their guests ran on: all kept, none taken back")
    for v in ("vm2", "vm3"):
        if f"zcdemux: {v}: its guest ran on: " not in res.stderr:
            probs.append(f"no '{v}: its guest ran on: ...' line")
    bad = sum(v["bad_returns"] for v in vms.values())
    if bad != 0:
        probs.append(f"{bad} bad returns: every return after the restart should match")
    if "stopping the simulated guest" in res.stderr:
        probs.append("the new zcdemux stopped a guest instead of taking it over")
    probs += run.check_pool(st)
    note = (f"rx {rx} of {FRAMES}; {s['lost_in_restart']} lost in flight, {s['kept']} "
            f"kept by guests that ran on; {seen} frames in sinks; state file on "
            f"{'hugetlbfs' if standby else 'tmpfs'}")
    if takeover is not None:
        note += f"; up again {takeover:.2f} s after the kill"
    return run.Outcome(name, probs, elapsed, note)


def _guest_pid(vm: str) -> int:
    """The pid of the simulated guest of VM vm (its VM file, a memfd named
    after the VM, is its fd 3), or 0."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/fd/3").startswith(f"/memfd:zcdemux-sim-{vm} "):
                return int(pid)
        except OSError:
            pass
    return 0


def _sink_problems(run, frames: list, sinks: dict) -> tuple:
    """What is wrong with the VMs' sinks (their frames in order, none twice,
    byte for byte), and how many frames each holds."""
    probs, held = [], {}
    by_seq = dict(enumerate(frames))
    for v in ORDER:
        recs = []
        for path in sinks[v]:
            recs += _records(path)
        seqs = [zcdgen.seq_from_frame(rec[4]) for rec in recs]
        held[v] = len(seqs)
        if any(sq is None or by_seq.get(sq) != rec[4] for sq, rec in zip(seqs, recs)):
            probs.append(f"{v}: a frame in its sinks differs from every frame sent")
        order = run.in_order_problem(seqs, [sq for sq in range(len(frames)) if ORDER[sq % 3] == v])
        if order:
            probs.append(f"{v}'s sinks: {order}")
    return probs, held


def test_guest_killed(ctx, run, name: str) -> "run.Outcome":
    if os.geteuid() != 0:
        return run.Outcome(name, [], 0.0, "SKIPPED: needs root for a network namespace")
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    frames, traffic = _traffic(wd, name)
    sinks = {v: os.path.join(wd, f"{v}.pcap") for v in ORDER}
    config = os.path.join(wd, "zcdemux.yaml")
    with open(config, "w") as fh:
        fh.write(_config("net_af_packet0,iface=zcdb,framecnt=4096", sinks))
    probs, res, killed = [], None, 0
    t0 = time.monotonic()
    with run._VethNs(name) as net:
        d = run._NsDaemon(ctx, name, wd, net, config)
        try:
            err = d.start()
            if err:
                probs.append(err)
            else:
                others = {v: _guest_pid(v) for v in ("vm1", "vm3")}
                replay = subprocess.Popen(
                    net.cmd([run.REPLAY, "--rate", str(RATE), "zcda", traffic]),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                time.sleep(FRAMES / RATE / 2)
                killed = _guest_pid("vm2")
                if killed == 0:
                    probs.append("no process has vm2's VM file on fd 3")
                else:
                    os.kill(killed, signal.SIGKILL)
                _, errout = replay.communicate(timeout=ctx.timeout)
                if replay.returncode != 0:
                    probs.append(f"zcd-replay failed: {errout.strip()}")
                d.wait_quiet(ctx.timeout / 2)
                if {v: _guest_pid(v) for v in ("vm1", "vm3")} != others:
                    probs.append(f"vm1's or vm3's guest changed (was {others})")
        finally:
            res = d.stop()
    elapsed = time.monotonic() - t0
    failed, st = _stopped(run, name, probs, res, d.stats, elapsed)
    if failed:
        return failed
    for line in ("zcdemux: vm2: the simulated guest was killed by signal 9",
                 "zcdemux: vm2: guest gone or cut off; taking back "):
        if line not in res.stderr:
            probs.append(f"no '{line}' line:\n{run.tail(res.stderr)}")
    vms = {v["name"]: v for v in st["vms"]}
    delivered = sum(v["rx_packets"] for v in vms.values())
    dropped = sum(v["dropped_no_credit"] + v["dropped_disconnected"] for v in vms.values()) + \
        sum(st["drops"].values())
    rx = st["ports"][0]["rx_packets"]
    if rx != delivered + dropped:
        probs.append(f"port rx {rx} != delivered {delivered} + dropped {dropped}")
    if [vms[v]["connects"] for v in ORDER] != [1, 2, 1]:
        probs.append(f"connects {[vms[v]['connects'] for v in ORDER]}, expected [1, 2, 1]")
    if vms["vm2"]["reclaimed"] == 0:
        probs.append("vm2: nothing taken back, but its guest held buffers when it was killed")
    sink_probs, held = _sink_problems(run, frames, {v: [sinks[v]] for v in ORDER})
    probs += sink_probs
    for v in ("vm1", "vm3"):
        if held[v] != vms[v]["rx_packets"]:
            probs.append(f"{v}: {held[v]} frames in its sink, {vms[v]['rx_packets']} delivered")
    if not 0 < held["vm2"] <= vms["vm2"]["rx_packets"]:
        probs.append(f"vm2: {held['vm2']} frames in its sink, {vms['vm2']['rx_packets']} delivered")
    probs += run.check_pool(st)
    return run.Outcome(name, probs, elapsed,
                       f"rx {rx} of {FRAMES}; vm2's guest (pid {killed}) killed: "
                       f"{vms['vm2']['reclaimed']} taken back, {held['vm2']} of "
                       f"{vms['vm2']['rx_packets']} delivered frames in its sink")


def test_no_space(ctx, run, name: str) -> "run.Outcome":
    if os.geteuid() != 0:
        return run.Outcome(name, [], 0.0, "SKIPPED: needs root to mount a tmpfs")
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    mount = os.path.join(wd, "tmpfs")
    os.makedirs(mount)
    config = os.path.join(wd, "zcdemux.yaml")
    with open(config, "w") as fh:
        fh.write(_config("net_null0", {v: os.path.join(wd, f"{v}.pcap") for v in ORDER}))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount], check=True,
                   capture_output=True)
    try:
        res = run.run_daemon(ctx, run.daemon_argv(ctx, name, config, None,
                                                  ["--state", os.path.join(mount, "state")]), wd)
    finally:
        subprocess.run(["umount", mount], check=True, capture_output=True)
    probs = run.sanitizer_problems(res)
    want = f"zcdemux: {mount}/state: cannot reserve "
    if res.timed_out or res.rc != 1:
        probs.append(f"exit status {res.rc}, expected 1")
    if want not in res.stderr or "No space left on device" not in res.stderr:
        probs.append(f"no \"{want}... No space left on device\" line")
    if "running:" in res.stderr or any(os.path.exists(os.path.join(wd, f"{v}.pcap")) for v in ORDER):
        probs.append("it started before it failed")
    if probs:
        probs.append(f"stderr tail:\n{run.tail(res.stderr)}")
    return run.Outcome(name, probs, res.elapsed, "64 KiB tmpfs: refused at start")
