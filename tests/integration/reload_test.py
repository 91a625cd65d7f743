# SPDX-License-Identifier: BSD-3-Clause
"""Integration test of live reconfiguration, run by run.py (as root: the
frames come over a veth pair in a private network namespace, read by
net_af_packet, at a bounded rate, so that the reloads land mid-stream).

  reload  4000 frames, round robin to five addresses: vm1's, vm2's, vm3's,
          a second MAC that vm3 only gets in the new file, and vm4's, which
          is only in the new file.  About a quarter of the way in, the file
          is replaced by one with an error and /zcdemux/reload is asked to
          apply it: the answer must be "rejected: <file>:<line>: <key>: ...",
          and nothing changes.  Half way, the file is replaced by the new
          configuration (vm2 removed, vm3 with a second MAC, vm4 added) and
          SIGHUP sent.  Then:
            * vm1 and vm3's first MAC were not disturbed: their sinks hold
              every one of their frames, in order, byte for byte;
            * vm3's new MAC and vm4 got a tail of their frames, vm2 a head
              (what its guest read before it was removed);
            * every frame is accounted for: the port's count equals the
              frames delivered (the removed VM's included) plus every drop;
            * vm2's buffers all came back (returned or taken back), the pool
              is whole, the exit status 0;
            * /zcdemux/reload on the unchanged file answers "nothing changed".
  reload_two_lcores  the same with two polling lcores on two RX queues
          (the kernel spreads frames over them by flow): the workers are
          held between bursts while the switch happens.  Frames of one VM
          may then be reordered across the queues, so sinks are compared
          as sets: every frame of vm1 and of vm3's first MAC, some of the
          others, and every count as above.
  credits  3000 frames round robin to three VMs with 64, 32 and 64 credits:
          vm1's guest keeps its last 24 buffers (sim.hold), vm2's never
          returns any (stall).  A third of the way in, SIGHUP applies credits
          of 16, 8 and 16 with credit_timeout_ms 200.  vm1 is asked to give
          back what it holds over 16 and does (no time-out; it keeps
          receiving); vm2 is asked for 24 of its 32, gives nothing, and is cut
          off after 200 ms: its remapped buffers are taken back (copied
          frames are in its own pages), its later frames are dropped.  Two thirds in, /zcdemux/reload of a file raising vm1
          to 128 credits (more than it connected with) is rejected with the
          file, line and key, and SIGHUP raises vm3 back to 64.  Every frame
          is delivered or counted as dropped, in order per VM; the pool is
          whole.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Optional

import zcdgen

FRAMES = 4000
RATE = 2000
MACS = {
    "vm1": "02:00:00:00:01:01",
    "vm2": "02:00:00:00:02:01",
    "vm3": "02:00:00:00:03:01",
    "vm3b": "02:00:00:00:03:02",  # vm3's second MAC, from the reload on
    "vm4": "02:00:00:00:04:01",
}
ORDER = ["vm1", "vm2", "vm3", "vm3b", "vm4"]


def _config(port: str, sinks: dict, vms: list, broken: bool = False) -> str:
    lines = ["ports:", "  - name: uplink", f"    devargs: \"{port}\"",
             "hypervisor:", "  backend: sim", "dataplane:", "  buffers: 4096", "vms:"]
    for name, macs in vms:
        if broken and name == "vm4":
            macs = ["02:00:00:00:04:zz"]
        lines += [f"  - name: {name}", "    macs: [" + ", ".join(f"\"{m}\"" for m in macs) + "]",
                  "    credits: 256", "    sim:", f"      sink: \"{sinks[name]}\""]
    return "\n".join(lines) + "\n"


def _frames() -> list:
    frames = []
    for seq in range(FRAMES):
        dst = zcdgen.parse_mac(MACS[ORDER[seq % len(ORDER)]])
        frames.append(zcdgen.build_frame("reload", seq, dst, 64 + (seq * 37) % 1400))
    return frames


def _sink_seqs(path: str) -> list:
    if not os.path.exists(path):
        return []
    return [zcdgen.seq_from_frame(rec[4]) for rec in zcdgen.read_pcap(path).records]


def _write(path: str, text: str) -> None:
    tmp = path + ".new"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class _Live:
    """zcdemux in a fresh netns reading zcdb with net_af_packet, fed a pcap by
    zcd-replay at RATE; steps [(seconds, fn(live))] run while it sends.  After
    the traffic, settle(stats) (or a quiet second) and at_end(live), then
    SIGINT.  Results in .probs, .res, .stats, .answers."""

    def __init__(self, ctx, run, name: str, wd: str, lcores: int, config: str):
        self.ctx, self.run, self.name, self.wd = ctx, run, name, wd
        self.lcores, self.config = lcores, config
        self.probs, self.res, self.stats, self.answers = [], None, None, {}
        self.daemon, self.tel, self.elapsed = None, None, 0.0

    def reload_by_telemetry(self, key: str) -> None:
        self.answers[key] = self.run.telemetry_query(self.tel, "/zcdemux/reload")

    def sighup(self) -> None:
        self.daemon.proc.send_signal(signal.SIGHUP)

    def current_stats(self) -> Optional[dict]:
        try:
            with open(self.daemon.stats) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def _settle(self, frames: int, settle) -> None:
        end, last, quiet = time.monotonic() + self.ctx.timeout / 2, None, 0
        while time.monotonic() < end and self.daemon.proc.poll() is None:
            st = self.current_stats()
            if st is not None and st["ports"][0]["rx_packets"] >= frames:
                if settle(st) or quiet >= 10:  # or nothing moved for two seconds
                    return
                quiet = quiet + 1 if st == last else 0
                last = st
            time.sleep(0.2)

    def go(self, traffic: str, frames: int, steps: list, settle, at_end=None) -> bool:
        run, t0 = self.run, time.monotonic()
        try:
            with run._VethNs(self.name) as net:
                self.daemon = run._NsDaemon(self.ctx, self.name, self.wd, net, self.config)
                argv = self.daemon.argv
                argv[argv.index("-l") + 1] = f"0-{self.lcores - 1}"
                prefix = argv[argv.index("--file-prefix") + 1]
                self.tel = os.path.join(run._dpdk_runtime_dir(prefix), "dpdk_telemetry.v2")
                try:
                    err = self.daemon.start()
                    if err:
                        self.probs.append(err)
                    else:
                        replay = subprocess.Popen(
                            net.cmd([run.REPLAY, "--rate", str(RATE), "zcda", traffic]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                        started = time.monotonic()
                        for at, fn in steps:
                            time.sleep(max(0.0, started + at - time.monotonic()))
                            fn(self)
                        _, errout = replay.communicate(timeout=self.ctx.timeout)
                        if replay.returncode != 0:
                            self.probs.append(f"zcd-replay failed: {errout.strip()}")
                        self._settle(frames, settle)
                        if at_end is not None:
                            at_end(self)
                finally:
                    self.res = self.daemon.stop()
        except subprocess.CalledProcessError as ex:
            err = ex.stderr.decode(errors="replace") if isinstance(ex.stderr, bytes) else ex.stderr
            self.probs.append(f"{' '.join(map(str, ex.cmd))}: status {ex.returncode}: {err}")
        self.elapsed = time.monotonic() - t0
        if self.res is None or self.probs:
            return False
        self.probs += run.sanitizer_problems(self.res)
        if self.res.timed_out or self.res.rc != 0:
            self.probs.append(f"exit status {self.res.rc}; stderr tail:\n{run.tail(self.res.stderr)}")
            return False
        try:
            with open(self.daemon.stats) as fh:
                self.stats = json.load(fh)
        except (OSError, ValueError) as ex:
            self.probs.append(f"stats JSON: {ex}")
            return False
        return True


def _all_returned(st: dict) -> bool:
    return all(v["returned"] == v["rx_packets"] for v in st["vms"])


def test_reload(ctx, run, name: str, lcores: int) -> "run.Outcome":
    if os.geteuid() != 0:
        return run.Outcome(name, [], 0.0, "SKIPPED: needs root for a network namespace")
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    frames = _frames()
    traffic = os.path.join(wd, "traffic.pcap")
    zcdgen.write_pcap(traffic, frames)
    sinks = {v: os.path.join(wd, f"{v}.pcap") for v in ("vm1", "vm2", "vm3", "vm4")}
    port = f"net_af_packet0,iface=zcdb,framecnt=4096,qpairs={lcores}"
    before = [("vm1", [MACS["vm1"]]), ("vm2", [MACS["vm2"]]), ("vm3", [MACS["vm3"]])]
    after = [("vm1", [MACS["vm1"]]), ("vm3", [MACS["vm3"], MACS["vm3b"]]),
             ("vm4", [MACS["vm4"]])]
    config = os.path.join(wd, "zcdemux.yaml")
    _write(config, _config(port, sinks, before))
    broken_text = _config(port, sinks, after, broken=True)
    broken_line = broken_text.splitlines().index("    macs: [\"02:00:00:00:04:zz\"]") + 1

    def broken(live):
        _write(config, broken_text)
        live.reload_by_telemetry("broken")

    def good(live):
        _write(config, _config(port, sinks, after))
        live.sighup()

    live = _Live(ctx, run, name, wd, lcores, config)
    seconds = FRAMES / RATE
    ok = live.go(traffic, FRAMES, [(seconds / 4, broken), (seconds / 2, good)], _all_returned,
                 lambda lv: lv.reload_by_telemetry("same"))
    probs, res, st, answers, elapsed = live.probs, live.res, live.stats, live.answers, live.elapsed
    if not ok:
        return run.Outcome(name, probs, elapsed)

    want_broken = f"rejected: {config}:{broken_line}: vms[2].macs"
    if not str(answers.get("broken", "")).startswith(want_broken):
        probs.append(f"/zcdemux/reload of the broken file answered {answers.get('broken')!r}, "
                     f"expected {want_broken}...")
    want_same = f"applied: reloaded {config}: nothing changed"
    if answers.get("same") != want_same:
        probs.append(f"/zcdemux/reload of the same file answered {answers.get('same')!r}, "
                     f"expected {want_same!r}")
    want_log = f"reloaded {config}; added vm4; removed vm2; new MACs or VLAN for vm3"
    if want_log not in res.stderr:
        probs.append(f"no line \"{want_log}\" in the log:\n{run.tail(res.stderr)}")

    meant = {k: [s for s in range(FRAMES) if ORDER[s % len(ORDER)] == k] for k in ORDER}
    got = {v: _sink_seqs(p) for v, p in sinks.items()}
    by_seq = {s: f for s, f in enumerate(frames)}
    for v, seqs in got.items():  # byte for byte: each frame is one we sent
        recs = zcdgen.read_pcap(sinks[v]).records if os.path.exists(sinks[v]) else []
        bad = [s for s, rec in zip(seqs, recs) if s is None or by_seq.get(s) != rec[4]]
        if bad:
            probs.append(f"{v}: {len(bad)} frames differ from what was sent (first seq {bad[0]})")
    if lcores > 1:  # order holds per queue only
        got = {v: sorted(seqs) for v, seqs in got.items()}
    vm3_first = [s for s in got["vm3"] if ORDER[s % len(ORDER)] == "vm3"]
    vm3_second = [s for s in got["vm3"] if ORDER[s % len(ORDER)] == "vm3b"]
    head_tail = lcores == 1  # across queues the switch is no single point in the stream
    checks = [
        (got["vm1"] == meant["vm1"], f"vm1: {len(got['vm1'])} of {len(meant['vm1'])} frames, "
                                      "or not in order"),
        (vm3_first == meant["vm3"], f"vm3: {len(vm3_first)} of {len(meant['vm3'])} frames to "
                                     "its first MAC, or not in order"),
        (got["vm3"] == sorted(got["vm3"]), "vm3: frames out of order"),
        (0 < len(vm3_second) < len(meant["vm3b"]) and (
            vm3_second == meant["vm3b"][-len(vm3_second):] if head_tail
            else set(vm3_second) <= set(meant["vm3b"])),
         f"vm3: frames to its new MAC are not a tail of them: {len(vm3_second)}"),
        (0 < len(got["vm4"]) < len(meant["vm4"]) and (
            got["vm4"] == meant["vm4"][-len(got["vm4"]):] if head_tail
            else set(got["vm4"]) <= set(meant["vm4"])),
         f"vm4: its frames are not a tail of them: {len(got['vm4'])}"),
        (0 < len(got["vm2"]) < len(meant["vm2"]) and (
            got["vm2"] == meant["vm2"][:len(got["vm2"])] if head_tail
            else set(got["vm2"]) <= set(meant["vm2"])),
         f"vm2: its frames are not a head of them: {len(got['vm2'])}"),
    ]
    probs += [msg for ok, msg in checks if not ok]

    vms = {v["name"]: v for v in st["vms"]}
    removed = st["removed_vms"]
    if sorted(vms) != ["vm1", "vm3", "vm4"] or any(v["state"] != "serving" for v in vms.values()):
        probs.append(f"stats: VMs {[(v['name'], v['state']) for v in st['vms']]}, expected "
                     "vm1, vm3, vm4 serving")
        return run.Outcome(name, probs, elapsed)
    for v in ("vm1", "vm3", "vm4"):
        if vms[v]["rx_packets"] != len(got[v]) or vms[v]["returned"] != len(got[v]):
            probs.append(f"{v}: rx_packets {vms[v]['rx_packets']}, returned {vms[v]['returned']}, "
                         f"its sink holds {len(got[v])}")
    dropped = sum(st["drops"].values()) + removed["dropped_no_credit"] + \
        removed["dropped_disconnected"] + sum(v["dropped_no_credit"] + v["dropped_disconnected"]
                                              for v in vms.values())
    delivered = sum(v["rx_packets"] for v in vms.values()) + removed["rx_packets"]
    checks = [
        (st["ports"][0]["rx_packets"] == FRAMES,
         f"port received {st['ports'][0]['rx_packets']} of {FRAMES}"),
        (delivered + dropped == FRAMES, f"delivered {delivered} + dropped {dropped} != {FRAMES}"),
        (removed["count"] == 1, f"removed_vms.count {removed['count']}"),
        (removed["rx_packets"] >= len(got["vm2"]),
         f"vm2 delivered {removed['rx_packets']}, its sink holds {len(got['vm2'])}"),
        (removed["returned"] + removed["reclaimed"] == removed["rx_packets"],
         f"vm2: returned {removed['returned']} + taken back {removed['reclaimed']} != "
         f"delivered {removed['rx_packets']}"),
        (st["reloads"] == {"applied": 2, "rejected": 1}, f"reloads {st['reloads']}"),
    ]
    probs += [msg for ok, msg in checks if not ok]
    probs += run.check_pool(st)
    lc = [c["rx_packets"] for c in st["lcores"]]
    if len(lc) != lcores or (lcores > 1 and min(lc) == 0):
        probs.append(f"frames per lcore {lc}: expected {lcores} lcores, each with frames")
    note = (f"lcores {lc}: vm2 read {len(got['vm2'])} before removal, vm3's new MAC {len(vm3_second)}, "
            f"vm4 {len(got['vm4'])}; {st['drops']['unknown_unicast']} to unknown MACs")
    return run.Outcome(name, probs, elapsed, note)


CREDIT_FRAMES = 3000


def _credit_config(port: str, sinks: dict, credits: dict, timeout_ms: int) -> str:
    lines = ["ports:", "  - name: uplink", f"    devargs: \"{port}\"",
             "hypervisor:", "  backend: sim", "dataplane:", "  buffers: 4096",
             f"  credit_timeout_ms: {timeout_ms}", "vms:"]
    guest = {"vm1": "      hold: 24", "vm2": "      stall: true", "vm3": None}
    for name in ("vm1", "vm2", "vm3"):
        lines += [f"  - name: {name}", f"    macs: [\"{MACS[name]}\"]",
                  f"    credits: {credits[name]}", "    sim:", f"      sink: \"{sinks[name]}\""]
        if guest[name]:
            lines.append(guest[name])
    return "\n".join(lines) + "\n"


def test_credits(ctx, run) -> "run.Outcome":
    name = "credits"
    if os.geteuid() != 0:
        return run.Outcome(name, [], 0.0, "SKIPPED: needs root for a network namespace")
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    order = ["vm1", "vm2", "vm3"]
    frames = [zcdgen.build_frame("credits", seq, zcdgen.parse_mac(MACS[order[seq % 3]]),
                                 64 + (seq * 37) % 1400) for seq in range(CREDIT_FRAMES)]
    traffic = os.path.join(wd, "traffic.pcap")
    zcdgen.write_pcap(traffic, frames)
    sinks = {v: os.path.join(wd, f"{v}.pcap") for v in order}
    port = "net_af_packet0,iface=zcdb,framecnt=4096"
    config = os.path.join(wd, "zcdemux.yaml")
    _write(config, _credit_config(port, sinks, {"vm1": 64, "vm2": 32, "vm3": 64}, 1000))
    too_many = _credit_config(port, sinks, {"vm1": 128, "vm2": 8, "vm3": 64}, 200)
    too_many_line = too_many.splitlines().index("  - name: vm1") + 1

    def cut(live):
        _write(config, _credit_config(port, sinks, {"vm1": 16, "vm2": 8, "vm3": 16}, 200))
        live.sighup()

    def over_cap(live):
        _write(config, too_many)
        live.reload_by_telemetry("over_cap")

    def raise_vm3(live):
        _write(config, _credit_config(port, sinks, {"vm1": 16, "vm2": 8, "vm3": 64}, 200))
        live.sighup()

    seconds = CREDIT_FRAMES / RATE
    live = _Live(ctx, run, name, wd, 1, config)
    ok = live.go(traffic, CREDIT_FRAMES,
                 [(seconds / 3, cut), (seconds * 2 / 3, over_cap), (seconds * 2 / 3 + 0.1, raise_vm3)],
                 lambda st: False)
    probs, res, st = live.probs, live.res, live.stats
    if not ok:
        return run.Outcome(name, probs, live.elapsed)

    want = (f"rejected: {config}:{too_many_line}: vms[0].credits: 128 is more than the 64 vm1 "
            "was connected with")
    if not str(live.answers.get("over_cap", "")).startswith(want):
        probs.append(f"/zcdemux/reload answered {live.answers.get('over_cap')!r}, expected {want}...")
    vms = {v["name"]: v for v in st["vms"]}
    meant = {v: [s for s in range(CREDIT_FRAMES) if order[s % 3] == v] for v in order}
    got = {v: _sink_seqs(sinks[v]) for v in order}
    for v in order:
        vm = vms[v]
        dropped = vm["dropped_no_credit"] + vm["dropped_disconnected"]
        if vm["rx_packets"] + dropped != len(meant[v]):
            probs.append(f"{v}: delivered {vm['rx_packets']} + dropped {dropped} != "
                         f"{len(meant[v])} frames meant for it")
        # Held at exit: vm1 keeps its last 8 (credits 16 / 2); copies it holds are
        # in its own pages and are not taken back.
        held = {"vm1": 8, "vm2": vm["rx_packets"], "vm3": 0}[v]
        if not 0 <= vm["rx_packets"] - vm["returned"] - vm["reclaimed"] <= held:
            probs.append(f"{v}: returned {vm['returned']} + taken back {vm['reclaimed']} "
                         f"leaves more than {held} of {vm['rx_packets']} unaccounted")
        pos = 0
        for sq in got[v]:  # in order, and only its own
            while pos < len(meant[v]) and meant[v][pos] != sq:
                pos += 1
            if pos == len(meant[v]):
                probs.append(f"{v}: its sink has a frame out of order or not its own")
                break
            pos += 1
    vm1, vm2, vm3 = vms["vm1"], vms["vm2"], vms["vm3"]
    checks = [
        ("vm1: credits cut to 16: asked to give back" in res.stderr,
         "no 'vm1: credits cut to 16: asked to give back' line"),
        (vm1["credit_timeouts"] == 0 and vm1["credits"] == 16,
         f"vm1: credit_timeouts {vm1['credit_timeouts']}, credits {vm1['credits']}"),
        (got["vm1"] and got["vm1"][-1] > CREDIT_FRAMES * 2 // 3,
         "vm1 got nothing in the last third: it should still receive"),
        ("vm2: still 24 buffers over its credits after 200 ms: cut off" in res.stderr,
         "no line saying vm2 was cut off"),
        (f"vm2: guest gone or cut off; taking back {vm2['remapped']} buffers" in res.stderr,
         f"no line saying its {vm2['remapped']} remapped buffers were taken back"),
        (vm2["credit_timeouts"] == 1 and vm2["rx_packets"] == 32
         and vm2["reclaimed"] == vm2["remapped"] and vm2["returned"] == 0,
         f"vm2: credit_timeouts {vm2['credit_timeouts']}, rx_packets {vm2['rx_packets']}, "
         f"reclaimed {vm2['reclaimed']}, returned {vm2['returned']}"),
        (got["vm2"] == meant["vm2"][:32], "vm2's sink is not its first 32 frames"),
        (vm2["dropped_disconnected"] > 0, "vm2: nothing dropped after the cut-off"),
        (vm3["credit_timeouts"] == 0 and vm3["credits"] == 64,
         f"vm3: credit_timeouts {vm3['credit_timeouts']}, credits {vm3['credits']}"),
        (st["ports"][0]["rx_packets"] == CREDIT_FRAMES,
         f"port received {st['ports'][0]['rx_packets']} of {CREDIT_FRAMES}"),
        (sum(st["drops"].values()) == 0, f"drops {st['drops']}"),
        (st["reloads"] == {"applied": 2, "rejected": 1}, f"reloads {st['reloads']}"),
    ]
    probs += [msg for ok, msg in checks if not ok]
    probs += run.check_pool(st)
    note = (f"vm1 {vm1['rx_packets']} delivered, {vm1['dropped_no_credit']} over credits; "
            f"vm2 cut off after 32; vm3 {vm3['rx_packets']}")
    return run.Outcome(name, probs, live.elapsed, note)
