#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Turn zcd-bench results into bench/RESULTS.md, PNG plots and a summary line.

    python3 bench/report.py --csv DIR/dataplane.csv --log DIR/dataplane.log
                            [--e2e DIR/e2e.csv] [--out DIR] [--results FILE]

Reads the CSV zcd-bench wrote (mode,frame_bytes,vms,cycles_per_frame,mpps)
and its console log (for the memcpy bandwidth line), optionally the
end-to-end table, draws cycles per frame against frame size per mode with
gnuplot (if installed) into DIR, writes the Markdown report, and prints the
ratios the project aims for as its last line.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

MODES = ("remap", "copy", "drop")



def read_table(path: str) -> dict:
    """{(mode, bytes, vms): cycles_per_frame}"""
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out[(row["mode"], int(row["frame_bytes"]), int(row["vms"]))] = float(row["cycles_per_frame"])
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def dpdk_version() -> str:
    try:
        return subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def ratio(t: dict, a: tuple, b: tuple):
    return t[a] / t[b] if a in t and b in t and t[b] > 0 else None


def ratios(t: dict, e2e: dict | None) -> list:
    """[(name, value or None, goal, ok or None, how)]"""
    vms = min((k[2] for k in t), default=1)
    most = max((k[2] for k in t), default=1)
    res = [
        ("remap 9000 B / 64 B", ratio(t, ("remap", 9000, vms), ("remap", 64, vms)), "<= 1.25",
         lambda v: v <= 1.25, f"{vms} VM"),
        ("remap / copy at 1518 B", ratio(t, ("remap", 1518, vms), ("copy", 1518, vms)), "<= 0.6",
         lambda v: v <= 0.6, f"{vms} VM"),
        ("remap / copy at 9000 B", ratio(t, ("remap", 9000, vms), ("copy", 9000, vms)), "<= 0.2",
         lambda v: v <= 0.2, f"{vms} VM"),
        (f"remap {most} VMs / {vms} VM", ratio(t, ("remap", 64, most), ("remap", 64, vms)), "<= 1.2",
         lambda v: v <= 1.2, "64 B frames"),
    ]
    e = None
    if e2e and e2e.get("zcdemux_64") and e2e.get("testpmd_64"):
        e = e2e["zcdemux_64"] / e2e["testpmd_64"]
    res.append(("e2e zero-loss 64 B / testpmd io", e, ">= 0.6", lambda v: v >= 0.6, "same port type"))
    return [(n, v, g, (ok(v) if v is not None else None), how) for n, v, g, ok, how in res]


def plot(t: dict, out_dir: str) -> list:
    """One PNG per mode (a line per VM count) and one with all modes at 1 VM."""
    if shutil.which("gnuplot") is None:
        return []
    with tempfile.TemporaryDirectory(prefix="zcd-plot-") as data:
        return plot_from(t, out_dir, data)


def plot_from(t: dict, out_dir: str, data: str) -> list:
    pngs = []
    vms_all = sorted({k[2] for k in t})
    sizes = sorted({k[1] for k in t})
    series = {}
    for mode in MODES:
        for v in vms_all:
            path = os.path.join(data, f"{mode}-{v}.dat")
            with open(path, "w") as fh:
                for s in sizes:
                    if (mode, s, v) in t:
                        fh.write(f"{s} {t[(mode, s, v)]}\n")
            series[(mode, v)] = path
    common = ('set terminal pngcairo size 900,560\nset logscale x 2\nset xlabel "frame size (bytes)"\n'
              'set ylabel "cycles per frame (median)"\nset key top left\nset grid\nset yrange [0:*]\n')
    for mode in MODES:
        png = os.path.join(out_dir, f"cycles-{mode}.png")
        lines = ", ".join(f'"{series[(mode, v)]}" using 1:2 with linespoints title "{v} VM{"s" if v > 1 else ""}"'
                          for v in vms_all if os.path.getsize(series[(mode, v)]) > 0)
        if not lines:
            continue
        script = common + f'set output "{png}"\nset title "{mode}: cycles per frame vs frame size"\nplot {lines}\n'
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        pngs.append(png)
    png = os.path.join(out_dir, "cycles-modes.png")
    v = vms_all[0]
    lines = ", ".join(f'"{series[(m, v)]}" using 1:2 with linespoints title "{m}"' for m in MODES
                      if os.path.getsize(series[(m, v)]) > 0)
    if lines:
        script = common + f'set output "{png}"\nset title "cycles per frame vs frame size, {v} VM"\nplot {lines}\n'
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        pngs.append(png)
    return pngs


def read_e2e(path: str | None):
    if not path or not os.path.exists(path):
        return None, []
    rows = []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    summary = {}
    for r in rows:
        if r.get("frame_bytes") == "64":
            summary[f"{r['receiver']}_64"] = float(r["zero_loss_mpps"])
    return summary, rows


def markdown(t: dict, log_text: str, e2e_rows: list, rs: list, pngs: list, results: str) -> str:
    vms_all = sorted({k[2] for k in t})
    sizes = sorted({k[1] for k in t})
    mem = re.search(r"memcpy on one core: (.*)", log_text)
    tsc = re.search(r"TSC ([0-9.]+) GHz", log_text)
    rel = os.path.dirname(os.path.abspath(results))
    out = ["# Benchmark results", "",
           f"Taken {datetime.date.today().isoformat()} on {cpu_model()}, {os.cpu_count()} CPUs, "
           f"Linux {platform.release()}, DPDK {dpdk_version()}; TSC {tsc.group(1) if tsc else '?'} GHz. "
           "`make bench` regenerates this file; `bench/README.md` says what each number means.", ""]
    if mem:
        out += [f"Single-core memcpy: {mem.group(1)}.", ""]
    out += ["## Dataplane cost per frame (in process, `zcd-bench`)", "",
            "Median TSC cycles per frame the dataplane core spends on classify + handoff + taking "
            "the buffer back (remap), classify + copy into the VM's pages (copy), or classify + "
            "free (drop). Frames are flushed from the caches after the simulated NIC writes them; "
            "the sim guests return every buffer at once.", ""]
    for mode in MODES:
        out += [f"### {mode}", "", "| frame bytes | " + " | ".join(f"{v} VM{'s' if v > 1 else ''}" for v in vms_all) + " |",
                "|---:|" + "---:|" * len(vms_all)]
        for s in sizes:
            cells = [f"{t[(mode, s, v)]:.0f}" if (mode, s, v) in t else "–" for v in vms_all]
            out.append(f"| {s} | " + " | ".join(cells) + " |")
        out.append("")
    if e2e_rows:
        out += ["## End to end, zero loss (`bench/e2e.py`)", "",
                "Highest offered rate (million frames per second) at which the receiver took every "
                "frame: zcd-gen in its own process sends to 4 VMs over net_memif; zcdemux must "
                "deliver every frame to its VM, testpmd `io` (the PMD's ceiling on the same port "
                "type) must receive every frame. Binary search, trials of a fixed length after a "
                "warm-up; \"port took\" is the rate the port accepted when offered all it could.", "",
                "| frame bytes | zcdemux zero loss | testpmd io zero loss | zcdemux / testpmd | "
                "zcdemux port took | testpmd port took |", "|---:|---:|---:|---:|---:|---:|"]
        by = {(r["receiver"], r["frame_bytes"]): r for r in e2e_rows}
        for size in dict.fromkeys(r["frame_bytes"] for r in e2e_rows):
            z, tp = by.get(("zcdemux", size)), by.get(("testpmd", size))
            zr = float(z["zero_loss_mpps"]) if z else None
            tr = float(tp["zero_loss_mpps"]) if tp else None
            zt = f"{zr / tr:.2f}" if zr is not None and tr else "–"
            out.append(f"| {size} | {zr if zr is not None else '–'} | {tr if tr is not None else '–'} | {zt} | "
                       f"{z['max_mpps'] if z else '–'} | {tp['max_mpps'] if tp else '–'} |")
        out.append("")
    out += ["## Ratios", "", "| ratio | measured | goal | |", "|---|---:|---|---|"]
    for name, v, goal, ok, how in rs:
        out.append(f"| {name} ({how}) | {'%.2f' % v if v is not None else 'not measured'} | {goal} | "
                   f"{'met' if ok else ('**missed**' if ok is False else '')} |")
    out.append("")
    if any(ok is False for _, _, _, ok, _ in rs):
        out += ["Why a goal is missed, with a profile: `bench/README.md`, \"Where a goal is missed\".", ""]
    for p in pngs:
        out += [f"![{os.path.basename(p)}]({os.path.relpath(p, rel)})", ""]
    return "\n".join(out)


def summary_line(rs: list) -> str:
    parts = []
    for name, v, goal, ok, _ in rs:
        val = "n/a" if v is None else f"{v:.2f}"
        parts.append(f"{name} {val} ({goal}{'' if ok is not False else ', MISSED'})")
    return "bench: " + "; ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--e2e")
    ap.add_argument("--out", help="where the plots go (default: next to the CSV)")
    ap.add_argument("--results", help="write the Markdown report here")
    a = ap.parse_args()
    t = read_table(a.csv)
    with open(a.log, errors="replace") as fh:
        log_text = fh.read()
    e2e, e2e_rows = read_e2e(a.e2e)
    rs = ratios(t, e2e)
    out_dir = a.out or os.path.dirname(os.path.abspath(a.csv))
    pngs = plot(t, out_dir)
    if a.results:
        with open(a.results, "w") as fh:
            fh.write(markdown(t, log_text, e2e_rows, rs, pngs, a.results) + "\n")
    print(summary_line(rs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
