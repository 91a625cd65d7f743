# SPDX-License-Identifier: BSD-3-Clause
"""Integration tests of hostile guests, run by run.py.

  ring_scribble  four VMs get 200 frames each; vm2's guest reads 50, gives
                 them back, then writes impossible values over its ring
                 indices and goes silent.  zcdemux must cut vm2 off alone:
                 vm2's sink holds exactly its first 50 frames, all 50 come
                 back, every other frame for vm2 is either still held (and
                 taken back) or counted as dropped, the other VMs get
                 exactly their frames, the pool is whole and the exit status 0.
                 (How many frames reach vm2 before the cut-off depends on
                 timing; the sums do not.)
  guest_reboot   the same traffic; vm2's guest gives back every 30 frames it
                 read and goes away, and a new guest connects once all it
                 held is back.  vm2's sink holds its first 30 frames, then
                 only frames of its own in order; every frame read came back;
                 every other frame for vm2 was taken back or counted as
                 dropped; the other VMs get exactly their frames; the pool is
                 whole.
"""

from __future__ import annotations

import json
import os

import zcdgen

SCRIBBLER = "vm2"
READ_BEFORE = 50


def _run_with(ctx, run, name: str, sim_key: str, value: int):
    """The unicast scenario with SCRIBBLER's sim.<sim_key> set; returns
    (scenario, oracle, files, run result, stats or None, problems)."""
    scn = zcdgen.get_scenario("unicast")
    exp = zcdgen.oracle(scn)
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    files = zcdgen.write_scenario(scn, wd, exp)
    cfg = files["config_dict"]
    k = next(i for i, v in enumerate(cfg["vms"]) if v["name"] == SCRIBBLER)
    cfg["vms"][k]["sim"][sim_key] = value
    config = os.path.join(wd, f"config-{sim_key}.yaml")
    with open(config, "w") as fh:
        fh.write(zcdgen.yaml_dump(cfg))
    stats = os.path.join(wd, "stats.json")
    res = run.run_daemon(ctx, run.daemon_argv(ctx, name, config, stats, ["--idle-exit", "300"]), wd)
    probs = run.sanitizer_problems(res)
    if res.timed_out:
        return scn, exp, files, res, None, [f"timed out; stderr tail:\n{run.tail(res.stderr)}"]
    if res.rc != 0:
        probs.append(f"exit status {res.rc}, expected 0; stderr tail:\n{run.tail(res.stderr)}")
    try:
        with open(stats) as fh:
            st = json.load(fh)
    except (OSError, ValueError) as ex:
        return scn, exp, files, res, None, probs + [f"stats JSON: {ex}"]
    # Everything but that VM is exactly as the oracle says.
    want = json.loads(json.dumps(exp.stats))
    want["vms"][k] = dict(st["vms"][k])
    probs += run.compare_stats_dict(st, zcdgen.Expected(exp.per_vm, want, exp.verdicts,
                                                        exp.delivered_counts))
    by_bytes = {f.data: f for f in scn.frames}
    for v in scn.vms:
        if v.name != SCRIBBLER:
            probs += run.compare_sink(scn, v.name, files["sinks"][v.name], exp.per_vm[v.name],
                                      by_bytes)
    return scn, exp, files, res, st, probs


def test_guest_reboot(ctx, run) -> "run.Outcome":
    name, every = "guest_reboot", 30
    scn, exp, files, res, st, probs = _run_with(ctx, run, name, "reboot_every", every)
    if st is None:
        return run.Outcome(name, probs, res.elapsed)
    k = next(i for i, v in enumerate(scn.vms) if v.name == SCRIBBLER)
    vm = st["vms"][k]
    expected = [f.data for f in exp.per_vm[SCRIBBLER]]
    try:
        got = [rec[4] for rec in zcdgen.read_pcap(files["sinks"][SCRIBBLER]).records]
    except (zcdgen.PcapError, OSError) as ex:
        return run.Outcome(name, probs + [f"sink {SCRIBBLER}: {ex}"], res.elapsed)
    pos = 0  # got must be an in-order subsequence of expected
    for d in got:
        while pos < len(expected) and expected[pos] != d:
            pos += 1
        if pos == len(expected):
            probs.append(f"sink {SCRIBBLER}: a frame out of order or not its own")
            break
        pos += 1
    meant = len(expected)
    checks = [
        (got[:every] == expected[:every], f"the first {every} frames are not its first {every}"),
        (vm["returned"] == len(got), f"returned {vm['returned']}, read {len(got)}"),
        (vm["connects"] >= 2, f"connects {vm['connects']}: no new guest came"),
        (vm["rx_packets"] + vm["dropped_no_credit"] + vm["dropped_disconnected"] == meant,
         f"delivered {vm['rx_packets']} + dropped {vm['dropped_no_credit']} + "
         f"{vm['dropped_disconnected']} != {meant} frames meant for it"),
        (0 <= vm["reclaimed"] <= vm["rx_packets"] - vm["returned"],
         f"reclaimed {vm['reclaimed']} of {vm['rx_packets'] - vm['returned']} unread"),
        (vm["bad_returns"] == 0 and vm["ring_errors"] == 0, "bad returns or ring errors"),
    ]
    probs += [f"{SCRIBBLER}: {msg}" for ok, msg in checks if not ok]
    note = (f"{SCRIBBLER}: {vm['connects']} guests, {len(got)} frames read and returned, "
            f"{vm['reclaimed']} reclaimed")
    return run.Outcome(name, probs, res.elapsed, note)


def test_ring_scribble(ctx, run) -> "run.Outcome":
    name = "ring_scribble"
    scn, exp, files, res, st, probs = _run_with(ctx, run, name, "scribble_after", READ_BEFORE)
    if st is None:
        return run.Outcome(name, probs, res.elapsed)
    k = next(i for i, v in enumerate(scn.vms) if v.name == SCRIBBLER)
    if f"vms[{k}]: the guest broke its ring" not in res.stderr:
        probs.append(f"no 'broke its ring' line for vms[{k}]:\n{run.tail(res.stderr)}")
    probs += run.compare_sink(scn, SCRIBBLER, files["sinks"][SCRIBBLER],
                              exp.per_vm[SCRIBBLER][:READ_BEFORE], {f.data: f for f in scn.frames})
    vm = st["vms"][k]
    meant = len(exp.per_vm[SCRIBBLER])
    held = vm["rx_packets"] - READ_BEFORE
    checks = [
        (vm["returned"] == READ_BEFORE, f"returned {vm['returned']}, expected {READ_BEFORE}"),
        (held >= 0, f"rx_packets {vm['rx_packets']} < {READ_BEFORE} frames it read"),
        (vm["rx_packets"] + vm["dropped_no_credit"] + vm["dropped_disconnected"] == meant,
         f"delivered {vm['rx_packets']} + dropped {vm['dropped_no_credit']} + "
         f"{vm['dropped_disconnected']} != {meant} frames meant for it"),
        (0 <= vm["reclaimed"] <= held, f"reclaimed {vm['reclaimed']}, held {held} unread"),
        (vm["bad_returns"] == 0, f"bad_returns {vm['bad_returns']}"),
        (vm["ring_errors"] >= 1, "no ring error counted"),
    ]
    probs += [f"{SCRIBBLER}: {msg}" for ok, msg in checks if not ok]
    note = (f"{SCRIBBLER}: {vm['rx_packets']} delivered, {vm['returned']} returned, "
            f"{vm['reclaimed']} reclaimed, {vm['dropped_no_credit'] + vm['dropped_disconnected']} dropped")
    return run.Outcome(name, probs, res.elapsed, note)
