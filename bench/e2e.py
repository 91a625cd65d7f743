#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end zero-loss rate of zcdemux, and of testpmd io on the same port.

    python3 bench/e2e.py --out DIR [--sizes 64,1518,imix] [--trial SECS]
                         [--build DIR] [--gen-lcore N] [--dut-lcore N]

A generator in its own process (build/zcd-gen) sends frames to the VMs of
a 4-VM configuration through a shared-memory port (net_memif; the
generator is the memif client, the receiver the server).  For each frame
size, a binary search (RFC 2544 style, bounded trial length) finds the
highest offered rate at which nothing is lost (after a warm-up at the same
rate, which is not counted but must arrive):

  zcdemux   every frame offered is taken by the port and delivered to its
            VM (sim guests that return buffers at once), nothing dropped;
  testpmd   dpdk-testpmd --forward-mode=io on the same kind of port takes
            every frame offered (the PMD's own ceiling; it forwards them
            back to the generator, which frees them).

Writes DIR/e2e.csv (receiver,frame_bytes,zero_loss_mpps,max_mpps,trials)
and prints a line per search.  Each trial starts the receiver afresh.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import select
import signal
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PRECISION = 0.02  # stop when the bracket is this narrow, relative
MAX_TRIALS = 9
# Sent at the trial's rate before the trial: the receiver's first touch of
# the shared rings (page faults) is not what is measured.
WARMUP_S = 0.5
# What each receiver prints once it receives.
READY = {"zcdemux": "zcdemux: running:", "testpmd": "packet forwarding packets/burst"}


def log(msg: str) -> None:
    print(f"e2e: {msg}", flush=True)


class Bench:
    def __init__(self, a):
        self.a = a
        self.build = os.path.abspath(a.build)
        self.out = os.path.abspath(a.out)
        os.makedirs(self.out, exist_ok=True)
        # Scratch (config, socket, stats) away from the results.
        self.scratch = tempfile.mkdtemp(prefix="zcd-e2e-")
        self.sock = os.path.join(self.scratch, "memif.sock")
        self.config = os.path.join(self.scratch, "e2e.yaml")
        self.stats = os.path.join(self.scratch, "dut-stats.json")
        with open(self.config, "w") as fh:
            fh.write(f'ports:\n  - {{name: uplink, devargs: "net_memif0,role=server,socket={self.sock},socket-abstract=no"}}\n'
                     "hypervisor: {backend: sim}\n"
                     "dataplane: {mtu: 1500}\n"
                     "vms:\n")
            for v in range(4):
                vlan = ", vlan: 10" if v == 2 else ""
                fh.write(f'  - {{name: vm{v + 1}, macs: ["02:00:00:00:00:0{v + 1}"]{vlan}, '
                         "sim: {instant_return: true}}\n")

    def eal(self, lcores: str, prefix: str) -> list:
        return ["--no-huge", "-m", "1024", "--no-pci", "-l", lcores, "--file-prefix", prefix,
                "--log-level=lib.eal:warning", "--no-telemetry"]

    def start_receiver(self, which: str) -> subprocess.Popen:
        for stale in (self.stats, self.sock):  # a memif server will not reuse a socket file
            if os.path.exists(stale):
                os.unlink(stale)
        if which == "zcdemux":
            argv = [os.path.join(self.build, "zcdemux")] + self.eal(str(self.a.dut_lcore), "zcd-e2e-dut") + \
                ["--", "--config", self.config, "--stats-json", self.stats, "--stats-interval", "1"]
        else:
            argv = ["stdbuf", "-oL", "dpdk-testpmd"] + self.eal(f"{self.a.gen_lcore},{self.a.dut_lcore}", "zcd-e2e-tp") + \
                ["--vdev", f"net_memif0,role=server,socket={self.sock},socket-abstract=no", "--",
                 "--forward-mode=io", "--nb-cores=1", "--auto-start", "--stats-period", "3600"]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        # Ready once its port is started: a memif client that connects
        # earlier is turned away.
        ready = READY[which]
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not select.select([p.stdout], [], [], 0.2)[0]:
                continue
            line = p.stdout.readline()
            if not line:
                break
            seen.append(line)
            if ready in line:
                return p
        p.kill()
        rest = p.communicate()[0]
        raise RuntimeError(f"{which} did not get ready (status {p.returncode}): "
                           f"{(''.join(seen) + rest)[-2000:]}")

    def stop_receiver(self, p: subprocess.Popen) -> str:
        p.send_signal(signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        return out

    def generate(self, size: str, rate: float, forwarder: bool) -> tuple[subprocess.Popen, dict]:
        """Run zcd-gen; it reports, then holds the port open until the receiver
        has stopped (the other order can crash the receiver: zcd-gen --help)."""
        argv = [os.path.join(self.build, "zcd-gen")] + self.eal(str(self.a.gen_lcore), "zcd-e2e-gen") + \
            ["--vdev", f"net_memif0,role=client,socket={self.sock},socket-abstract=no,rsize=14", "--",
             "--config", self.config, "--size", size, "--rate", str(int(rate)), "--time", str(self.a.trial),
             "--warmup", str(WARMUP_S), "--hold"]
        if forwarder:
            argv.append("--receive")
        g = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        line = g.stdout.readline().strip()
        if not line.startswith("{"):
            g.kill()
            _, err = g.communicate()
            raise RuntimeError(f"zcd-gen failed ({g.returncode}): {err[-2000:]}")
        return g, json.loads(line)

    def end_generator(self, g: subprocess.Popen) -> None:
        try:
            g.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            g.kill()
            g.communicate()

    def wait_received(self, frames: int) -> None:
        """Until zcdemux has taken every frame sent off its port (its stats
        file is rewritten every second), or 5 s."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(self.stats) as fh:
                    if json.load(fh)["ports"][0]["rx_packets"] >= frames:
                        return
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.2)

    def trial(self, which: str, size: str, rate: float) -> tuple[bool, dict]:
        p = self.start_receiver(which)
        gen = None
        try:
            gen, g = self.generate(size, rate, which == "testpmd")
            if which == "zcdemux":
                self.wait_received(g["warmup_sent"] + g["sent"])
        finally:
            out = self.stop_receiver(p)
            if gen is not None:
                self.end_generator(gen)
        ok = g["not_taken"] == 0
        if which == "zcdemux":
            if p.returncode != 0:
                raise RuntimeError(f"zcdemux exit status {p.returncode}: {out[-2000:]}")
            try:
                with open(self.stats) as fh:
                    st = json.load(fh)
            except (OSError, ValueError) as ex:
                raise RuntimeError(f"zcdemux left no stats ({ex}): {out[-2000:]}")
            delivered = sum(v["rx_packets"] for v in st["vms"])
            lost = sum(v["dropped_no_credit"] + v["dropped_disconnected"] for v in st["vms"]) + \
                sum(st["drops"].values()) + st["ports"][0]["rx_missed"]
            g["delivered"] = delivered
            ok = ok and delivered == g["warmup_sent"] + g["sent"] and lost == 0
        return ok, g

    def search(self, which: str, size: str) -> tuple[float, float, int]:
        """Highest zero-loss rate (frames/s), the highest rate the port took, trials run."""
        ok, g = self.trial(which, size, 0)
        top = g["sent"] / g["seconds"]
        trials = 1
        if ok:
            return top, top, trials
        lo, hi = 0.0, top
        while trials < MAX_TRIALS and (hi - lo) > PRECISION * hi:
            mid = (lo + hi) / 2
            ok, g = self.trial(which, size, mid)
            trials += 1
            if ok:
                lo = mid
            else:
                hi = mid
        return lo, top, trials


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="64,128,256,512,1024,1518,imix")
    ap.add_argument("--trial", type=float, default=2.0, help="seconds per trial (default 2)")
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--receivers", default="zcdemux,testpmd")
    nproc = os.cpu_count() or 2
    ap.add_argument("--gen-lcore", type=int, default=max(0, nproc - 2))
    ap.add_argument("--dut-lcore", type=int, default=nproc - 1)
    a = ap.parse_args()
    if a.gen_lcore == a.dut_lcore:
        ap.error("the generator and the receiver need a core each")
    b = Bench(a)
    rows = []
    try:
        for size in a.sizes.split(","):
            for which in a.receivers.split(","):
                t0 = time.monotonic()
                rate, top, trials = b.search(which, size)
                log(f"{which:8} {size:>5} B: zero loss up to {rate / 1e6:.3f} Mpps (port took up to "
                    f"{top / 1e6:.3f} Mpps; {trials} trials, {time.monotonic() - t0:.0f} s)")
                rows.append({"receiver": which, "frame_bytes": size, "zero_loss_mpps": f"{rate / 1e6:.4f}",
                             "max_mpps": f"{top / 1e6:.4f}", "trials": trials})
    finally:
        shutil.rmtree(b.scratch, ignore_errors=True)
    with open(os.path.join(b.out, "e2e.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
