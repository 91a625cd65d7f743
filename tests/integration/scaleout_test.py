# SPDX-License-Identifier: BSD-3-Clause
"""Integration tests of scale-out, run by run.py: zcdemux polling with two lcores.

  two_lcores        the mixed scenario (every kind of frame, four VMs, no
                    stalled guest) split over two RX queues of one net_pcap
                    port (even frames in one capture, odd in the other), so
                    that both lcores hand frames to every VM at once;
  two_lcores_iommu  the same with the sim IOMMU backend in deferred mode, so
                    that both lcores also update one DMA table.

Each checks: exit status 0; two RX queues and two polling lcores announced;
every counter of the stats JSON exactly as the oracle says, and each lcore
received exactly its queue's frames; the pool whole;
every VM's sink holds exactly the oracle's frames byte for byte (as a
multiset: the two queues interleave at random) and, within each queue, in
the order the queue received them.  Then the same configuration with
iommu.check on must be refused with a clear message: the checker needs a
ledger that only one lcore changes.
"""

from __future__ import annotations

import collections
import json
import os

import zcdgen

NB_QUEUES = 2


def _queue_of(data: bytes) -> int:
    return zcdgen.seq_from_frame(data) % NB_QUEUES


def compare_sink_per_queue(vm: str, path: str, expected: list) -> list:
    """Same frames as expected, and the same order within each queue."""
    try:
        actual = [rec[4] for rec in zcdgen.read_pcap(path).records]
    except (zcdgen.PcapError, OSError) as ex:
        return [f"sink {vm}: {ex}"]
    want = [f.data for f in expected]
    probs = []
    missing = collections.Counter(want) - collections.Counter(actual)
    extra = collections.Counter(actual) - collections.Counter(want)
    if missing or extra:
        probs.append(f"sink {vm}: {len(actual)} frames, expected {len(want)}; "
                     f"{sum(missing.values())} expected frames missing, "
                     f"{sum(extra.values())} unexpected")
        return probs
    for q in range(NB_QUEUES):
        got = [d for d in actual if _queue_of(d) == q]
        exp = [d for d in want if _queue_of(d) == q]
        if got != exp:
            i = next(k for k in range(len(exp)) if got[k] != exp[k])
            probs.append(f"sink {vm}: queue {q}: frame {i} out of order (expected seq "
                         f"{zcdgen.seq_from_frame(exp[i])}, got seq {zcdgen.seq_from_frame(got[i])})")
    return probs


def _check_lcores(stats: str, nb_frames: int) -> list:
    """Each lcore received exactly its queue's frames."""
    try:
        with open(stats) as fh:
            lcores = json.load(fh).get("lcores")
    except (OSError, ValueError) as ex:
        return [f"stats JSON: {ex}"]
    want = [{"lcore": q, "rx_queue": q, "rx_packets": len(range(q, nb_frames, NB_QUEUES))}
            for q in range(NB_QUEUES)]
    return [] if lcores == want else [f"stats lcores: expected {want}, actual {lcores}"]


def test_two_lcores(ctx, run, name: str, iommu: dict | None) -> "run.Outcome":
    scn = zcdgen.sc_mixed(name=name, stall=False)
    if iommu is not None:
        scn.iommu = iommu["backend"]
        scn.iommu_opts = {k: v for k, v in iommu.items() if k != "backend"}
    exp = zcdgen.oracle(scn)
    wd = run.fresh_dir(os.path.join(ctx.work, name))
    files = zcdgen.write_scenario(scn, wd, exp)
    queues = [os.path.join(wd, f"queue{q}.pcap") for q in range(NB_QUEUES)]
    for q, path in enumerate(queues):
        zcdgen.write_pcap(path, scn.frames[q::NB_QUEUES])
    cfg = files["config_dict"]
    cfg["ports"][0]["devargs"] = "net_pcap0," + ",".join(f"rx_pcap={p}" for p in queues)
    config = os.path.join(wd, "config-2q.yaml")
    with open(config, "w") as fh:
        fh.write(zcdgen.yaml_dump(cfg))
    stats = os.path.join(wd, "stats.json")
    eal = run.eal_args(name)
    eal[eal.index("-l") + 1] = "0-1"
    argv = [ctx.binary] + eal + ["--", "--config", config, "--stats-json", stats,
                                 "--idle-exit", "300"]
    res = run.run_daemon(ctx, argv, wd)
    probs = run.sanitizer_problems(res)
    if res.timed_out:
        return run.Outcome(name, [f"timed out; stderr tail:\n{run.tail(res.stderr)}"], res.elapsed)
    if res.rc != 0:
        probs.append(f"exit status {res.rc}, expected 0; stderr tail:\n{run.tail(res.stderr)}")
    for line in (f"{NB_QUEUES} rx queue(s)", f"{NB_QUEUES} polling lcore(s)"):
        if line not in res.stdout + res.stderr:
            probs.append(f"stdout does not say {line!r}:\n{run.tail(res.stdout)}")
    probs += run.compare_stats(stats, exp)
    probs += _check_lcores(stats, len(scn.frames))
    for v in scn.vms:
        probs += compare_sink_per_queue(v.name, files["sinks"][v.name], exp.per_vm[v.name])

    if iommu is not None:
        cfg["iommu"]["check"] = True
        with open(config, "w") as fh:
            fh.write(zcdgen.yaml_dump(cfg))
        refused = run.run_daemon(ctx, argv, wd)
        if refused.rc == 0 or "iommu.check needs a single polling lcore" not in refused.stdout + refused.stderr:
            probs.append(f"iommu.check with two lcores: exit {refused.rc}, expected a refusal "
                         f"naming iommu.check; output tail:\n{run.tail(refused.stdout + refused.stderr)}")
    return run.Outcome(name, probs, res.elapsed, f"{len(scn.frames)} frames over {NB_QUEUES} queues and lcores")
