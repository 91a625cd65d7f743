#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The IOMMU test: zcdemux's vfio backend with a real DPDK NIC driver doing
real DMA through QEMU's emulated Intel IOMMU.

    python3 tests/iommu/iommu_test.py [--timeout SECS] [--work DIR]

Builds a VM image (tests/iommu/images.sh) holding zcdemux, zcd-replay,
zcd-pcapcmp, captures and configs, boots it (tests/iommu/run.sh): an e1000e
NIC is bound to vfio-pci and driven by DPDK's net_e1000_em inside zcdemux,
an e1000 NIC sends the captures from the VM's kernel over QEMU's hub.  Then it
checks what tests/iommu/zcdemux/test.sh printed:

  * strict and deferred modes: every simulated VM received exactly its
    frames, byte for byte (zcd-pcapcmp in the VM), every counter exactly as
    the oracle says, and the ledger and DMA table agreed after every burst
    (iommu.check: 0 mismatches, 0 failed updates), pool whole, no IOMMU fault;
  * fault injection (strict): the NIC's write to the old IOVA of a buffer a
    VM holds faulted in the IOMMU (a DMAR fault in dmesg) and the VM's page
    is unchanged;
  * it prints the map/unmap calls, pages per call and invalidations of both
    modes, and the deferred mode's exposure window.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(REPO, "build")
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import zcdgen  # noqa: E402
from run import compare_stats_dict  # noqa: E402

REPLAY_RATE = 200
WAIT_SECS = 120
# Receive rings short enough that every buffer goes round (handed off,
# unmapped, returned, mapped, posted again) several times, long enough that
# the NIC never runs out of descriptors at REPLAY_RATE under TCG: when it
# does, QEMU's hub can deliver a new frame ahead of queued ones.
RX_DESCRIPTORS = 128
# Options per case on top of the scenario's config.
CASES = {
    "strict": {"backend": "vfio", "mode": "strict", "check": True},
    "deferred": {"backend": "vfio", "mode": "deferred", "deferred_batch": 16,
                 "deferred_max_us": 2000, "check": True},
}
ALL_CASES = list(CASES) + ["fault", "pktgen"]
# bench/pktgen/zcd-pktgen.sh from the VM's kernel NIC: per stream (VM MAC).
PKTGEN_SIZE, PKTGEN_COUNT, PKTGEN_RATE = 512, 40, 2000


def log(msg: str) -> None:
    print(f"iommu_test: {msg}", flush=True)


def case_config(scn, case: str, iommu: dict) -> dict:
    cfg = scn.config("unused", "@OUT@")
    cfg["ports"][0]["devargs"] = "@PCI@"
    cfg["iommu"] = iommu
    cfg["dataplane"] = {"rx_descriptors": RX_DESCRIPTORS}
    return cfg


def fault_case():
    """One VM that never returns pages, so the victim stays with it; a short
    receive ring so that the poisoned buffer (posted right after the first
    handoff) is used within the capture."""
    scn = zcdgen.get_scenario("stall")
    held = next(v for v in scn.vms if v.stall)
    cfg = {
        "ports": [{"name": "uplink", "devargs": "@PCI@"}],
        "hypervisor": {"backend": "sim"},
        "iommu": {"backend": "vfio", "mode": "strict", "check": True},
        "dataplane": {"rx_descriptors": 64},
        "vms": [{"name": "held", "macs": list(held.macs), "credits": 8, "sim": {"stall": True}}],
    }
    return scn, cfg


def pktgen_args(scn) -> str:
    """One zcd-pktgen.sh stream per VM MAC, with the VM's VLAN."""
    return " ".join(f"-d {m}" + (f"/{v.vlan}" if v.vlan else "") for v in scn.vms for m in v.macs)


def check_pktgen(stats: dict, scn, text: str, console: str) -> list:
    """Every stream's frames reached the VM owning the MAC, whole."""
    probs = []
    st = stats.get("pktgen")
    if not isinstance(st, dict) or "vms" not in st:
        return [f"pktgen: no stats JSON ({st})"]
    for v in scn.vms:
        got = next((x for x in st["vms"] if x["name"] == v.name), {})
        want = PKTGEN_COUNT * len(v.macs)
        frame = PKTGEN_SIZE - 4  # on the wire with the FCS; the buffer holds the frame without it
        if (got.get("rx_packets"), got.get("rx_bytes"), got.get("remapped")) != (want, want * frame, want):
            probs.append(f"pktgen: {v.name}: rx_packets/rx_bytes/remapped {got.get('rx_packets')}/"
                         f"{got.get('rx_bytes')}/{got.get('remapped')}, expected {want}/{want * frame}/{want}")
        if got.get("residue_bytes") != 0 or got.get("returned") != want:
            probs.append(f"pktgen: {v.name}: {got}")
    if any(st["drops"].values()):
        probs.append(f"pktgen: drops {st['drops']}")
    pool = st.get("pool", {})
    if pool.get("free") != pool.get("pages"):
        probs.append(f"pktgen: pool not whole: {pool}")
    if not re.search(r"^exit pktgen rc=0$", text, re.M):
        probs.append("pktgen: zcdemux exit status not 0")
    if len(re.findall(r"zcd-pktgen: \S+: sent \d+: OK", console)) != sum(len(v.macs) for v in scn.vms):
        probs.append("pktgen: not every stream reported OK")
    return probs


def build_payload(work: str, scn, exp, fault_scn, fault_cfg, cases: list) -> str:
    pay = os.path.join(work, "payload")
    shutil.rmtree(pay, ignore_errors=True)
    os.makedirs(pay)
    for tool in ("zcdemux", "zcdemux-sim-guest", "zcd-replay", "zcd-pcapcmp"):
        shutil.copy2(os.path.join(BUILD, tool), pay)
    shutil.copy2(os.path.join(HERE, "zcdemux", "test.sh"), pay)
    zcdgen.write_pcap(os.path.join(pay, "traffic.pcap"), scn.frames)
    zcdgen.write_pcap(os.path.join(pay, "fault.pcap"), fault_scn.frames)
    for case, iommu in CASES.items():
        with open(os.path.join(pay, f"{case}.yaml"), "w") as fh:
            fh.write(zcdgen.yaml_dump(case_config(scn, case, iommu)))
        os.makedirs(os.path.join(pay, f"expected-{case}"))
        for v in scn.vms:
            zcdgen.write_pcap(os.path.join(pay, f"expected-{case}", f"{v.name}.pcap"),
                              exp.per_vm[v.name])
    with open(os.path.join(pay, "fault.yaml"), "w") as fh:
        fh.write(zcdgen.yaml_dump(fault_cfg))
    with open(os.path.join(pay, "pktgen.yaml"), "w") as fh:
        fh.write(zcdgen.yaml_dump(case_config(scn, "pktgen", CASES["strict"])))
    shutil.copy2(os.path.join(REPO, "bench", "pktgen", "zcd-pktgen.sh"), pay)
    with open(os.path.join(pay, "expect.env"), "w") as fh:
        fh.write(f"N={len(scn.frames)}\nN_FAULT={len(fault_scn.frames)}\n"
                 f"REPLAY_RATE={REPLAY_RATE}\nWAIT_SECS={WAIT_SECS}\n"
                 f"CASES='{' '.join(cases)}'\n"
                 f"PKTGEN_ARGS='{pktgen_args(scn)}'\nPKTGEN_SIZE={PKTGEN_SIZE}\n"
                 f"PKTGEN_COUNT={PKTGEN_COUNT}\nPKTGEN_RATE={PKTGEN_RATE}\n"
                 f"N_PKTGEN={PKTGEN_COUNT * sum(len(v.macs) for v in scn.vms)}\n")
    return pay


def parse(console: str):
    jsons, lines = {}, []
    for line in console.splitlines():
        m = re.search(r"ZCD-RESULT json (\w+) (.*)$", line.rstrip("\r"))
        if m:
            jsons.setdefault(m.group(1), []).append(m.group(2))
        elif "ZCD-RESULT " in line:
            lines.append(line.rstrip("\r").split("ZCD-RESULT ", 1)[1])
    stats = {}
    for case, js in jsons.items():
        try:
            stats[case] = json.loads("\n".join(js))
        except ValueError as ex:
            stats[case] = {"error": str(ex)}
    return stats, lines


def check(console: str, scn, exp, cases: list) -> tuple[list, list]:
    probs, report = [], []
    stats, lines = parse(console)
    text = "\n".join(lines)
    for case in cases:
        m = re.search(rf"^exit {case} rc=(\d+)$", text, re.M)
        if not m or m.group(1) != "0":
            probs.append(f"{case}: zcdemux exit status {m.group(1) if m else 'missing'}, expected 0")
        st = stats.get(case)
        if not isinstance(st, dict) or "iommu" not in st:
            probs.append(f"{case}: no stats JSON ({st})")
            continue
        io = st["iommu"]
        if io["backend"] != "vfio" or io["mismatches"] != 0 or io["failures"] != 0 or \
                io["errors"] != 0 or io["checks"] == 0:
            probs.append(f"{case}: DMA table: {io}")
        if st["ports"][0].get("rx_missed") != 0:
            probs.append(f"{case}: the NIC missed frames: {st['ports'][0]}")
        report.append(f"{case}: map_calls {io['map_calls']} unmap_calls {io['unmap_calls']} "
                      f"pages/map {io['pages_per_map_call']} pages/unmap {io['pages_per_unmap_call']} "
                      f"invalidations {io['invalidations']} deferred_buffers {io['deferred_buffers']} "
                      f"flushes by count/time {io['deferred_flushes_by_count']}/"
                      f"{io['deferred_flushes_by_time']} max_exposure_us {io['max_exposure_us']} "
                      f"checks {io['checks']} mismatches {io['mismatches']}")
    for case in (c for c in cases if c in CASES):
        if case in stats and "ports" in stats[case]:
            probs += [f"{case}: {p}" for p in compare_stats_dict(stats[case], exp)]
        for v in scn.vms:
            want = f"cmp {case} {v.name} same {len(exp.per_vm[v.name])} frames"
            if want not in lines:
                got = next((x for x in lines if x.startswith(f"cmp {case} {v.name} ")), "missing")
                probs.append(f"{case}: sink of {v.name}: {got} (expected '{want}')")
        m = re.search(rf"^dmar after-{case} faults=(\d+)$", text, re.M)
        if not m or m.group(1) != "0":
            probs.append(f"{case}: IOMMU faults in dmesg: {m.group(1) if m else 'unknown'}, expected 0")
    if "pktgen" in cases:
        probs += check_pktgen(stats, scn, text, console)
        report.append("pktgen: " + "; ".join(x.strip() for x in re.findall(r"zcd-pktgen: .*", console)))
    if "fault" not in cases:
        return probs, report
    fi = stats.get("fault", {}).get("fault_injection", {})
    for k, v in {"posted": True, "frames_dropped": 1, "victim_checked": True,
                 "victim_changed": False}.items():
        if fi.get(k) != v:
            probs.append(f"fault: fault_injection.{k} = {fi.get(k)}, expected {v}")
    m = re.search(r"^dmar after-fault faults=(\d+)$", text, re.M)
    if not m or int(m.group(1)) < 1:
        probs.append(f"fault: no DMAR fault in dmesg after the injected DMA ({m.group(0) if m else 'no report'})")
    # The IOMMU refused exactly the victim's page (faults name the page).
    fault_pages = {int(a, 16) & ~0xfff for a in re.findall(r"fault addr (0x[0-9a-f]+)", text)}
    victim = int(fi.get("victim_iova", "0x1"), 16)
    if fault_pages != {victim}:
        probs.append(f"fault: IOMMU faults at {sorted(hex(p) for p in fault_pages)}, "
                     f"expected only at the victim's IOVA {hex(victim)}")
    report.append(f"fault: {fi}")
    report += [x for x in lines if x.startswith("dmesg ")]
    return probs, report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=int, default=600, help="QEMU run limit in seconds")
    ap.add_argument("--work", default=os.path.join(BUILD, "iommu", "zcdemux"))
    ap.add_argument("--cases", default=",".join(ALL_CASES),
                    help="comma-separated cases to run (default: %(default)s)")
    a = ap.parse_args()
    cases = a.cases.split(",")
    if not cases or any(c not in ALL_CASES for c in cases):
        ap.error(f"--cases: choose from {','.join(ALL_CASES)}")
    t0 = time.monotonic()
    work = os.path.abspath(a.work)
    scn = zcdgen.get_scenario("unicast")
    exp = zcdgen.oracle(scn)
    fault_scn, fault_cfg = fault_case()
    pay = build_payload(work, scn, exp, fault_scn, fault_cfg, cases)
    images = os.path.join(work, "images")
    log("$ tests/iommu/images.sh --out " + images)
    subprocess.run([os.path.join(HERE, "images.sh"), "--out", images, "--payload", pay],
                   check=True)
    console = os.path.join(work, "console.log")
    rc = subprocess.run([os.path.join(HERE, "run.sh"), "--images", images, "--log", console,
                         "--timeout", str(a.timeout), "--quiet"]).returncode
    with open(console, errors="replace") as fh:
        text = fh.read()
    probs, report = ([], []) if rc != 0 and "ZCD-RESULT" not in text else check(text, scn, exp, cases)
    for line in report:
        log(line)
    if rc != 0:
        probs.insert(0, f"tests/iommu/run.sh exited {rc} (console: {console})")
    log(f"{time.monotonic() - t0:.0f} s in all")
    if probs:
        for p in probs:
            log("FAIL: " + p)
        return 1
    log("PASS: every frame to its VM byte for byte through real DMA; table and ledger agreed; "
        "the injected stale DMA faulted and changed nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
