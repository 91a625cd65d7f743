# SPDX-License-Identifier: BSD-3-Clause
"""Integration tests of the benchmark tools, run by run.py.

  memif       zcd-gen, a DPDK generator in its own process, sends to four VMs
              through net_memif (a shared-memory port), once below
              copy_threshold and once above, a daemon each; every VM's sink must
              hold exactly its frames, byte for byte, copied below
              copy_threshold and remapped above, and every counter add up;
  bench       zcd-bench measures every mode, size and VM count it is asked
              for and writes a CSV with one well-formed row per case;
  testpmd     dpdk-testpmd, driven by a command file from
              bench/pktgen/zcd-testpmd-cmds.sh, sends exactly 5 bursts of 32
              frames to one VM through net_memif; that VM gets them all, the
              others nothing.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time

import zcdgen

VMS = [("vm1", "02:00:00:00:00:01", 0), ("vm2", "02:00:00:00:00:02", 0),
       ("vm3", "02:00:00:00:00:03", 10), ("vm4", "02:00:00:00:00:04", 0)]
GEN_SRC = bytes([0x02, 0x47, 0x45, 0x4E, 0x00, 0x01])  # zcd-gen's source MAC
FCS = 4


def gen_frame(vm: int, size: int) -> bytes:
    """The frame zcd-gen sends to VM number vm: on the wire size bytes, FCS not included."""
    _, mac, vlan = VMS[vm]
    f = bytearray(zcdgen.parse_mac(mac) + GEN_SRC)
    if vlan:
        f += bytes([0x81, 0x00, vlan >> 8, vlan & 0xFF])
    f += bytes([0x88, 0xB5])
    f += bytes((i + vm) & 0xFF for i in range(len(f), size - FCS))
    return bytes(f)


def _port_rx(stats: str) -> int:
    try:
        with open(stats) as fh:
            return json.load(fh)["ports"][0]["rx_packets"]
    except (OSError, ValueError, KeyError, IndexError):
        return -1


def _sanitizer(rt, text: str) -> list:
    return [f"sanitizer report:\n{rt.tail(text, 30)}" for m in rt.SANITIZER_MARKERS if m in text][:1]


def _start_daemon(ctx, rt, name: str, wd: str, sinks: bool):
    """zcdemux on a net_memif server port with VMS; (process, stdout path, socket, stats, config)."""
    sock = os.path.join(wd, "memif.sock")
    stats = os.path.join(wd, "stats.json")
    config = os.path.join(wd, "config.yaml")
    lines = [f'ports:\n  - {{name: uplink, devargs: "net_memif0,role=server,socket={sock},socket-abstract=no"}}',
             "hypervisor: {backend: sim}", "vms:"]
    for name_, mac, vlan in VMS:
        sim = f', sim: {{sink: "{os.path.join(wd, name_ + ".pcap")}"}}' if sinks else ""
        lines.append(f'  - {{name: {name_}, macs: ["{mac}"]' + (f", vlan: {vlan}" if vlan else "") + sim + "}")
    with open(config, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    argv = [ctx.binary] + rt.eal_args(name) + ["--", "--config", config, "--stats-json", stats,
                                               "--stats-interval", "1"]
    out = os.path.join(wd, "daemon.stdout")
    with open(out, "wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, out, sock, stats, config


def _ended(ctx, proc, stdin: bytes = None) -> bool:
    """Whether proc ends by itself (after reading stdin, if given) within the
    timeout; if not, it is killed."""
    try:
        proc.communicate(stdin, timeout=ctx.timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def _stop_daemon(ctx, proc) -> list:
    proc.send_signal(signal.SIGINT)
    if not _ended(ctx, proc):
        return ["zcdemux did not stop on SIGINT"]
    return [] if proc.returncode == 0 else [f"zcdemux exit status {proc.returncode}, expected 0"]


def test_testpmd(ctx, rt):
    name = "testpmd"
    t0 = time.monotonic()
    wd = rt.fresh_dir(os.path.join(ctx.work, name))
    size, bursts = 300, 5
    proc, out, sock, stats, config = _start_daemon(ctx, rt, name, wd, sinks=False)
    probs, tp = [], None
    try:
        if not rt.wait_for_text(out, "zcdemux: running:", proc, ctx.timeout):
            raise RuntimeError("zcdemux did not start")
        cmds = os.path.join(wd, "cmds")
        with open(cmds, "w") as fh:
            subprocess.run([os.path.join(rt.REPO, "bench", "pktgen", "zcd-testpmd-cmds.sh"), "-c", config,
                            "-v", "vm2", "-s", str(size), "-m", "burst", "-n", str(bursts)],
                           stdout=fh, check=True, timeout=60,
                           env=dict(os.environ, ZCD_GEN=os.path.join(os.path.dirname(ctx.binary), "zcd-gen")))
        cores = "0,1" if (os.cpu_count() or 1) > 1 else "0"
        tp_out = os.path.join(wd, "testpmd.out")
        with open(tp_out, "wb") as fh:
            # After the command file testpmd waits at its prompt, connected and not
            # polling, until zcdemux has stopped (see _stop_in_order).
            tp = subprocess.Popen(["dpdk-testpmd", "--no-huge", "-m", "512", "--no-pci", "-l", cores,
                                   "--file-prefix", f"zcd-it-testpmd-client-{os.getpid()}",
                                   "--log-level=lib.eal:warning", "--no-telemetry",
                                   "--vdev", f"net_memif0,role=client,socket={sock},socket-abstract=no",
                                   "--", "-i", "--total-num-mbufs=4096", "--cmdline-file", cmds],
                                  stdin=subprocess.PIPE, stdout=fh, stderr=subprocess.STDOUT)
        want = bursts * 32
        end = time.monotonic() + ctx.timeout
        while _port_rx(stats) < want and time.monotonic() < end and tp.poll() is None:
            time.sleep(0.2)
        if tp.poll() is not None:
            raise RuntimeError(f"dpdk-testpmd: status {tp.returncode}: "
                               f"{rt.tail(open(tp_out, errors='replace').read())}")
    except (RuntimeError, subprocess.SubprocessError, OSError) as ex:
        probs.append(str(ex))
    probs += _stop_in_order(ctx, proc, tp, b"quit\n") if tp is not None else _stop_daemon(ctx, proc)
    probs += _sanitizer(rt, open(out, errors="replace").read())
    if not probs:
        with open(stats) as fh:
            st = json.load(fh)
        for vs in st["vms"]:
            n = bursts * 32 if vs["name"] == "vm2" else 0
            got = (vs["rx_packets"], vs["rx_bytes"], vs["remapped"], vs["returned"], vs["residue_bytes"])
            if got != (n, n * (size - FCS), n, n, 0):
                probs.append(f"{vs['name']}: rx_packets/rx_bytes/remapped/returned/residue {got}, "
                             f"expected {(n, n * (size - FCS), n, n, 0)}")
        if st["pool"]["free"] != st["pool"]["pages"] or any(st["drops"].values()):
            probs.append(f"pool {st['pool']}, drops {st['drops']}")
    return rt.Outcome(name, probs[:ctx.max_problems], time.monotonic() - t0,
                      f"{bursts} bursts of 32 {size}-byte frames from testpmd over net_memif")


def _held_gen(ctx, rt, wd: str, sock: str, config: str, size: int):
    """zcd-gen --hold sending to the daemon on sock: (process, its report).  It
    stays connected until the daemon closes the port (see _stop_in_order)."""
    gen = os.path.join(os.path.dirname(ctx.binary), "zcd-gen")
    gen_core = "1" if (os.cpu_count() or 1) > 1 else "0"
    out, err = os.path.join(wd, f"gen-{size}.stdout"), os.path.join(wd, f"gen-{size}.stderr")
    with open(out, "wb") as o, open(err, "wb") as e:
        g = subprocess.Popen([gen, "--no-huge", "-m", "256", "--no-pci", "-l", gen_core,
                              "--file-prefix", f"zcd-it-memif-gen-{os.getpid()}",
                              "--log-level=lib.eal:warning", "--no-telemetry",
                              # A deep ring: the machine may be busy with other tests.
                              "--vdev", f"net_memif0,role=client,socket={sock},socket-abstract=no,rsize=14",
                              "--", "--config", config, "--size", str(size), "--rate", "10000",
                              "--time", "0.5", "--hold"],
                             stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    if not rt.wait_for_text(out, "}", g, ctx.timeout):
        g.kill()
        g.wait()
        raise RuntimeError(f"zcd-gen {size} B: status {g.returncode}, no report: "
                           f"{rt.tail(open(err, errors='replace').read())}")
    return g, json.loads(open(out).read().strip().splitlines()[-1])


def _stop_in_order(ctx, daemon, peer, quit_input: bytes = None) -> list:
    """Stop zcdemux, then its memif peer: zcd-gen --hold leaves when the link
    goes down, testpmd when quit_input tells it to.  The other order can crash
    zcdemux inside DPDK's memif RX (see zcd-gen --help)."""
    probs = _stop_daemon(ctx, daemon)
    if quit_input is not None and peer.poll() is None:
        # Let the peer's interrupt thread finish tearing the link down first.
        time.sleep(0.2)
    if not _ended(ctx, peer, quit_input):
        probs.append("the memif peer did not leave when zcdemux closed the port")
    return probs


def test_memif(ctx, rt):
    """rt: run.py's namespace (Outcome, eal_args, fresh_dir, tail, SANITIZER_MARKERS)."""
    name = "memif"
    t0 = time.monotonic()
    probs, notes = [], []
    # Below copy_threshold (copied), then above it (remapped); a daemon each.
    for size in (128, 1518):
        wd = rt.fresh_dir(os.path.join(ctx.work, name, str(size)))
        daemon, out, sock, stats, config = _start_daemon(ctx, rt, name, wd, sinks=True)
        gen, sent = None, None
        try:
            if not rt.wait_for_text(out, "zcdemux: running:", daemon, ctx.timeout):
                raise RuntimeError("zcdemux did not start")
            gen, sent = _held_gen(ctx, rt, wd, sock, config, size)
            if sent["not_taken"] != 0:
                probs.append(f"zcd-gen {size} B: the port refused {sent['not_taken']} frames")
            end = time.monotonic() + 10
            while _port_rx(stats) < sent["sent"] and time.monotonic() < end:
                time.sleep(0.2)
        except (RuntimeError, ValueError, IndexError, OSError) as ex:
            probs.append(str(ex))
        probs += _stop_in_order(ctx, daemon, gen) if gen else _stop_daemon(ctx, daemon)
        probs += _sanitizer(rt, open(out, errors="replace").read())
        probs += _sanitizer(rt, open(os.path.join(wd, f"gen-{size}.stderr"), errors="replace").read()) if gen else []
        if probs or sent is None:
            return rt.Outcome(name, probs + [f"daemon output:\n{rt.tail(open(out, errors='replace').read())}"],
                              time.monotonic() - t0)
        probs += _check_memif_run(wd, stats, size, sent["sent"])
        notes.append(f"{size} B: {sent['sent']} frames")
    return rt.Outcome(name, probs[:ctx.max_problems], time.monotonic() - t0,
                      ", ".join(notes) + " over net_memif from zcd-gen")


def _check_memif_run(wd: str, stats: str, size: int, n: int) -> list:
    """Every VM's sink and counters after zcd-gen sent n frames of size bytes."""
    probs = []
    with open(stats) as fh:
        st = json.load(fh)
    if st["pool"]["free"] != st["pool"]["pages"]:
        probs.append(f"{size} B: pool not whole: {st['pool']}")
    if any(st["drops"].values()) or st["ports"][0]["rx_missed"]:
        probs.append(f"{size} B: drops: {st['drops']}, port {st['ports'][0]}")
    for v, (vm_name, _, _) in enumerate(VMS):
        # zcd-gen goes round robin over the VMs, starting at the first.
        expected = [gen_frame(v, size)] * ((n - v + len(VMS) - 1) // len(VMS))
        got = [r[4] for r in zcdgen.parse_pcap(open(os.path.join(wd, vm_name + ".pcap"), "rb").read()).records]
        if got != expected:
            first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            probs.append(f"{size} B: {vm_name}: sink has {len(got)} frames, expected {len(expected)}; "
                         f"first difference at frame {first}")
        vs = next(x for x in st["vms"] if x["name"] == vm_name)
        small = sum(1 for f in expected if len(f) < 256)
        want = {"rx_packets": len(expected), "rx_bytes": sum(len(f) for f in expected),
                "copied": small, "remapped": len(expected) - small, "returned": len(expected),
                "residue_bytes": 0, "bad_returns": 0, "dropped_no_credit": 0}
        for k, val in want.items():
            if vs.get(k) != val:
                probs.append(f"{size} B: {vm_name}.{k}: expected {val}, actual {vs.get(k)}")
    return probs


def test_bench(ctx, rt):
    name = "bench"
    t0 = time.monotonic()
    wd = rt.fresh_dir(os.path.join(ctx.work, name))
    out_csv = os.path.join(wd, "dataplane.csv")
    bench = os.path.join(os.path.dirname(ctx.binary), "zcd-bench")
    r = subprocess.run([bench, "--no-huge", "-m", "512", "--no-pci", "-l", "0", "--file-prefix",
                        f"zcd-it-bench-{os.getpid()}", "--log-level=lib.eal:warning", "--no-telemetry",
                        "--", "--sizes", "64,1518,9000", "--vms", "1,4", "--frames", "256", "--repeats", "3",
                        "--csv", out_csv, "--workdir", wd],
                       capture_output=True, text=True, timeout=ctx.timeout)
    probs = _sanitizer(rt, r.stderr)
    if r.returncode != 0:
        probs.append(f"zcd-bench: status {r.returncode}: {rt.tail(r.stderr)}")
    if "memcpy on one core" not in r.stdout:
        probs.append("zcd-bench did not print the memcpy bandwidth")
    try:
        with open(out_csv, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as ex:
        return rt.Outcome(name, probs + [f"no CSV: {ex}"], time.monotonic() - t0)
    cases = {(r_["mode"], r_["frame_bytes"], r_["vms"]) for r_ in rows}
    want = {(m, s, v) for m in ("remap", "copy", "drop") for s in ("64", "1518", "9000") for v in ("1", "4")}
    if cases != want or len(rows) != len(want):
        probs.append(f"CSV cases: {sorted(cases)}, expected {sorted(want)}")
    for row in rows:
        if not (float(row["cycles_per_frame"]) > 0 and float(row["mpps"]) > 0):
            probs.append(f"CSV row without a measurement: {row}")
    return rt.Outcome(name, probs[:ctx.max_problems], time.monotonic() - t0,
                   f"{len(rows)} cases measured (correctness only; no timing asserted)")
