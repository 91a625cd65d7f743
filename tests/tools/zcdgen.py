#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""zcdgen: deterministic traffic generator and independent oracle for zcdemux.

A *scenario* is a name, a daemon configuration and a list of Ethernet frames.
The oracle (``oracle()``) implements the demultiplexing rules of the spec on
its own -- it shares no code with the daemon -- and computes, for every VM,
the exact list of frames its simulated guest must write to its sink, and the
exact statistics the daemon must report.

Frames are built with explicit layouts: Ethernet header, an optional 802.1Q
(or 802.1ad) tag, then an IPv4/UDP, IPv6/UDP or opaque (ethertype 0x88b5)
payload.  Every frame carries its sequence number in its source MAC
(02:5a:<seq, 32 bits big-endian>) and, where room allows, the ASCII marker
``zcd:<scenario>:<seq>:`` at the start of its payload, so that a mismatch can
be traced back to the frame that caused it.

Everything is deterministic: the pseudo-random choices come from a
splitmix64 generator seeded from the scenario name, and pcap timestamps follow
a fixed scheme (1700000000 s + 10 us per frame).

CLI::

    zcdgen.py list                      scenario names, one a line
    zcdgen.py write NAME --out DIR      DIR/traffic.pcap, DIR/config.yaml (absolute
                                        paths, sinks under DIR/sinks/),
                                        DIR/expected/<vm>.pcap, DIR/expected/stats.json,
                                        DIR/expected/frames.txt (what happens to each frame)
    zcdgen.py demo --out DIR            DIR/traffic.pcap for configs/demo.yaml
                                        (and DIR/expected/stats.json)
    zcdgen.py show NAME                 per-frame verdicts and expected stats
    zcdgen.py selftest                  checks of the generator, pcap I/O and oracle

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

# --------------------------------------------------------------------------
# Constants of the spec

MIN_FRAME = 60  # shorter frames are runts
ETH_HLEN = 14
VLAN_HLEN = 4
DEFAULT_CREDITS = 256
COPY_THRESHOLD_DEFAULT = 256  # dataplane.copy_threshold when absent (config.h)
TPID_8021Q = 0x8100
TPID_8021AD = 0x88A8
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_OPAQUE = 0x88B5  # IEEE local experimental ethertype 1

PCAP_MAGIC = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_LINKTYPE_ETHERNET = 1
PCAP_SNAPLEN = 65535
TS_BASE_SEC = 1_700_000_000
TS_STEP_USEC = 10

BROADCAST = "ff:ff:ff:ff:ff:ff"

# --------------------------------------------------------------------------
# Deterministic PRNG (splitmix64): independent of Python's random module.

_M64 = (1 << 64) - 1


class Rng:
    def __init__(self, seed: int | str):
        if isinstance(seed, str):
            seed = zlib.crc32(seed.encode()) | (len(seed) << 32)
        self.state = seed & _M64

    def u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.u64() % n

    def randint(self, lo: int, hi: int) -> int:
        """Inclusive on both ends."""
        return lo + self.below(hi - lo + 1)

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def shuffle(self, lst: list) -> None:
        for i in range(len(lst) - 1, 0, -1):
            j = self.below(i + 1)
            lst[i], lst[j] = lst[j], lst[i]

    def weighted(self, pairs):
        total = sum(w for w, _ in pairs)
        r = self.below(total)
        for w, v in pairs:
            if r < w:
                return v
            r -= w
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------
# MAC helpers


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6 or any(len(p) != 2 for p in parts):
        raise ValueError(f"bad MAC {text!r}")
    return bytes(int(p, 16) for p in parts)


def mac_text(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def src_mac_for(seq: int) -> bytes:
    return bytes([0x02, 0x5A]) + seq.to_bytes(4, "big")


def seq_from_frame(data: bytes) -> Optional[int]:
    """The sequence number a generated frame carries in its source MAC."""
    if len(data) >= 12 and data[6:8] == b"\x02\x5a":
        return int.from_bytes(data[8:12], "big")
    return None


# --------------------------------------------------------------------------
# Frame construction


def _ip_checksum(hdr: bytes) -> int:
    s = 0
    for i in range(0, len(hdr), 2):
        s += (hdr[i] << 8) | hdr[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _fill(seq: int, n: int) -> bytes:
    start = (seq * 7) & 0xFF
    return bytes((start + i) & 0xFF for i in range(n))


def build_frame(
    scenario: str,
    seq: int,
    dst: bytes,
    length: int,
    *,
    vid: Optional[int] = None,
    pcp: int = 0,
    dei: int = 0,
    tpid: int = TPID_8021Q,
    l3: str = "ipv4",
) -> bytes:
    """Exactly `length` bytes (no FCS).

    vid None: no tag.  Otherwise a 4-byte tag (TPID tpid, TCI pcp/dei/vid)
    follows the source MAC; vid may be 0 (priority tag) up to 4095.
    l3: "ipv4" (IPv4/UDP), "ipv6" (IPv6/UDP) or "opaque" (ethertype 0x88b5).
    Frames shorter than their headers are the headers cut short (runts).
    """
    l2 = bytearray(dst + src_mac_for(seq))
    if vid is not None:
        tci = ((pcp & 7) << 13) | ((dei & 1) << 12) | (vid & 0xFFF)
        l2 += struct.pack("!HH", tpid, tci)
    l2len = len(l2) + 2
    l3len = max(0, length - l2len)
    marker = f"zcd:{scenario}:{seq}:".encode()
    if l3 == "ipv4":
        l2 += struct.pack("!H", ETHERTYPE_IPV4)
        if dst == b"\xff" * 6:
            ip_dst = bytes([255, 255, 255, 255])
        elif dst[:3] == b"\x01\x00\x5e":
            ip_dst = bytes([239, dst[3] & 0x7F, dst[4], dst[5]])
        else:
            ip_dst = bytes([198, 19, (seq >> 8) & 0xFF, seq & 0xFF])
        total = min(l3len, 0xFFFF)
        ip = bytearray(
            struct.pack(
                "!BBHHHBBH4s4s",
                0x45, 0, total, seq & 0xFFFF, 0x4000, 64, 17, 0,
                bytes([198, 18, 0, 1]), ip_dst,
            )
        )
        struct.pack_into("!H", ip, 10, _ip_checksum(bytes(ip)))
        udp = struct.pack("!HHHH", 40000 + (seq % 20000), 5000, max(0, total - 20) & 0xFFFF, 0)
        hdr = bytes(l2) + bytes(ip) + udp
    elif l3 == "ipv6":
        l2 += struct.pack("!H", ETHERTYPE_IPV6)
        if dst[:2] == b"\x33\x33":
            ip_dst = bytes([0xFF, 0x02]) + bytes(10) + dst[2:6]
        else:
            ip_dst = bytes([0xFD, 0]) + bytes(10) + seq.to_bytes(4, "big")
        plen = max(0, min(l3len, 0xFFFF + 40) - 40)
        ip = struct.pack("!IHBB16s16s", 0x60000000, plen, 17, 1,
                         bytes([0xFE, 0x80]) + bytes(10) + seq.to_bytes(4, "big"), ip_dst)
        udp = struct.pack("!HHHH", 40000 + (seq % 20000), 5000, plen & 0xFFFF, 0)
        hdr = bytes(l2) + ip + udp
    elif l3 == "opaque":
        l2 += struct.pack("!H", ETHERTYPE_OPAQUE)
        hdr = bytes(l2)
    else:
        raise ValueError(f"unknown l3 {l3!r}")
    body = marker + _fill(seq, max(0, length - len(hdr) - len(marker)))
    data = (hdr + body)[:length]
    assert len(data) == length, (len(data), length)
    return data


@dataclass
class Frame:
    seq: int
    data: bytes
    desc: str

    def __len__(self):
        return len(self.data)


# --------------------------------------------------------------------------
# Scenarios


@dataclass
class VM:
    name: str
    macs: list  # MACs as written in the config (text)
    vlan: Optional[int] = None  # None = untagged
    credits: Optional[int] = None  # None = key absent (daemon default 256)
    stall: bool = False
    sink: bool = True
    hostile: bool = False  # every return comes with a duplicate, a stale and a forged one
    notify: Optional[str] = None  # None = key absent (event); "event" or "poll"

    @property
    def effective_credits(self) -> int:
        return DEFAULT_CREDITS if self.credits is None else self.credits


@dataclass
class Scenario:
    name: str
    doc: str
    vms: list
    mtu: Optional[int] = 1500  # None = key absent
    unknown_unicast: str = "drop"
    iommu: Optional[str] = None  # None = no iommu section
    iommu_opts: dict = field(default_factory=dict)  # more iommu keys (mode, check...)
    copy_threshold: Optional[int] = None  # None = key absent: the default applies
    frames: list = field(default_factory=list)

    # ---- frame helpers
    def add(self, dst, length, *, vid=None, pcp=0, dei=0, tpid=TPID_8021Q, l3=None, what=""):
        if isinstance(dst, str):
            dst = parse_mac(dst)
        if l3 is None:
            l3 = "ipv6" if dst[:2] == b"\x33\x33" else "ipv4"
        seq = len(self.frames)
        data = build_frame(self.name, seq, dst, length, vid=vid, pcp=pcp, dei=dei, tpid=tpid, l3=l3)
        tag = "untagged"
        if vid is not None:
            tag = f"{'8021q' if tpid == TPID_8021Q else f'tpid={tpid:#06x}'} vid={vid}"
            if pcp or dei:
                tag += f" pcp={pcp} dei={dei}"
        desc = f"{what + ' ' if what else ''}dst={mac_text(dst)} {tag} {l3} len={length}"
        f = Frame(seq, data, desc)
        self.frames.append(f)
        return f

    def vm(self, name) -> VM:
        for v in self.vms:
            if v.name == name:
                return v
        raise KeyError(name)

    def finalize(self) -> "Scenario":
        """Give every non-stalled VM enough credits for all it will be sent.

        The oracle is exact only when a non-stalled VM never runs out of
        credits (its guest returns buffers quickly, not instantly).  VMs
        with credits left unset keep the default (key absent) when it is
        enough, otherwise get an explicit power-of-two value.
        """
        counts = oracle(self, check_credits=False).delivered_counts
        for v in self.vms:
            if v.stall:
                continue
            n = counts[v.name]
            if v.credits is None and n > DEFAULT_CREDITS:
                c = 1
                while c < n:
                    c <<= 1
                v.credits = c
        oracle(self)  # validates
        return self

    # ---- config
    def config(self, traffic_path: str, sink_dir: str) -> dict:
        cfg = {
            "ports": [{"name": "uplink", "devargs": f"net_pcap0,rx_pcap={traffic_path}"}],
            "hypervisor": {"backend": "sim"},
        }
        if self.iommu is not None:
            cfg["iommu"] = {"backend": self.iommu, **self.iommu_opts}
        dp = {}
        if self.mtu is not None:
            dp["mtu"] = self.mtu
        dp["unknown_unicast"] = self.unknown_unicast
        if self.copy_threshold is not None:
            dp["copy_threshold"] = self.copy_threshold
        cfg["dataplane"] = dp
        vms = []
        for v in self.vms:
            d = {"name": v.name, "macs": list(v.macs)}
            if v.vlan is not None:
                d["vlan"] = v.vlan
            if v.credits is not None:
                d["credits"] = v.credits
            if v.notify is not None:
                d["notify"] = v.notify
            sim = {}
            if v.sink:
                sim["sink"] = os.path.join(sink_dir, f"{v.name}.pcap")
            sim["stall"] = v.stall
            if v.hostile:
                sim["hostile"] = True
            d["sim"] = sim
            vms.append(d)
        cfg["vms"] = vms
        return cfg


# --------------------------------------------------------------------------
# The oracle


class ScenarioError(Exception):
    """The scenario breaks an assumption the oracle needs to be exact."""


@dataclass
class Expected:
    per_vm: dict  # vm name -> list[Frame] in delivery order
    stats: dict  # exact expected stats (the keys the spec lists)
    verdicts: list  # per frame: human-readable fate
    delivered_counts: dict  # vm name -> frames meant for it (incl. credit drops)


def oracle(scn: Scenario, check_credits: bool = True) -> Expected:
    mtu = 1500 if scn.mtu is None else scn.mtu
    vms = scn.vms
    table = {}
    for i, v in enumerate(vms):
        for m in v.macs:
            mac = parse_mac(m)
            if mac[0] & 1:
                raise ScenarioError(f"{v.name}: {m} is not unicast")
            key = (v.vlan, mac)
            if key in table:
                raise ScenarioError(f"duplicate (vlan, mac) {key}")
            table[key] = i
    if scn.unknown_unicast == "drop":
        unknown_vm = None
    else:
        names = [v.name for v in vms]
        if scn.unknown_unicast not in names:
            raise ScenarioError(f"unknown_unicast names no VM: {scn.unknown_unicast}")
        unknown_vm = names.index(scn.unknown_unicast)

    port = {"name": "uplink", "rx_packets": 0, "rx_bytes": 0}
    vst = [
        {"name": v.name, "rx_packets": 0, "rx_bytes": 0, "remapped": 0, "copied": 0,
         "dropped_no_credit": 0, "returned": 0, "bad_returns": 0, "residue_bytes": 0,
         "forged_returns": 0, "stale_returns": 0, "duplicate_returns": 0}
        for v in vms
    ]
    drops = {"runt": 0, "oversize": 0, "unknown_unicast": 0, "pool_empty": 0, "no_receiver": 0}
    per_vm = {v.name: [] for v in vms}
    meant = {v.name: 0 for v in vms}
    held = [0] * len(vms)
    verdicts = []

    for f in scn.frames:
        d = f.data
        n = len(d)
        port["rx_packets"] += 1
        port["rx_bytes"] += n
        if n < MIN_FRAME:
            drops["runt"] += 1
            verdicts.append("drop runt")
            continue
        tagged = d[12] == 0x81 and d[13] == 0x00
        limit = mtu + (ETH_HLEN + VLAN_HLEN if tagged else ETH_HLEN)
        if n > limit:
            drops["oversize"] += 1
            verdicts.append(f"drop oversize (limit {limit})")
            continue
        vid = None
        if tagged:
            vid = ((d[14] << 8) | d[15]) & 0x0FFF
            if vid == 0:
                vid = None  # priority tag: untagged for demux
        dst = bytes(d[0:6])
        if dst[0] & 1:
            receivers = [i for i, v in enumerate(vms) if v.vlan == vid]
            if not receivers:
                drops["no_receiver"] += 1
                verdicts.append(f"drop no_receiver (vlan {vid or 'untagged'})")
                continue
            mode = "copied"
        else:
            i = table.get((vid, dst))
            if i is None:
                if unknown_vm is None:
                    drops["unknown_unicast"] += 1
                    verdicts.append(f"drop unknown_unicast (vlan {vid or 'untagged'})")
                    continue
                i = unknown_vm
            receivers = [i]
            # Unicast shorter than copy_threshold is copied, the rest remapped.
            threshold = COPY_THRESHOLD_DEFAULT if scn.copy_threshold is None else scn.copy_threshold
            mode = "copied" if n < threshold else "remapped"
        fate = []
        for i in receivers:
            v = vms[i]
            meant[v.name] += 1
            if v.stall and held[i] >= v.effective_credits:
                vst[i]["dropped_no_credit"] += 1
                fate.append(f"{v.name}:no_credit")
                continue
            held[i] += 1
            vst[i]["rx_packets"] += 1
            vst[i]["rx_bytes"] += n
            vst[i][mode] += 1
            per_vm[v.name].append(f)
            fate.append(f"{v.name}#{len(per_vm[v.name]) - 1}")
        verdicts.append(f"{mode} -> " + " ".join(fate))

    for i, v in enumerate(vms):
        if v.hostile and not v.stall:
            # Each of the three extra returns is rejected; only those naming
            # pool buffers are told apart (copy pages are just "bad").
            vst[i]["bad_returns"] = 3 * vst[i]["rx_packets"]
            for k in ("forged_returns", "stale_returns", "duplicate_returns"):
                vst[i][k] = vst[i]["remapped"]
        if not v.stall:
            vst[i]["returned"] = vst[i]["rx_packets"]
            if check_credits and vst[i]["rx_packets"] > v.effective_credits:
                raise ScenarioError(
                    f"{scn.name}: {v.name} is sent {vst[i]['rx_packets']} frames but has only "
                    f"{v.effective_credits} credits: the result would depend on timing")

    stats = {"ports": [port], "vms": vst, "drops": drops, "pool": {"pages": ">0", "free": "==pages"}}
    return Expected(per_vm, stats, verdicts, meant)


# --------------------------------------------------------------------------
# pcap I/O (classic libpcap format)


def pcap_bytes(frames, ts_base=TS_BASE_SEC, step_usec=TS_STEP_USEC) -> bytes:
    out = bytearray(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, PCAP_SNAPLEN,
                                PCAP_LINKTYPE_ETHERNET))
    for k, f in enumerate(frames):
        data = f.data if isinstance(f, Frame) else bytes(f)
        if len(data) > PCAP_SNAPLEN:
            raise ValueError("frame larger than snaplen")
        usec = k * step_usec
        out += struct.pack("<IIII", ts_base + usec // 1_000_000, usec % 1_000_000, len(data), len(data))
        out += data
    return bytes(out)


def write_pcap(path, frames) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(pcap_bytes(frames))
    os.replace(tmp, path)


class PcapError(Exception):
    pass


@dataclass
class PcapFile:
    magic: int
    byteorder: str
    version: tuple
    snaplen: int
    linktype: int
    records: list  # (ts_sec, ts_frac, caplen, origlen, data)


def read_pcap(path) -> PcapFile:
    with open(path, "rb") as fh:
        raw = fh.read()
    return parse_pcap(raw)


def parse_pcap(raw: bytes) -> PcapFile:
    if len(raw) < 24:
        raise PcapError(f"file too short for a pcap header ({len(raw)} bytes)")
    (m,) = struct.unpack("<I", raw[:4])
    if m in (PCAP_MAGIC, PCAP_MAGIC_NS):
        bo = "<"
    else:
        (m,) = struct.unpack(">I", raw[:4])
        if m not in (PCAP_MAGIC, PCAP_MAGIC_NS):
            raise PcapError(f"bad magic {raw[:4].hex()}")
        bo = ">"
    _, vmaj, vmin, _zone, _sig, snaplen, linktype = struct.unpack(bo + "IHHiIII", raw[:24])
    recs = []
    off = 24
    while off < len(raw):
        if off + 16 > len(raw):
            raise PcapError(f"truncated record header at offset {off} (record {len(recs)})")
        ts, frac, caplen, origlen = struct.unpack(bo + "IIII", raw[off:off + 16])
        off += 16
        if off + caplen > len(raw):
            raise PcapError(f"truncated record data at offset {off} (record {len(recs)}, caplen {caplen})")
        recs.append((ts, frac, caplen, origlen, raw[off:off + caplen]))
        off += caplen
    return PcapFile(m, bo, (vmaj, vmin), snaplen, linktype & 0xFFFF, recs)


# --------------------------------------------------------------------------
# Minimal YAML emitter (block style; the subset the configs need)


def _yscalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    raise TypeError(type(v))


def yaml_dump(obj, indent=0) -> str:
    lines = []
    _yemit(obj, indent, lines)
    return "\n".join(lines) + "\n"


def _yemit(obj, ind, lines):
    pad = " " * ind
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict):
                lines.append(f"{pad}{k}:")
                _yemit(v, ind + 2, lines)
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                lines.append(f"{pad}{k}:")
                _yemit(v, ind + 2, lines)
            elif isinstance(v, list):
                lines.append(f"{pad}{k}: [" + ", ".join(_yscalar(x) for x in v) + "]")
            else:
                lines.append(f"{pad}{k}: {_yscalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            sub = []
            _yemit(item, ind + 2, sub)
            first = sub[0]
            sub[0] = pad + "- " + first[ind + 2:]
            lines.extend(sub)
    else:
        raise TypeError(type(obj))


# --------------------------------------------------------------------------
# Minimal YAML reader (only to check our own configs in selftest)


def _strip_comment(s: str) -> str:
    q = None
    for i, c in enumerate(s):
        if q:
            if c == "\\" and q == '"':
                continue
            if c == q:
                q = None
        elif c in "\"'":
            q = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip()
    return s.rstrip()


def _split_flow(s: str) -> list:
    parts, cur, q, depth = [], "", None, 0
    for c in s:
        if q:
            cur += c
            if c == q:
                q = None
        elif c in "\"'":
            q = c
            cur += c
        elif c in "[{":
            depth += 1
            cur += c
        elif c in "]}":
            depth -= 1
            cur += c
        elif c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _yparse_scalar(s: str):
    s = s.strip()
    if s.startswith("["):
        assert s.endswith("]"), s
        return [_yparse_scalar(p) for p in _split_flow(s[1:-1])]
    if s.startswith("{"):
        assert s.endswith("}"), s
        out = {}
        for p in _split_flow(s[1:-1]):
            k, v = p.split(":", 1)
            out[k.strip()] = _yparse_scalar(v)
        return out
    if s.startswith('"'):
        return json.loads(s)
    if s.startswith("'"):
        return s[1:-1].replace("''", "'")
    if s in ("true", "false"):
        return s == "true"
    if s in ("", "~", "null"):
        return None
    try:
        return int(s)
    except ValueError:
        return s


def yaml_load(text: str):
    lines = []
    for raw in text.splitlines():
        s = _strip_comment(raw)
        if not s.strip() or s.strip() == "---":
            continue
        ind = len(s) - len(s.lstrip(" "))
        lines.append([ind, s.strip()])

    def block(i, ind):
        if lines[i][1].startswith("- ") or lines[i][1] == "-":
            out = []
            while i < len(lines) and lines[i][0] == ind and lines[i][1].startswith("-"):
                rest = lines[i][1][1:].strip()
                if not rest:
                    v, i = block(i + 1, lines[i + 1][0])
                elif ":" in rest and not rest.startswith(("[", "{", '"', "'")):
                    lines[i] = [ind + 2, rest]
                    v, i = block(i, ind + 2)
                else:
                    v, i = _yparse_scalar(rest), i + 1
                out.append(v)
            return out, i
        out = {}
        while i < len(lines) and lines[i][0] == ind:
            k, _, rest = lines[i][1].partition(":")
            k = k.strip()
            if rest.strip():
                out[k] = _yparse_scalar(rest)
                i += 1
            elif i + 1 < len(lines) and lines[i + 1][0] > ind:
                out[k], i = block(i + 1, lines[i + 1][0])
            elif i + 1 < len(lines) and lines[i + 1][0] == ind and lines[i + 1][1].startswith("-"):
                out[k], i = block(i + 1, ind)
            else:
                out[k] = None
                i += 1
        return out, i

    if not lines:
        return None
    v, i = block(0, lines[0][0])
    if i != len(lines):
        raise ValueError(f"yaml_load: could not parse line {lines[i]}")
    return v


# --------------------------------------------------------------------------
# Scenario builders

UNICAST_SIZES = [60, 61, 62, 63, 64, 65, 66, 100, 127, 128, 129, 255, 256, 257, 511, 512,
                 513, 1000, 1023, 1024, 1025, 1400, 1499, 1500, 1501, 1512, 1513, 1514]


def vm_mac(vm: int, k: int) -> str:
    return f"02:00:00:00:{vm:02x}:{k:02x}"


def unknown_mac(k: int) -> str:
    return f"02:00:00:ff:{(k >> 8) & 0xFF:02x}:{k & 0xFF:02x}"


def _size(rng: Rng, k: int, limit: int) -> int:
    """Interesting sizes first, then random ones up to limit."""
    if k < len(UNICAST_SIZES) and UNICAST_SIZES[k] <= limit:
        return UNICAST_SIZES[k]
    return rng.randint(MIN_FRAME, limit)


def sc_unicast() -> Scenario:
    name = "unicast"
    vms = [
        VM("vm1", [vm_mac(1, 1), vm_mac(1, 2), vm_mac(1, 3)]),
        VM("vm2", [vm_mac(2, 1), "02:00:00:00:0A:BC"]),  # upper-case hex in the config
        VM("vm3", [vm_mac(3, 1)], vlan=7),
        VM("vm4", [vm_mac(4, 1), vm_mac(4, 2), vm_mac(4, 3), vm_mac(4, 4)]),
    ]
    s = Scenario(name, "several VMs, several MACs each, sizes 60..1514", vms)
    rng = Rng(name)
    work = []
    for v in vms:
        for k in range(200):
            mac = v.macs[k % len(v.macs)]
            vid = v.vlan
            limit = 1500 + (18 if vid is not None else 14)
            work.append((mac.lower(), _size(rng, k, limit), vid, rng.choice(["ipv4", "ipv4", "opaque"])))
    rng.shuffle(work)
    for mac, size, vid, l3 in work:
        s.add(mac, size, vid=vid, l3=l3, what="uc")
    return s.finalize()


def sc_vlans() -> Scenario:
    m1, m2 = vm_mac(1, 1), vm_mac(2, 1)
    vms = [
        VM("vm_untagged", [m1]),
        VM("vm_v10", [m1], vlan=10),  # same MAC, VLAN 10
        VM("vm_v20", [m1, m2], vlan=20),  # same MAC, VLAN 20
        VM("vm_v10b", [m2], vlan=10),
        VM("vm_v4094", [m2], vlan=4094),
    ]
    s = Scenario("vlans", "same MAC on several VLANs, priority tags, 802.1ad, tags preserved", vms)
    rng = Rng("vlans")
    cases = [
        # (dst, vid, pcp, dei, tpid, max_len, what)
        (m1, None, 0, 0, TPID_8021Q, 1514, "untagged->vm_untagged"),
        (m1, 0, 0, 0, TPID_8021Q, 1518, "prio-tag vid0->vm_untagged"),
        (m1, 0, 5, 0, TPID_8021Q, 1518, "prio-tag pcp5->vm_untagged"),
        (m1, 10, 0, 0, TPID_8021Q, 1518, "vid10->vm_v10"),
        (m1, 10, 3, 1, TPID_8021Q, 1518, "vid10 pcp3 dei->vm_v10"),
        (m1, 20, 7, 0, TPID_8021Q, 1518, "vid20->vm_v20"),
        (m2, 20, 0, 0, TPID_8021Q, 1518, "vid20->vm_v20"),
        (m2, 10, 0, 0, TPID_8021Q, 1518, "vid10->vm_v10b"),
        (m2, 4094, 0, 0, TPID_8021Q, 1518, "vid4094->vm_v4094"),
        (m1, None, 0, 0, TPID_8021AD, 1514, "802.1ad outer = untagged->vm_untagged"),
        (m1, 30, 0, 0, TPID_8021Q, 1518, "vid30 unknown"),
        (m1, 4095, 0, 0, TPID_8021Q, 1518, "vid4095 unknown"),
        (m2, None, 0, 0, TPID_8021Q, 1514, "untagged m2 unknown"),
        (m2, 0, 0, 0, TPID_8021Q, 1518, "prio-tag m2 unknown"),
    ]
    work = []
    for c in cases:
        dst, vid, pcp, dei, tpid, maxlen, what = c
        sizes = [60, 61, 64, maxlen - 1, maxlen] + [rng.randint(60, maxlen) for _ in range(15)]
        for size in sizes:
            work.append((dst, size, vid, pcp, dei, tpid, what))
    rng.shuffle(work)
    for dst, size, vid, pcp, dei, tpid, what in work:
        if tpid == TPID_8021AD:
            s.add(dst, size, vid=7, tpid=TPID_8021AD, l3="opaque", what=what)
        else:
            s.add(dst, size, vid=vid, pcp=pcp, dei=dei, what=what)
    return s.finalize()


MCAST_V4 = ["01:00:5e:00:00:01", "01:00:5e:00:00:fb", "01:00:5e:7f:ff:fa"]
MCAST_V6 = ["33:33:00:00:00:01", "33:33:00:00:00:fb", "33:33:ff:00:00:05"]
MCAST_OTHER = ["01:80:c2:00:00:0e", "03:00:00:00:00:01"]


def sc_flood() -> Scenario:
    vms = [
        VM("vm1", [vm_mac(1, 1)]),
        VM("vm2", [vm_mac(2, 1)]),
        VM("vm3", [vm_mac(3, 1)], vlan=10),
        VM("vm4", [vm_mac(4, 1)], vlan=10),
        VM("vm5", [vm_mac(5, 1)], vlan=20),
    ]
    s = Scenario("flood", "broadcast and IPv4/IPv6 multicast per VLAN, a VLAN without VMs", vms,
                 iommu="none")
    rng = Rng("flood")
    work = []
    for vid in (None, 0, 10, 20, 30):
        limit = 1518 if vid is not None else 1514
        dsts = [BROADCAST] * 12 + MCAST_V4 * 4 + MCAST_V6 * 4 + MCAST_OTHER
        for k, dst in enumerate(dsts):
            work.append((dst, _size(rng, k, limit), vid, "flood"))
    # some unicast in between
    for v in vms:
        for k in range(12):
            limit = 1518 if v.vlan is not None else 1514
            work.append((v.macs[0], rng.randint(60, limit), v.vlan, "uc"))
    rng.shuffle(work)
    for dst, size, vid, what in work:
        s.add(dst, size, vid=vid, what=what)
    return s.finalize()


def sc_runts() -> Scenario:
    vms = [VM("vm1", [vm_mac(1, 1)]), VM("vm2", [vm_mac(2, 1)], vlan=10)]
    s = Scenario("runts", "frames of 1..59 bytes dropped, 60 delivered", vms)
    for size in range(1, 60):
        s.add(vm_mac(1, 1), size, what="runt uc")
        s.add(vm_mac(2, 1), size, vid=10, what="runt tagged uc")
        s.add(BROADCAST, size, what="runt bcast")
        s.add(vm_mac(1, 1), 60 + size % 5, what="uc")
    for size in (14, 18, 59):
        s.add(unknown_mac(1), size, what="runt unknown")
        s.add(BROADCAST, size, vid=30, what="runt bcast novm")
    s.add(vm_mac(2, 1), 60, vid=10, what="uc")
    s.add(BROADCAST, 60, vid=10, what="bcast")
    return s.finalize()


def sc_oversize(name="oversize", mtu=1500) -> Scenario:
    vms = [VM("vm1", [vm_mac(1, 1)]), VM("vm2", [vm_mac(2, 1)], vlan=10)]
    s = Scenario(name, f"frame length limits with mtu {mtu}", vms, mtu=mtu)
    u, t = mtu + 14, mtu + 18
    big = [b for b in (2000, 4096, 8192, 9000, 9014, 9018, 9022, 9216) if b > t]
    for rep in range(3):
        s.add(vm_mac(1, 1), u, what="max untagged")
        s.add(vm_mac(1, 1), u + 1, what="oversize untagged")
        s.add(vm_mac(2, 1), t, vid=10, what="max tagged")
        s.add(vm_mac(2, 1), t + 1, vid=10, what="oversize tagged")
        s.add(vm_mac(1, 1), t, vid=0, what="max prio-tagged")
        s.add(vm_mac(1, 1), t + 1, vid=0, what="oversize prio-tagged")
        s.add(vm_mac(1, 1), u, vid=3, tpid=TPID_8021AD, l3="opaque", what="max 802.1ad")
        s.add(vm_mac(1, 1), u + 1, vid=3, tpid=TPID_8021AD, l3="opaque", what="oversize 802.1ad")
        s.add(BROADCAST, u, what="max bcast")
        s.add(BROADCAST, u + 1, what="oversize bcast")
        s.add(BROADCAST, t + 1, vid=10, what="oversize tagged bcast")
        s.add(BROADCAST, t + 1, vid=30, what="oversize bcast novm")
        s.add(unknown_mac(7), u + 1, what="oversize unknown")
        s.add(vm_mac(1, 1), t, what="oversize untagged (tagged limit)")
        for b in big:
            s.add(vm_mac(1, 1), b, what="big")
            s.add(vm_mac(2, 1), b, vid=10, what="big tagged")
        for k in range(10):
            s.add(vm_mac(1, 1), 60 + 37 * k + rep, what="uc")
            s.add(vm_mac(2, 1), 61 + 41 * k + rep, vid=10, what="uc")
    return s.finalize()


def _unknown_frames(s: Scenario, rng: Rng, known: list):
    """Unmatched unicast on every kind of VLAN, mixed with matched frames."""
    work = []
    for k in range(30):
        work.append((unknown_mac(k), None, "unknown untagged"))
        work.append((unknown_mac(k), 10, "unknown vid10"))
        work.append((unknown_mac(k), 99, "unknown vid99"))
        work.append((unknown_mac(k), 0, "unknown prio-tag"))
    for k in range(10):
        work.append((vm_mac(1, 1), 10, "vm1 mac on vid10 (wrong vlan)"))
        work.append((vm_mac(2, 1), None, "vm2 mac untagged (wrong vlan)"))
        work.append((vm_mac(2, 1), 0, "vm2 mac prio-tag (wrong vlan)"))
        work.append((vm_mac(3, 1), 99, "vm3 mac on vid99 (wrong vlan)"))
    for mac, vid in known:
        for k in range(20):
            work.append((mac, vid, "known"))
    for k in range(5):
        work.append((BROADCAST, 99, "bcast vid99 novm"))
        work.append((BROADCAST, None, "bcast"))
    rng.shuffle(work)
    for mac, vid, what in work:
        limit = 1518 if vid is not None else 1514
        s.add(mac, rng.randint(60, limit), vid=vid, what=what)


def sc_unknown_unicast() -> Scenario:
    vms = [VM("vm1", [vm_mac(1, 1)]), VM("vm2", [vm_mac(2, 1)], vlan=10),
           VM("vm3", [vm_mac(3, 1)], vlan=20)]
    s = Scenario("unknown_unicast", "unmatched unicast dropped", vms, unknown_unicast="drop")
    _unknown_frames(s, Rng("unknown_unicast"), [(vm_mac(1, 1), None), (vm_mac(2, 1), 10),
                                                 (vm_mac(3, 1), 20)])
    return s.finalize()


def sc_unknown_to_vm() -> Scenario:
    vms = [VM("vm1", [vm_mac(1, 1)]), VM("vm2", [vm_mac(2, 1)], vlan=10),
           VM("vm3", [vm_mac(3, 1)], vlan=20)]
    s = Scenario("unknown_to_vm", "unmatched unicast from any VLAN goes to vm3 (VLAN 20)", vms,
                 unknown_unicast="vm3")
    _unknown_frames(s, Rng("unknown_to_vm"), [(vm_mac(1, 1), None), (vm_mac(2, 1), 10),
                                               (vm_mac(3, 1), 20)])
    return s.finalize()


def sc_stall() -> Scenario:
    name = "stall"
    vms = [
        VM("vm1", [vm_mac(1, 1)], credits=8, stall=True),
        VM("vm2", [vm_mac(2, 1)]),
        VM("vm3", [vm_mac(3, 1), vm_mac(3, 2)]),
    ]
    s = Scenario(name, "stalled vm1 (credits 8) gets its first 8 frames only", vms)
    rng = Rng(name)
    work = [("uc1", k) for k in range(100)] + [("bc", k) for k in range(20)]
    work += [("uc2", k) for k in range(60)] + [("uc3", k) for k in range(60)]
    rng.shuffle(work)
    # make sure a broadcast is among vm1's first 8 frames (after two unicasts)
    vm1_idx = [i for i, (kind, _) in enumerate(work) if kind in ("uc1", "bc")]
    first_bc = next(i for i in vm1_idx if work[i][0] == "bc")
    if first_bc > vm1_idx[2]:
        work[first_bc], work[vm1_idx[2]] = work[vm1_idx[2]], work[first_bc]
    for kind, k in work:
        size = _size(rng, k, 1514)
        if kind == "uc1":
            s.add(vm_mac(1, 1), size, what="uc vm1")
        elif kind == "uc2":
            s.add(vm_mac(2, 1), size, what="uc vm2")
        elif kind == "uc3":
            s.add(vm_mac(3, 1 + k % 2), size, what="uc vm3")
        else:
            s.add(BROADCAST, size, what="bcast")
    return s.finalize()


def sc_stall_unknown() -> Scenario:
    """Several stalled VMs, one of them the unknown-unicast target; a VM without a sink."""
    vms = [
        VM("vm1", [vm_mac(1, 1)], sink=False),
        VM("vm2", [vm_mac(2, 1)], vlan=10, credits=5, stall=True),
        VM("vm3", [vm_mac(3, 1)], credits=300, stall=True),  # stalls but never runs out
        VM("vm4", [vm_mac(4, 1)], vlan=10, credits=1, stall=True),
    ]
    s = Scenario("stall_unknown", "stalled VMs incl. the unknown-unicast target (credits 5), "
                 "credits 1, a stalled VM that never runs out, a VM without sink", vms,
                 unknown_unicast="vm2")
    rng = Rng("stall_unknown")
    work = [("uc", vm_mac(1, 1), None)] * 40 + [("uc", vm_mac(3, 1), None)] * 40
    work += [("uc", vm_mac(4, 1), 10)] * 10 + [("uc", vm_mac(2, 1), 10)] * 10
    work += [("unknown", unknown_mac(k), rng.choice([None, 0, 10, 20])) for k in range(30)]
    work += [("bc", BROADCAST, None)] * 10 + [("bc", BROADCAST, 10)] * 10
    rng.shuffle(work)
    for what, dst, vid in work:
        s.add(dst, rng.randint(60, 1514 if vid is None else 1518), vid=vid, what=what)
    return s.finalize()


def sc_jumbo() -> Scenario:
    name = "jumbo"
    vms = [VM("vm1", [vm_mac(1, 1)]), VM("vm2", [vm_mac(2, 1)], vlan=100),
           VM("vm3", [vm_mac(3, 1)], vlan=100)]
    s = Scenario(name, "mtu 9000", vms, mtu=9000)
    rng = Rng(name)
    fixed = [
        (vm_mac(1, 1), 1514, None, "uc"),
        (vm_mac(1, 1), 4000, None, "uc"),
        (vm_mac(1, 1), 4096, None, "uc"),
        (vm_mac(1, 1), 4097, None, "uc"),
        (vm_mac(1, 1), 8192, None, "uc"),
        (vm_mac(1, 1), 9014, None, "max untagged"),
        (vm_mac(1, 1), 9015, None, "oversize untagged"),
        (vm_mac(1, 1), 9018, None, "oversize untagged (tagged limit)"),
        (vm_mac(1, 1), 9019, None, "oversize untagged"),
        (vm_mac(2, 1), 9018, 100, "max tagged"),
        (vm_mac(2, 1), 9019, 100, "oversize tagged"),
        (vm_mac(2, 1), 9022, 100, "oversize tagged"),
        (vm_mac(1, 1), 9018, 0, "max prio-tagged"),
        (vm_mac(1, 1), 9019, 0, "oversize prio-tagged"),
        (BROADCAST, 9014, None, "max bcast"),
        (BROADCAST, 9018, 100, "max tagged bcast"),
        (BROADCAST, 9019, 100, "oversize tagged bcast"),
        (MCAST_V6[0], 8000, 100, "mcast"),
        (vm_mac(3, 1), 9018, 100, "max tagged"),
    ]
    work = fixed * 4
    for k in range(120):
        dst, vid = rng.choice([(vm_mac(1, 1), None), (vm_mac(2, 1), 100), (vm_mac(3, 1), 100),
                               (BROADCAST, None), (BROADCAST, 100)])
        limit = 9018 if vid is not None else 9014
        size = rng.choice([rng.randint(60, 200), rng.randint(60, limit), rng.randint(limit - 100, limit)])
        work.append((dst, size, vid, "rand"))
    rng.shuffle(work)
    for dst, size, vid, what in work:
        s.add(dst, size, vid=vid, what=what)
    return s.finalize()


def sc_mixed(nframes=3000, name="mixed", stall=True) -> Scenario:
    """Every kind of frame; vm4 stalls unless stall is False (then which of
    its frames it gets no longer depends on arrival order)."""
    vms = [
        VM("vm1", [vm_mac(1, 1), vm_mac(1, 2), vm_mac(1, 3)]),
        VM("vm2", [vm_mac(2, 1), vm_mac(2, 2)], vlan=10),
        VM("vm3", [vm_mac(3, 1)], vlan=10),
        VM("vm4", [vm_mac(4, 1)], vlan=20, credits=40 if stall else None, stall=stall),
    ]
    s = Scenario(name, "everything interleaved", vms)
    rng = Rng(name)
    kinds = [(22, "uc1"), (10, "uc2"), (10, "uc3"), (8, "uc4"), (3, "uc1prio"), (2, "uc1qinq"),
             (10, "bcast"), (6, "mcast4"), (4, "mcast6"), (6, "unknown"), (4, "runt"), (4, "oversize")]
    vlans = [None, 0, 10, 20, 30]
    for k in range(nframes):
        kind = rng.weighted(kinds)
        size1514 = rng.choice([60, 61, 64, 128, 1514, rng.randint(60, 1514), rng.randint(60, 1514)])
        size1518 = rng.choice([60, 1518, rng.randint(60, 1518), rng.randint(60, 1518)])
        if kind == "uc1":
            s.add(rng.choice(vms[0].macs), size1514, l3=rng.choice(["ipv4", "ipv6", "opaque"]), what=kind)
        elif kind == "uc2":
            s.add(rng.choice(vms[1].macs), size1518, vid=10, what=kind)
        elif kind == "uc3":
            s.add(vms[2].macs[0], size1518, vid=10, pcp=rng.below(8), what=kind)
        elif kind == "uc4":
            s.add(vms[3].macs[0], size1518, vid=20, what=kind)
        elif kind == "uc1prio":
            s.add(vms[0].macs[0], size1518, vid=0, pcp=rng.below(8), what=kind)
        elif kind == "uc1qinq":
            s.add(vms[0].macs[1], size1514, vid=10, tpid=TPID_8021AD, l3="opaque", what=kind)
        elif kind in ("bcast", "mcast4", "mcast6"):
            vid = rng.choice(vlans)
            dst = {"bcast": BROADCAST, "mcast4": rng.choice(MCAST_V4), "mcast6": rng.choice(MCAST_V6)}[kind]
            s.add(dst, size1518 if vid is not None else size1514, vid=vid, what=kind)
        elif kind == "unknown":
            vid = rng.choice(vlans)
            s.add(unknown_mac(rng.below(50)), size1518 if vid is not None else size1514, vid=vid, what=kind)
        elif kind == "runt":
            vid = rng.choice(vlans)
            dst = rng.choice([vms[0].macs[0], BROADCAST, unknown_mac(1)])
            s.add(dst, rng.randint(1, 59), vid=vid, what=kind)
        elif kind == "oversize":
            vid = rng.choice(vlans)
            base = 1518 if vid is not None else 1514
            dst = rng.choice([vms[0].macs[0], vms[1].macs[0], BROADCAST, unknown_mac(2)])
            s.add(dst, rng.choice([base + 1, base + rng.randint(2, 3000), 9000]), vid=vid, what=kind)
    return s.finalize()


def sc_hostile() -> Scenario:
    """The mixed traffic; vm1 and vm3 send a duplicate, a stale and a forged
    return with every return, which must all be rejected and counted while
    every VM still gets exactly its frames."""
    s = sc_mixed(name="hostile", stall=False)
    s.doc = "hostile vm1 and vm3: duplicate, stale and forged returns after every return"
    s.vm("vm1").hostile = True
    s.vm("vm3").hostile = True
    return s


def sc_notify_poll() -> Scenario:
    """The unicast traffic with vm2 and vm4 polling their rings: the same
    frames, and not one event sent to them."""
    s = sc_unicast()
    s.name = "notify_poll"
    s.doc = "vm2 and vm4 with notify: poll"
    s.vm("vm2").notify = "poll"
    s.vm("vm4").notify = "poll"
    s.vm("vm1").notify = "event"
    return s


# The demo: 4 VMs, matching configs/demo.yaml.
DEMO_VMS = [
    VM("vm1", ["02:00:00:00:01:01", "02:00:00:00:01:02"], credits=1024),
    VM("vm2", ["02:00:00:00:02:01"], vlan=10, credits=512),
    VM("vm3", ["02:00:00:00:03:01"], vlan=10, credits=512),
    VM("vm4", ["02:00:00:00:04:01"], vlan=20, credits=32, stall=True),
]
DEMO_MTU = 1500


def sc_demo() -> Scenario:
    import copy
    vms = copy.deepcopy(DEMO_VMS)
    s = Scenario("demo", "demo traffic for configs/demo.yaml", vms, mtu=DEMO_MTU, iommu="none")
    rng = Rng("demo")
    work = []
    work += [("uc", vms[0].macs[k % 2], None) for k in range(700)]
    work += [("uc", vms[1].macs[0], 10)] * 400
    work += [("uc", vms[2].macs[0], 10)] * 400
    work += [("uc", vms[3].macs[0], 20)] * 150
    work += [("bc", BROADCAST, None)] * 40 + [("bc", BROADCAST, 10)] * 40 + [("bc", BROADCAST, 20)] * 30
    work += [("mc4", "01:00:5e:00:00:fb", None)] * 30 + [("mc4", "01:00:5e:00:00:fb", 10)] * 30
    work += [("mc6", "33:33:00:00:00:01", None)] * 20 + [("mc6", "33:33:00:00:00:01", 10)] * 20
    work += [("mc6", "33:33:00:00:00:01", 20)] * 10
    work += [("runt", vms[0].macs[0], None)] * 16
    work += [("oversize", vms[1].macs[0], 10)] * 8 + [("oversize", vms[0].macs[1], None)] * 8
    work += [("unknown", unknown_mac(k), rng.choice([None, 10, 20, 30])) for k in range(40)]
    work += [("bc", BROADCAST, 30)] * 8  # no VM on VLAN 30
    rng.shuffle(work)
    for kind, dst, vid in work:
        limit = DEMO_MTU + (18 if vid is not None else 14)
        if kind == "runt":
            size = rng.randint(1, 59)
        elif kind == "oversize":
            size = rng.choice([limit + 1, rng.randint(limit + 1, 9000)])
        else:
            size = rng.choice([60, 64, 128, 256, 512, 1024, limit, rng.randint(60, limit),
                               rng.randint(60, limit)])
        s.add(dst, size, vid=vid, l3="opaque" if kind == "runt" else None, what=kind)
    return s.finalize()


def sc_copy_threshold() -> Scenario:
    """The unicast traffic with dataplane.copy_threshold 256: shorter frames are copied."""
    s = sc_unicast()
    s.name = "copy_threshold"
    s.doc = "unicast frames under 256 bytes copied, the rest remapped"
    s.copy_threshold = 256
    return s


# ---- traffic for the real-Xen test (tests/xen/xen_test.py)

XEN_COPY_THRESHOLD = 128
XEN_PARTS = 5


def xen_vms() -> list:
    """The guests of the Xen test (tests/xen/xen_test.py says who does what)."""
    return [
        VM("g1", [vm_mac(1, 1), vm_mac(1, 2)], credits=512, sink=False),
        VM("g2", [vm_mac(2, 1)], vlan=10, credits=512, sink=False),
        VM("g3", [vm_mac(3, 1)], credits=512, sink=False),
        VM("g4", [vm_mac(4, 1)], vlan=20, credits=512, sink=False),
    ]


def sc_xen_part(part: int) -> Scenario:
    """Part `part` (1-3) of the Xen test's traffic: unicast of every size up to
    the MTU limit (some under the copy threshold), floods per VLAN, unknown
    unicast; every guest gets some of each part."""
    name = f"xen_part{part}"
    vms = xen_vms()
    s = Scenario(name, f"Xen test traffic, part {part}", vms,
                 copy_threshold=XEN_COPY_THRESHOLD)
    rng = Rng(name)
    work = []
    for v in vms:
        limit = 1500 + (18 if v.vlan is not None else 14)
        for k in range(60):
            size = rng.choice([60, 64, 100, 127, 128, 129, 256, 1000, limit,
                               rng.randint(60, limit), rng.randint(60, limit)])
            work.append(("uc", v.macs[k % len(v.macs)], v.vlan, size))
    for vid, n in ((None, 10), (10, 5), (20, 5)):
        work += [("bc", BROADCAST, vid, rng.randint(60, 600)) for _ in range(n)]
    work += [("unknown", unknown_mac(k), None, rng.randint(60, 600)) for k in range(5)]
    rng.shuffle(work)
    for what, dst, vid, size in work:
        s.add(dst, size, vid=vid, what=what)
    return s


def _iommu_variant(builder, name, **opts) -> Scenario:
    """The same traffic and expected results as the base scenario, with the
    sim IOMMU (and iommu options such as mode: deferred)."""
    s = builder()
    extra = "".join(f", {k} {v}" for k, v in opts.items())
    s.doc = f"{s.name} with iommu backend sim{extra} (same traffic, same expected results)"
    s.name = name
    s.iommu = "sim"
    s.iommu_opts = opts
    return s


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "unicast": sc_unicast,
    "vlans": sc_vlans,
    "flood": sc_flood,
    "runts": sc_runts,
    "oversize": sc_oversize,
    "oversize_mtu1000": lambda: sc_oversize("oversize_mtu1000", 1000),
    "unknown_unicast": sc_unknown_unicast,
    "unknown_to_vm": sc_unknown_to_vm,
    "stall": sc_stall,
    "stall_unknown": sc_stall_unknown,
    "jumbo": sc_jumbo,
    "mixed": sc_mixed,
    "copy_threshold": sc_copy_threshold,
    "hostile": sc_hostile,
    "notify_poll": sc_notify_poll,
    "iommu_unicast": lambda: _iommu_variant(sc_unicast, "iommu_unicast"),
    "iommu_stall": lambda: _iommu_variant(sc_stall, "iommu_stall"),
    "iommu_jumbo": lambda: _iommu_variant(sc_jumbo, "iommu_jumbo"),
    "iommu_mixed": lambda: _iommu_variant(sc_mixed, "iommu_mixed"),
    "iommu_checked_stall": lambda: _iommu_variant(sc_stall, "iommu_checked_stall", check=True),
    "iommu_deferred_mixed": lambda: _iommu_variant(sc_mixed, "iommu_deferred_mixed",
                                                   mode="deferred", check=True),
    "iommu_deferred_stall": lambda: _iommu_variant(sc_stall, "iommu_deferred_stall",
                                                   mode="deferred", deferred_batch=4,
                                                   deferred_max_us=200),
    "demo": sc_demo,
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]()
    except KeyError:
        raise SystemExit(f"zcdgen: no scenario {name!r} (see `zcdgen.py list`)") from None


# --------------------------------------------------------------------------
# Writing a scenario


def expected_stats_json(exp: Expected) -> dict:
    st = json.loads(json.dumps(exp.stats))
    st["pool"] = {"pages": "> 0", "free": "== pages"}  # not exact: only the invariant
    return st


def write_scenario(scn: Scenario, out: str, exp: Optional[Expected] = None) -> dict:
    """Write traffic, config (absolute paths) and expected results under out."""
    out = os.path.abspath(out)
    exp = exp or oracle(scn)
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    os.makedirs(os.path.join(out, "sinks"), exist_ok=True)
    traffic = os.path.join(out, "traffic.pcap")
    write_pcap(traffic, scn.frames)
    cfg = scn.config(traffic, os.path.join(out, "sinks"))
    cfg_path = os.path.join(out, "config.yaml")
    with open(cfg_path, "w") as fh:
        fh.write(f"# zcdgen scenario {scn.name}: {scn.doc}\n")
        fh.write(yaml_dump(cfg))
    for v in scn.vms:
        write_pcap(os.path.join(out, "expected", f"{v.name}.pcap"), exp.per_vm[v.name])
    with open(os.path.join(out, "expected", "stats.json"), "w") as fh:
        json.dump(expected_stats_json(exp), fh, indent=1)
        fh.write("\n")
    with open(os.path.join(out, "expected", "frames.txt"), "w") as fh:
        fh.write(describe(scn, exp))
    sinks = {v.name: os.path.join(out, "sinks", f"{v.name}.pcap") for v in scn.vms if v.sink}
    return {"traffic": traffic, "config": cfg_path, "sinks": sinks, "config_dict": cfg}


def describe(scn: Scenario, exp: Expected) -> str:
    lines = [f"# {scn.name}: {scn.doc}", f"# {len(scn.frames)} frames", "# seq  verdict  |  frame"]
    for f, v in zip(scn.frames, exp.verdicts):
        lines.append(f"{f.seq:5d}  {v}  |  {f.desc}")
    lines.append("")
    lines.append(json.dumps(exp.stats, indent=1))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Self-test: the generator, pcap I/O and oracle on hand-checked inputs


def selftest(repo_root: Optional[str] = None, verbose: bool = False) -> list:
    """Returns a list of problems (empty = fine)."""
    problems = []

    def check(cond, what):
        if not cond:
            problems.append(what)

    # frame layout
    d = build_frame("t", 5, parse_mac("02:00:00:00:00:01"), 60)
    check(len(d) == 60, "untagged 60-byte frame length")
    check(d[12:14] == b"\x08\x00", "IPv4 ethertype")
    check(d[6:12] == b"\x02\x5a\x00\x00\x00\x05", "seq in source MAC")
    check(_ip_checksum(d[14:34]) == 0, "IPv4 header checksum verifies")
    check(struct.unpack("!H", d[16:18])[0] == 46, "IPv4 total length")
    check(struct.unpack("!H", d[38:40])[0] == 26, "UDP length")
    check(d[42:].startswith(b"zcd:t:5:"), "payload marker")
    d = build_frame("t", 6, parse_mac("ff:ff:ff:ff:ff:ff"), 1518, vid=10, pcp=5, dei=1)
    check(d[12:16] == bytes([0x81, 0x00, 0xB0, 0x0A]), "802.1Q tag bytes pcp5 dei1 vid10")
    check(d[16:18] == b"\x08\x00" and d[34:38] == b"\xff" * 4, "inner ethertype, IPv4 bcast")
    d = build_frame("t", 7, parse_mac("01:00:5e:7f:ff:fa"), 100, vid=0)
    check(d[14:16] == b"\x00\x00" and d[34:38] == bytes([239, 127, 255, 250]), "prio tag, mcast group")
    d = build_frame("t", 8, parse_mac("33:33:00:00:00:fb"), 200, l3="ipv6")
    check(d[12:14] == b"\x86\xdd" and d[14] >> 4 == 6 and d[52:54] == b"\x00\xfb", "IPv6 mcast")
    d = build_frame("t", 9, parse_mac("02:00:00:00:00:01"), 61, vid=3, tpid=TPID_8021AD, l3="opaque")
    check(d[12:14] == b"\x88\xa8" and d[16:18] == b"\x88\xb5", "802.1ad + opaque")
    for n in (1, 13, 14, 17, 59):
        check(len(build_frame("t", 1, parse_mac("02:00:00:00:00:01"), n, vid=1)) == n, f"runt {n}")
    check(build_frame("t", 3, b"\x02" * 6, 300) == build_frame("t", 3, b"\x02" * 6, 300), "deterministic")

    # pcap round trip
    frames = [build_frame("rt", i, parse_mac(vm_mac(1, 1)), n) for i, n in enumerate((60, 1, 9022, 1514))]
    raw = pcap_bytes(frames)
    check(raw[:4] == struct.pack("<I", PCAP_MAGIC), "pcap magic")
    check(len(raw) == 24 + sum(16 + len(f) for f in frames), "pcap size")
    pf = parse_pcap(raw)
    check(pf.version == (2, 4) and pf.linktype == 1 and pf.snaplen == 65535, "pcap header fields")
    check([r[4] for r in pf.records] == frames, "pcap round trip")
    check(all(r[2] == r[3] == len(r[4]) for r in pf.records), "caplen == origlen")
    check([(r[0], r[1]) for r in pf.records] ==
          [(TS_BASE_SEC, 0), (TS_BASE_SEC, 10), (TS_BASE_SEC, 20), (TS_BASE_SEC, 30)], "timestamps")
    be = struct.pack(">IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, 1) + struct.pack(">IIII", 1, 2, 3, 3) + b"abc"
    pb = parse_pcap(be)
    check(pb.byteorder == ">" and pb.records[0][4] == b"abc", "big-endian pcap read")
    try:
        parse_pcap(raw[:-1])
        check(False, "truncated pcap not detected")
    except PcapError:
        pass

    # hand-checked oracle scenario
    vms = [VM("a", ["02:00:00:00:00:01"]), VM("b", ["02:00:00:00:00:01"], vlan=5),
           VM("c", ["02:00:00:00:00:02"], vlan=5, credits=2, stall=True)]
    s = Scenario("hand", "hand-checked", vms, mtu=100, unknown_unicast="drop")
    s.copy_threshold = 0  # every unicast remapped, as counted below
    A, C = "02:00:00:00:00:01", "02:00:00:00:00:02"
    s.add(A, 60)                      # 0 -> a (remapped)
    s.add(A, 59)                      # 1 runt
    s.add(A, 114)                     # 2 -> a (limit 114)
    s.add(A, 115)                     # 3 oversize
    s.add(A, 118, vid=0)              # 4 -> a (prio tag, limit 118)
    s.add(A, 119, vid=0)              # 5 oversize
    s.add(A, 118, vid=5)              # 6 -> b
    s.add(A, 118, vid=6)              # 7 unknown
    s.add(BROADCAST, 70, vid=5)       # 8 -> b, c (copied)  c held 1
    s.add(C, 70, vid=5)               # 9 -> c held 2
    s.add(C, 70, vid=5)               # 10 c no credit
    s.add(BROADCAST, 70, vid=7)       # 11 no receiver
    s.add(BROADCAST, 71)              # 12 -> a
    s.add(A, 115, vid=9, tpid=TPID_8021AD, l3="opaque")  # 13 untagged, limit 114 -> oversize
    s.add(A, 114, vid=9, tpid=TPID_8021AD, l3="opaque")  # 14 -> a
    s.add(C, 60)                      # 15 unknown (c is on vlan 5)
    s.add(BROADCAST, 60, vid=5)       # 16 -> b; c no credit
    e = oracle(s)
    check([f.seq for f in e.per_vm["a"]] == [0, 2, 4, 12, 14], f"hand: a got {[f.seq for f in e.per_vm['a']]}")
    check([f.seq for f in e.per_vm["b"]] == [6, 8, 16], f"hand: b got {[f.seq for f in e.per_vm['b']]}")
    check([f.seq for f in e.per_vm["c"]] == [8, 9], f"hand: c got {[f.seq for f in e.per_vm['c']]}")
    want_drops = {"runt": 1, "oversize": 3, "unknown_unicast": 2, "pool_empty": 0, "no_receiver": 1}
    check(e.stats["drops"] == want_drops, f"hand: drops {e.stats['drops']}")
    va, vb, vc = e.stats["vms"]
    check((va["rx_packets"], va["remapped"], va["copied"], va["returned"]) == (5, 4, 1, 5), f"hand: a {va}")
    check(va["rx_bytes"] == 60 + 114 + 118 + 71 + 114, "hand: a bytes")
    check((vb["rx_packets"], vb["remapped"], vb["copied"], vb["returned"]) == (3, 1, 2, 3), f"hand: b {vb}")
    check((vc["rx_packets"], vc["remapped"], vc["copied"], vc["returned"], vc["dropped_no_credit"])
          == (2, 1, 1, 0, 2), f"hand: c {vc}")
    check(e.stats["ports"][0]["rx_packets"] == 17, "hand: port packets")
    check(e.stats["ports"][0]["rx_bytes"] == sum(len(f) for f in s.frames), "hand: port bytes")

    # unknown unicast to a VM
    s2 = Scenario("hand2", "", [VM("a", [A]), VM("b", [C], vlan=5)], mtu=1500, unknown_unicast="b")
    s2.add(C, 60)           # b's MAC untagged: unknown -> b
    s2.add(A, 60, vid=5)    # a's MAC on vlan 5: unknown -> b
    s2.add(A, 60)           # -> a
    s2.add(BROADCAST, 60, vid=9)  # no receiver (not redirected)
    s2.add("02:00:00:00:00:99", 60, vid=4094)  # -> b
    e2 = oracle(s2)
    check([f.seq for f in e2.per_vm["b"]] == [0, 1, 4], "hand2: unknown to b")
    check(e2.stats["drops"]["no_receiver"] == 1 and e2.stats["drops"]["unknown_unicast"] == 0, "hand2 drops")

    # credits guard
    s3 = Scenario("hand3", "", [VM("a", [A], credits=1)], mtu=1500)
    s3.add(A, 60)
    s3.add(A, 60)
    try:
        oracle(s3)
        check(False, "oracle accepted a non-stalled VM sent more frames than credits")
    except ScenarioError:
        pass

    # YAML emitter round trip through the reader
    for name in ("vlans", "unknown_to_vm", "iommu_stall"):
        sc = SCENARIOS[name]()
        cfg = sc.config("/x/traffic.pcap", "/x/sinks")
        back = yaml_load(yaml_dump(cfg))
        check(back == cfg, f"yaml round trip {name}: {back} != {cfg}")

    # every scenario: deterministic, valid, and as documented
    for name, fn in SCENARIOS.items():
        a, b = fn(), fn()
        check([f.data for f in a.frames] == [f.data for f in b.frames], f"{name}: not deterministic")
        try:
            ea = oracle(a)
        except ScenarioError as ex:
            problems.append(f"{name}: {ex}")
            continue
        long = [f.data for f in a.frames if len(f) >= 12]  # shorter runts cannot carry the seq
        check(len(set(long)) == len(long), f"{name}: duplicate frames")
        st = ea.stats
        check(sum(v["rx_packets"] for v in st["vms"]) > 0, f"{name}: nothing delivered")
        for v in st["vms"]:
            check(v["rx_packets"] == v["remapped"] + v["copied"], f"{name}: {v['name']} rx != remap+copy")
        if verbose:
            print(f"  {name}: {len(a.frames)} frames, drops {st['drops']}, "
                  + ", ".join(f"{v['name']}={v['rx_packets']}" for v in st["vms"]))

    sc = SCENARIOS["stall"]()
    e = oracle(sc)
    v1 = e.stats["vms"][0]
    check(v1["rx_packets"] == 8 and v1["dropped_no_credit"] == 112, f"stall: vm1 {v1}")
    check(e.delivered_counts["vm1"] == 120, "stall: vm1 is sent 100 unicast + 20 broadcast")
    check(v1["copied"] >= 1, "stall: vm1 gets a broadcast among its first 8")
    check(all(v["rx_packets"] == v["returned"] for v in e.stats["vms"][1:]), "stall: others")
    check(e.stats["vms"][1]["rx_packets"] == 60 + 20 and e.stats["vms"][2]["rx_packets"] == 60 + 20,
          f"stall: others receive everything {e.stats['vms'][1:]}")

    sc = SCENARIOS["jumbo"]()
    e = oracle(sc)
    check(any(len(f) == 9022 for f in sc.frames) and e.stats["drops"]["oversize"] > 0, "jumbo sizes")

    # the demo config matches the demo scenario
    if repo_root:
        path = os.path.join(repo_root, "configs", "demo.yaml")
        try:
            with open(path) as fh:
                cfg = yaml_load(fh.read())
        except OSError as ex:
            problems.append(f"configs/demo.yaml: {ex}")
        else:
            want = sc_demo().config("build/demo/traffic.pcap", "build/demo")
            if cfg != want:
                problems.append(f"configs/demo.yaml does not match the demo scenario:\n  file: {cfg}\n  want: {want}")
    return problems


# --------------------------------------------------------------------------
# CLI


def _repo_root() -> str:
    return os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="zcdgen.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="scenario names")
    w = sub.add_parser("write", help="write a scenario's traffic, config and expected results")
    w.add_argument("name")
    w.add_argument("--out", required=True)
    d = sub.add_parser("demo", help="write the demo capture for configs/demo.yaml")
    d.add_argument("--out", required=True)
    sh = sub.add_parser("show", help="per-frame verdicts and expected stats")
    sh.add_argument("name")
    st = sub.add_parser("selftest", help="check the generator, pcap I/O and oracle")
    st.add_argument("-v", action="store_true")
    a = ap.parse_args(argv)

    if a.cmd == "list":
        for n in SCENARIOS:
            print(n)
        return 0
    if a.cmd == "write":
        scn = get_scenario(a.name)
        r = write_scenario(scn, a.out)
        print(f"zcdgen: {scn.name}: {len(scn.frames)} frames -> {r['traffic']}, config {r['config']}")
        return 0
    if a.cmd == "demo":
        scn = sc_demo()
        exp = oracle(scn)
        os.makedirs(a.out, exist_ok=True)
        write_pcap(os.path.join(a.out, "traffic.pcap"), scn.frames)
        os.makedirs(os.path.join(a.out, "expected"), exist_ok=True)
        with open(os.path.join(a.out, "expected", "stats.json"), "w") as fh:
            json.dump(expected_stats_json(exp), fh, indent=1)
            fh.write("\n")
        print(f"zcdgen: demo: {len(scn.frames)} frames -> {os.path.join(a.out, 'traffic.pcap')}")
        for v in exp.stats["vms"]:
            print(f"  {v['name']}: expect {v['rx_packets']} frames ({v['remapped']} remapped, "
                  f"{v['copied']} copied, {v['dropped_no_credit']} dropped for lack of credits)")
        print("  drops: " + ", ".join(f"{k} {n}" for k, n in exp.stats["drops"].items()))
        return 0
    if a.cmd == "show":
        scn = get_scenario(a.name)
        sys.stdout.write(describe(scn, oracle(scn)))
        return 0
    if a.cmd == "selftest":
        probs = selftest(_repo_root(), verbose=a.v)
        for p in probs:
            print(f"selftest: FAIL: {p}")
        print("selftest: " + ("ok" if not probs else f"{len(probs)} problem(s)"))
        return 1 if probs else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
