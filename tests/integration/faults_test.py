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
"""

from __future__ import annotations

import json
import os

import zcdgen

SCRIBBLER = "vm2"
READ_BEFORE = 50


def test_ring_scribble(ctx, run) -> "run.Outcome":
    name = "ring_scribble"
    scn = zcdgen.get_scenario("unicast")
    exp = zcdgen.oracle(scn)
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    files = zcdgen.write_scenario(scn, wd, exp)
    cfg = files["config_dict"]
    k = next(i for i, v in enumerate(cfg["vms"]) if v["name"] == SCRIBBLER)
    cfg["vms"][k]["sim"]["scribble_after"] = READ_BEFORE
    config = os.path.join(wd, "config-scribble.yaml")
    with open(config, "w") as fh:
        fh.write(zcdgen.yaml_dump(cfg))
    stats = os.path.join(wd, "stats.json")
    res = run.run_daemon(ctx, run.daemon_argv(ctx, name, config, stats, ["--idle-exit", "300"]), wd)
    probs = run.sanitizer_problems(res)
    if res.timed_out:
        return run.Outcome(name, [f"timed out; stderr tail:\n{run.tail(res.stderr)}"], res.elapsed)
    if res.rc != 0:
        probs.append(f"exit status {res.rc}, expected 0; stderr tail:\n{run.tail(res.stderr)}")
    if f"vms[{k}]: the guest broke its ring" not in res.stderr:
        probs.append(f"no 'broke its ring' line for vms[{k}]:\n{run.tail(res.stderr)}")
    try:
        with open(stats) as fh:
            st = json.load(fh)
    except (OSError, ValueError) as ex:
        return run.Outcome(name, probs + [f"stats JSON: {ex}"], res.elapsed)

    # Everything but the scribbler is exactly as the oracle says.
    want = json.loads(json.dumps(exp.stats))
    want["vms"][k] = dict(st["vms"][k]) if k < len(st.get("vms", [])) else want["vms"][k]
    probs += run.compare_stats_dict(st, zcdgen.Expected(exp.per_vm, want, exp.verdicts,
                                                        exp.delivered_counts))
    by_bytes = {f.data: f for f in scn.frames}
    for v in scn.vms:
        expected = exp.per_vm[v.name][:READ_BEFORE] if v.name == SCRIBBLER else exp.per_vm[v.name]
        probs += run.compare_sink(scn, v.name, files["sinks"][v.name], expected, by_bytes)

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
