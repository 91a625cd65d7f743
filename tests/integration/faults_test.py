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
  guest_dies     the same traffic; each of vm2's guests reads 30 frames, keeps
                 its last 20 (sim.hold) and leaves holding them; a new one
                 connects once they are taken back.  vm2's sink holds its
                 frames in order, the first 30 first; exactly 10 per guest
                 came back as returns (and what the last one read past 20);
                 what the guests held was taken back (copies excepted: they
                 are in the guests' own pages); the other VMs get exactly
                 their frames; the pool is whole.
  pool_exhaustion  a pool of 200 buffers (dataplane.buffers, smaller than the
                 one VM's credits: overcommitted on purpose) and a guest that
                 never returns: every frame of 600 is either delivered or
                 counted in drops.pool_empty, exactly as net_pcap's receive
                 loop and the pool's arithmetic say (replayed below); the
                 sink holds exactly the delivered frames; at exit every
                 buffer is taken back and the pool is whole.
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


def _run_with(ctx, run, name: str, sim: dict):
    """The unicast scenario with SCRIBBLER's sim settings updated with sim;
    returns (scenario, oracle, files, run result, stats or None, problems)."""
    scn = zcdgen.get_scenario("unicast")
    exp = zcdgen.oracle(scn)
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    files = zcdgen.write_scenario(scn, wd, exp)
    cfg = files["config_dict"]
    k = next(i for i, v in enumerate(cfg["vms"]) if v["name"] == SCRIBBLER)
    cfg["vms"][k]["sim"].update(sim)
    config = os.path.join(wd, f"config-{name}.yaml")
    with open(config, "w") as fh:
        fh.write(zcdgen.yaml_dump(cfg))
    res, st, probs = run.run_for_stats(ctx, name, config, wd, ["--idle-exit", "300"])
    if st is None:
        return scn, exp, files, res, None, probs
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


def _coming_and_going(ctx, run, name: str, sim: dict):
    """_run_with for a SCRIBBLER whose guests come and go: its sink must hold
    its frames in order (some left out).  Returns (run result, its stats or
    None, the frames meant for it, the frames its sink holds, problems)."""
    scn, exp, files, res, st, probs = _run_with(ctx, run, name, sim)
    if st is None:
        return res, None, [], [], probs
    k = next(i for i, v in enumerate(scn.vms) if v.name == SCRIBBLER)
    expected = [f.data for f in exp.per_vm[SCRIBBLER]]
    try:
        got = [rec[4] for rec in zcdgen.read_pcap(files["sinks"][SCRIBBLER]).records]
    except (zcdgen.PcapError, OSError) as ex:
        return res, None, expected, [], probs + [f"sink {SCRIBBLER}: {ex}"]
    order = run.in_order_problem(got, expected)
    if order:
        probs.append(f"sink {SCRIBBLER}: {order}")
    return res, st["vms"][k], expected, got, probs


def test_guest_reboot(ctx, run) -> "run.Outcome":
    name, every = "guest_reboot", 30
    res, vm, expected, got, probs = _coming_and_going(ctx, run, name, {"reboot_every": every})
    if vm is None:
        return run.Outcome(name, probs, res.elapsed)
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


def test_guest_dies(ctx, run) -> "run.Outcome":
    name, every, hold = "guest_dies", 30, 20
    res, vm, expected, got, probs = _coming_and_going(ctx, run, name,
                                                      {"reboot_every": every, "hold": hold})
    if vm is None:
        return run.Outcome(name, probs, res.elapsed)
    # Each guest that left read `every` frames, gave back all but the `hold`
    # it kept, and left holding those; the last one, stopped at exit, gave
    # back what it read beyond `hold`.
    departed = vm["connects"] - 1
    last_read = len(got) - every * departed
    want_returned = (every - hold) * departed + max(0, last_read - hold)
    kept = vm["rx_packets"] - vm["returned"] - vm["reclaimed"]
    checks = [
        (departed >= 1, f"connects {vm['connects']}: no guest left"),
        (0 <= last_read < every, f"the last guest read {last_read} of at most {every - 1}"),
        (got[:every] == expected[:every], f"the first {every} frames are not its first {every}"),
        (vm["returned"] == want_returned,
         f"returned {vm['returned']}, expected {want_returned} ({every - hold} per guest that "
         f"left, {departed} left, the last read {last_read})"),
        (vm["reclaimed"] >= 1, "nothing taken back from the guests that left holding buffers"),
        # Only copies (in the guests' own pages) are neither returned nor taken back.
        (0 <= kept <= vm["copied"],
         f"{kept} delivered frames neither returned nor taken back, {vm['copied']} copied"),
        (vm["rx_packets"] + vm["dropped_no_credit"] + vm["dropped_disconnected"] == len(expected),
         f"delivered {vm['rx_packets']} + dropped {vm['dropped_no_credit']} + "
         f"{vm['dropped_disconnected']} != {len(expected)} frames meant for it"),
        (vm["bad_returns"] == 0 and vm["ring_errors"] == 0, "bad returns or ring errors"),
    ]
    probs += [f"{SCRIBBLER}: {msg}" for ok, msg in checks if not ok]
    note = (f"{SCRIBBLER}: {vm['connects']} guests, each left holding {hold}; "
            f"{vm['reclaimed']} taken back, {vm['returned']} returned")
    return run.Outcome(name, probs, res.elapsed, note)


def test_ring_scribble(ctx, run) -> "run.Outcome":
    name = "ring_scribble"
    scn, exp, files, res, st, probs = _run_with(ctx, run, name, {"scribble_after": READ_BEFORE})
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


EXHAUST_BUFFERS, EXHAUST_FRAMES, EXHAUST_BURST = 200, 600, 32


def _exhaustion_expected(sizes: list, copy_threshold: int) -> tuple:
    """What a stalled VM gets from net_pcap when the pool runs dry: the PMD
    reads a packet, then allocates; with no buffer left it counts rx_nombuf
    and ends the burst, the packet lost.  Copied frames free their buffer
    after the burst; remapped ones stay with the VM.  Returns (delivered
    frame indices, remapped count, rx_nombuf)."""
    free, i, delivered, remapped, nombuf = EXHAUST_BUFFERS, 0, [], 0, 0
    while i < len(sizes):
        burst = []
        while len(burst) < EXHAUST_BURST and i < len(sizes):
            if free == 0:
                nombuf += 1
                i += 1
                break
            free -= 1
            burst.append(i)
            i += 1
        for j in burst:
            if sizes[j] >= copy_threshold:
                remapped += 1
            else:
                free += 1
        delivered += burst
    return delivered, remapped, nombuf


def test_pool_exhaustion(ctx, run) -> "run.Outcome":
    name = "pool_exhaustion"
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    mac = "02:00:00:00:01:01"
    sizes = [100 if seq % 2 == 0 else 600 for seq in range(EXHAUST_FRAMES)]
    frames = [zcdgen.build_frame(name, seq, zcdgen.parse_mac(mac), sizes[seq])
              for seq in range(EXHAUST_FRAMES)]
    traffic = os.path.join(wd, "traffic.pcap")
    zcdgen.write_pcap(traffic, frames)
    sink = os.path.join(wd, "vm1.pcap")
    config = os.path.join(wd, "zcdemux.yaml")
    with open(config, "w") as fh:
        fh.write("ports:\n  - name: uplink\n"
                 f"    devargs: \"net_pcap0,rx_pcap={traffic}\"\n"
                 "hypervisor:\n  backend: sim\n"
                 f"dataplane:\n  buffers: {EXHAUST_BUFFERS}\n  rx_descriptors: 32\n"
                 f"  burst: {EXHAUST_BURST}\n  copy_threshold: 256\n"
                 f"vms:\n  - name: vm1\n    macs: [\"{mac}\"]\n    credits: 1024\n"
                 f"    sim:\n      sink: \"{sink}\"\n      stall: true\n")
    res, st, probs = run.run_for_stats(ctx, name, config, wd, ["--idle-exit", "300"])
    if st is None:
        return run.Outcome(name, probs, res.elapsed)
    try:
        got = [rec[4] for rec in zcdgen.read_pcap(sink).records]
    except (OSError, zcdgen.PcapError) as ex:
        return run.Outcome(name, probs + [f"sink: {ex}"], res.elapsed)
    delivered, remapped, nombuf = _exhaustion_expected(sizes, 256)
    vm = st["vms"][0]
    want = {
        "ports[0].rx_packets": (st["ports"][0]["rx_packets"], len(delivered)),
        "drops.pool_empty": (st["drops"]["pool_empty"], nombuf),
        "vm1.rx_packets": (vm["rx_packets"], len(delivered)),
        "vm1.remapped": (vm["remapped"], remapped),
        "vm1.copied": (vm["copied"], len(delivered) - remapped),
        "vm1.dropped_no_credit": (vm["dropped_no_credit"], 0),
        "vm1.reclaimed": (vm["reclaimed"], remapped),
    }
    probs += [f"{k}: expected {w}, actual {a}" for k, (a, w) in want.items() if a != w]
    if got != [frames[j] for j in delivered]:
        probs.append(f"vm1's sink: {len(got)} frames, not exactly the {len(delivered)} delivered")
    probs += run.check_pool(st)
    note = (f"{len(delivered)} delivered ({remapped} remapped and kept), {nombuf} counted as "
            "pool_empty")
    return run.Outcome(name, probs, res.elapsed, note)
