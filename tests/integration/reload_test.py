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
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

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

    probs, res, answers = [], None, {}
    t0 = time.monotonic()
    try:
        with run._VethNs(name) as net:
            daemon = run._NsDaemon(ctx, name, wd, net, config)
            daemon.argv[daemon.argv.index("-l") + 1] = f"0-{lcores - 1}"
            prefix = daemon.argv[daemon.argv.index("--file-prefix") + 1]
            tel = os.path.join(run._dpdk_runtime_dir(prefix), "dpdk_telemetry.v2")
            try:
                err = daemon.start()
                if err:
                    probs.append(err)
                else:
                    replay = subprocess.Popen(net.cmd([run.REPLAY, "--rate", str(RATE), "zcda",
                                                       traffic]),
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True)
                    time.sleep(FRAMES / RATE / 4)
                    _write(config, broken_text)
                    answers["broken"] = run.telemetry_query(tel, "/zcdemux/reload")
                    time.sleep(FRAMES / RATE / 4)
                    _write(config, _config(port, sinks, after))
                    daemon.proc.send_signal(signal.SIGHUP)
                    out, errout = replay.communicate(timeout=ctx.timeout)
                    if replay.returncode != 0:
                        probs.append(f"zcd-replay failed: {errout.strip()}")
                    daemon.wait_settled(FRAMES, ctx.timeout / 2)
                    answers["same"] = run.telemetry_query(tel, "/zcdemux/reload")
            finally:
                res = daemon.stop()
    except subprocess.CalledProcessError as ex:
        err = ex.stderr.decode(errors="replace") if isinstance(ex.stderr, bytes) else ex.stderr
        probs.append(f"{' '.join(map(str, ex.cmd))}: status {ex.returncode}: {err}")
    elapsed = time.monotonic() - t0
    if res is None or probs:
        return run.Outcome(name, probs, elapsed)
    probs += run.sanitizer_problems(res)
    if res.timed_out or res.rc != 0:
        return run.Outcome(name, probs + [f"exit status {res.rc}; stderr tail:\n{run.tail(res.stderr)}"],
                           elapsed)
    try:
        with open(daemon.stats) as fh:
            st = json.load(fh)
    except (OSError, ValueError) as ex:
        return run.Outcome(name, probs + [f"stats JSON: {ex}"], elapsed)

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
