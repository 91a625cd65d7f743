#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""zcd-testpmd-cmds.py — write a dpdk-testpmd command file that sends frames
to VMs of a zcdemux configuration.

Usage:
  zcd-testpmd-cmds.py CONFIG [--vm NAME]... [--mode txonly|burst]
                      [--size N] [--bursts N] [--port N] [-o FILE]

  --vm NAME    a VM to send to, its first MAC (repeatable; default: the first
               VM).  The k-th VM given is sent to out of testpmd port
               PORT + k: testpmd's txonly sends to one peer MAC per port, so
               one VM per port; run several ports for several VMs
               (several net_af_packet vdevs may share one interface)
  --mode       txonly: one UDP flow per port, until `stop` (default);
               burst: exactly BURSTS bursts of 32 txonly frames per port
               (`start tx_first`, then rxonly forwarding, which sends
               nothing), then stop: a bounded count
  --size N     frame size on the wire with the 4-byte FCS, 64..9022
               (default 64), tag included when every VM given is on a VLAN;
               testpmd has one frame length for all ports, so with tagged and
               untagged VMs together the tagged ones get 4 bytes more
  --bursts N   with --mode burst: bursts per port (default 10)
  --port N     testpmd port id of the first VM (default 0)
  -o FILE      write the file there (default: stdout)

A VM on a VLAN is tagged by the port's VLAN insertion offload (`tx_vlan
set`), which needs the port stopped: the file stops, tags and restarts that
port.  net_af_packet and most NICs insert tags; net_memif, net_ring and
net_pcap do not (testpmd then says "vlan insert is not supported").  Frames
longer than 2048 bytes need testpmd's --mbuf-size above the frame length
plus 128 (and net_af_packet's framesz above it too).

No flowgen mode: testpmd 22.11's flowgen ignores `set eth-peer` and sends
to 00:01:02:03:04:01, which zcdemux drops as unknown unicast.

Run it with
  dpdk-testpmd -l 0,1 --vdev net_af_packet0,iface=eth1 -- -i --cmdline-file FILE
then type `stop` for the per-port TX-packets, `quit` to leave.
Python 3.11 standard library; reads CONFIG with zcd-vms.py (beside this file).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

FCS = 4
VLAN_TAG = 4
BURST = 32
MBUF_DATA = 2048  # testpmd's default mbuf data room (--mbuf-size 2176 less the 128-byte headroom)


def _zcd_vms():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zcd-vms.py")
    spec = importlib.util.spec_from_file_location("zcd_vms", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def commands(config: str, entries: list, vms: list, mode: str, size: int, bursts: int,
             first_port: int) -> str:
    """The command file for sending to vms (names; [] = the first VM)."""
    firsts = {}
    for name, mac, vlan in entries:
        firsts.setdefault(name, (mac, vlan))
    names = vms or [entries[0][0]]
    for n in names:
        if n not in firsts:
            raise ValueError(f"{config}: no VM named {n}")
    if len(set(names)) != len(names):
        raise ValueError("--vm: a VM can be given once (one port per VM)")
    ports = [(first_port + k, n, *firsts[n]) for k, n in enumerate(names)]

    what = {"txonly": "one UDP flow per port until `stop`",
            "burst": f"exactly {bursts} bursts of {BURST} frames per port"}[mode]
    opts = " ".join(f"--vm {n}" for n in names) + f" --mode {mode} --size {size}"
    opts += (f" --bursts {bursts}" if mode == "burst" else "") + (f" --port {first_port}" if first_port else "")
    out = [f"# dpdk-testpmd --cmdline-file: {size}-byte frames (on the wire, FCS included) "
           f"to VMs of {config}, {what}.",
           f"# Written by: bench/pktgen/zcd-testpmd-cmds.py {config} {opts}",
           "# Run, e.g.: dpdk-testpmd -l 0,1 "
           + " ".join(f"--vdev net_af_packet{p},iface=IFACE" for p in range(len(names)))
           + " -- -i --cmdline-file FILE",
           "# then `stop` prints each port's TX-packets.  One VM per port:"]
    for port, name, mac, vlan in ports:
        out.append(f"#   port {port} -> {name} {mac}" + (f" on VLAN {vlan}" if vlan else " untagged"))
    longest = size - FCS
    if longest > MBUF_DATA:
        out.append(f"# {longest}-byte frames: start testpmd with --mbuf-size={longest + 128} or more.")
    tagged = [p for p in ports if p[3]]
    for port, _, _, vlan in tagged:
        # tx_vlan set is refused on a started port; the offload is applied at restart.
        out += [f"port stop {port}", f"tx_vlan set {port} {vlan}", f"port start {port}"]
    for port, _, mac, _ in ports:
        out.append(f"set eth-peer {port} {mac}")
    # txpkts is the frame testpmd builds; an inserted tag comes on top of it.
    # It is one length for all ports: with tagged and untagged VMs together,
    # the untagged ones get SIZE and the tagged ones 4 bytes more.
    all_tagged = len(tagged) == len(ports)
    if tagged and not all_tagged:
        out.append(f"# untagged ports send {size}-byte frames, tagged ports {size + VLAN_TAG} "
                   "(testpmd has one frame length for all ports)")
    out.append(f"set txpkts {size - FCS - (VLAN_TAG if all_tagged else 0)}")
    if mode == "burst":
        # tx_first runs the txonly engine for that many bursts before the
        # forwarding starts; rxonly then sends nothing more.
        out += [f"set burst {BURST}", "set fwd rxonly", f"start tx_first {bursts}", "stop"]
    else:
        out += [f"set fwd {mode}", "start"]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return 0
    ap = argparse.ArgumentParser(prog="zcd-testpmd-cmds.py", add_help=False,
                                 usage="%(prog)s CONFIG [--vm NAME]... [--mode txonly|burst] [--size N] [--bursts N] [--port N] [-o FILE] (--help: more)")
    ap.add_argument("config")
    ap.add_argument("--vm", action="append", default=[], metavar="NAME")
    ap.add_argument("--mode", choices=("txonly", "burst"), default="txonly")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--bursts", type=int, default=10)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("-o", dest="out", metavar="FILE")
    a = ap.parse_args(argv)
    if not 64 <= a.size <= 9022:
        ap.error(f"--size {a.size}: 64..9022")
    if a.bursts < 1 or a.port < 0:
        ap.error("--bursts: at least 1; --port: 0 or more")
    zv = _zcd_vms()
    try:
        entries = zv.load(a.config)
    except OSError as ex:
        print(f"zcd-testpmd-cmds: {a.config}: {ex.strerror}", file=sys.stderr)
        return 1
    except zv.ConfigError as ex:
        print(f"zcd-testpmd-cmds: {a.config}: {ex}", file=sys.stderr)
        return 2
    except zv.Unsupported as ex:
        print(f"zcd-testpmd-cmds: {a.config}: {ex}; install PyYAML: {zv.APT_YAML}", file=sys.stderr)
        return 1
    try:
        text = commands(a.config, entries, a.vm, a.mode, a.size, a.bursts, a.port)
    except ValueError as ex:
        print(f"zcd-testpmd-cmds: {ex}", file=sys.stderr)
        return 2
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
