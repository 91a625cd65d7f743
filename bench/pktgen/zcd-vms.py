#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""zcd-vms.py — list the VMs of a zcdemux configuration, one line per MAC.

Usage:
  zcd-vms.py [--vm NAME] [--specs] [--parser auto|pyyaml|builtin] CONFIG

Prints "NAME MAC VLAN" for every MAC of every VM, in the file's order, with
the MAC in lower case and VLAN 0 for an untagged VM: the same lines as
`zcd-gen --list-vms --config CONFIG`, without a build.  The traffic
generators in this folder read their destinations from it.

  --vm NAME   only this VM (repeatable)
  --specs     print one line of MAC or MAC/VLAN words instead (VMS= of
              zcd-pktgen-dpdk.lua)
  --parser    pyyaml: PyYAML (Debian: apt-get install python3-yaml);
              builtin: a reader of the YAML that zcdemux's configurations use
              (block mappings and lists, one-line [..] and {..}, quotes,
              comments); auto (default): PyYAML if it is installed, else
              builtin

Only what the generators need is checked (names, MACs, VLAN 1-4094);
zcdemux checks the rest when it loads the file.  Exit status: 0, 1 when the
file cannot be read, 2 on a usage or configuration error.
Python 3.11 standard library (PyYAML optional).
"""

from __future__ import annotations

import argparse
import re
import sys

APT_YAML = "apt-get install python3-yaml"
MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")


class ConfigError(Exception):
    """The file is not a configuration the generators can use (exit 2)."""


class Unsupported(Exception):
    """YAML beyond the builtin reader (exit 1, with the PyYAML hint)."""


# --------------------------------------------------------------------------
# The builtin reader.  Every scalar stays a string, as libyaml hands them to
# zcdemux's loader; the caller converts what it needs.


def _strip_comment(text: str) -> str:
    quote = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote == '"' and c == "\\":
            i += 2
            continue
        if quote is not None:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
        i += 1
    return text.rstrip()


class _Flow:
    """One-line flow collections and scalars: [a, "b"], {k: v}, 'c', plain."""

    def __init__(self, text: str, lineno: int):
        self.s, self.i, self.lineno = text, 0, lineno

    def fail(self, what: str):
        raise Unsupported(f"line {self.lineno}: {what}")

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def value(self, stops: str = ""):
        self.ws()
        c = self.s[self.i:self.i + 1]
        if c == "[":
            return self.seq()
        if c == "{":
            return self.map()
        if c in ("'", '"'):
            return self.quoted()
        if c and c in "&*!|>%@`":
            self.fail(f"'{c}' (anchors, aliases, tags, block scalars) needs PyYAML")
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in stops:
            if self.s[self.i] == ":" and stops and self.s[self.i + 1:self.i + 2] in (" ", ""):
                break
            self.i += 1
        return self.s[start:self.i].strip()

    def quoted(self) -> str:
        q = self.s[self.i]
        self.i += 1
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if q == "'" and c == "'" and self.s[self.i + 1:self.i + 2] == "'":
                out.append("'")
                self.i += 2
                continue
            if c == q:
                self.i += 1
                return "".join(out)
            if q == '"' and c == "\\":
                esc = self.s[self.i + 1:self.i + 2]
                table = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "/": "/", "0": "\0"}
                if esc not in table:
                    self.fail(f"escape \\{esc} needs PyYAML")
                out.append(table[esc])
                self.i += 2
                continue
            out.append(c)
            self.i += 1
        self.fail("unterminated quoted string (multi-line scalars need PyYAML)")

    def expect(self, c: str):
        self.ws()
        if self.s[self.i:self.i + 1] != c:
            self.fail(f"expected '{c}' (flow collections over several lines need PyYAML)")
        self.i += 1

    def seq(self) -> list:
        self.i += 1
        out = []
        self.ws()
        if self.s[self.i:self.i + 1] == "]":
            self.i += 1
            return out
        while True:
            out.append(self.value(",]"))
            self.ws()
            if self.s[self.i:self.i + 1] == ",":
                self.i += 1
                continue
            self.expect("]")
            return out

    def map(self) -> dict:
        self.i += 1
        out = {}
        self.ws()
        if self.s[self.i:self.i + 1] == "}":
            self.i += 1
            return out
        while True:
            key = self.value(",}")
            self.expect(":")
            out[key] = self.value(",}")
            self.ws()
            if self.s[self.i:self.i + 1] == ",":
                self.i += 1
                continue
            self.expect("}")
            return out

    def whole(self):
        v = self.value()
        self.ws()
        if self.i != len(self.s):
            self.fail(f"unexpected '{self.s[self.i:]}'")
        return v


def _split_key(text: str, lineno: int):
    """'key: rest' or 'key:' -> (key, rest); None if the line is no mapping entry."""
    if text[:1] in "[{":
        return None
    if text[:1] in "'\"":
        f = _Flow(text, lineno)
        key = f.quoted()
        rest = text[f.i:].lstrip(" ")
        return (key, rest[1:].strip()) if rest[:1] == ":" and rest[1:2] in (" ", "") else None
    m = re.search(r":( |$)", text)  # a plain key ends at the first ": "
    return (text[:m.start()].strip(), text[m.end():].strip()) if m else None


def builtin_load(text: str):
    lines = []  # [lineno, indent, text]
    for n, raw in enumerate(text.splitlines(), 1):
        body = _strip_comment(raw)
        if not body.strip() or body.strip() in ("---", "..."):
            continue
        stripped = body.lstrip(" ")
        if stripped.startswith("\t"):
            raise Unsupported(f"line {n}: a tab in the indentation")
        if body.startswith("%"):
            raise Unsupported(f"line {n}: directives need PyYAML")
        lines.append([n, len(body) - len(stripped), stripped])
    if not lines:
        return None
    pos = [0]

    def block(indent: int):
        n, ind, t = lines[pos[0]]
        if t == "-" or t.startswith("- "):
            return sequence(ind)
        if _split_key(t, n) is not None:
            return mapping(ind)
        pos[0] += 1
        return _Flow(t, n).whole()

    def nested(parent_indent: int, same_indent_list: bool):
        """The value of 'key:' or '-' with nothing after it: the next, deeper block
        (for 'key:', also a list at the key's own indentation)."""
        if pos[0] < len(lines):
            n, ind, t = lines[pos[0]]
            if ind > parent_indent or (same_indent_list and ind == parent_indent
                                       and (t == "-" or t.startswith("- "))):
                return block(ind)
        return ""  # an empty value, as PyYAML's BaseLoader reads it

    def sequence(indent: int) -> list:
        out = []
        while pos[0] < len(lines):
            n, ind, t = lines[pos[0]]
            if ind != indent or not (t == "-" or t.startswith("- ")):
                break
            rest = t[1:].lstrip(" ")
            if not rest:
                pos[0] += 1
                out.append(nested(indent, False))
                continue
            # "- key: v" opens a mapping whose keys sit at the column of "key".
            lines[pos[0]] = [n, indent + (len(t) - len(rest)), rest]
            out.append(block(lines[pos[0]][1]))
        return out

    def mapping(indent: int) -> dict:
        out = {}
        while pos[0] < len(lines):
            n, ind, t = lines[pos[0]]
            if ind < indent:
                break
            if ind > indent:
                raise Unsupported(f"line {n}: unexpected indentation")
            kv = _split_key(t, n)
            if kv is None:
                if t == "-" or t.startswith("- "):
                    break
                raise Unsupported(f"line {n}: expected 'key: value'")
            key, rest = kv
            pos[0] += 1
            out[key] = _Flow(rest, n).whole() if rest else nested(indent, True)
        return out

    value = block(lines[0][1])
    if pos[0] != len(lines):
        raise Unsupported(f"line {lines[pos[0]][0]}: unexpected text after the document")
    return value


# --------------------------------------------------------------------------


def pyyaml_load(text: str):
    import yaml  # noqa: PLC0415 (optional dependency)

    # BaseLoader keeps every scalar a string, as zcdemux's loader reads them:
    # no YAML 1.1 surprises such as 12:34:56:00:00:01 read as a number.
    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as ex:
        raise ConfigError(f"not YAML: {ex}") from None


def have_pyyaml() -> bool:
    try:
        import yaml  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def vm_entries(doc) -> list:
    """[(name, mac, vlan)] in file order; raises ConfigError."""
    if not isinstance(doc, dict) or "vms" not in doc:
        raise ConfigError("no vms: list")
    vms = doc["vms"]
    if not isinstance(vms, list) or not vms:
        raise ConfigError("vms: expected a list of VMs")
    out = []
    for i, vm in enumerate(vms):
        where = f"vms[{i}]"
        if not isinstance(vm, dict):
            raise ConfigError(f"{where}: expected a mapping")
        name = vm.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,31}", name):
            raise ConfigError(f"{where}.name: expected 1-31 of [A-Za-z0-9._-], got {name!r}")
        vlan = vm.get("vlan")
        if vlan is None:
            vid = 0
        elif isinstance(vlan, str) and vlan.isdigit() and 1 <= int(vlan) <= 4094:
            vid = int(vlan)
        else:
            raise ConfigError(f"{where}.vlan: expected 1-4094, got {vlan!r}")
        macs = vm.get("macs")
        if not isinstance(macs, list) or not macs:
            raise ConfigError(f"{where}.macs: expected a list of MAC addresses")
        for j, mac in enumerate(macs):
            if not isinstance(mac, str) or not MAC_RE.fullmatch(mac):
                raise ConfigError(f"{where}.macs[{j}]: {mac!r} is not a MAC address")
            out.append((name, mac.lower(), vid))
    return out


def load(path: str, parser: str = "auto") -> list:
    """The (name, mac, vlan) of every VM MAC of the configuration at path.
    Raises OSError, ConfigError or Unsupported."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if parser == "pyyaml" or (parser == "auto" and have_pyyaml()):
        return vm_entries(pyyaml_load(text))
    return vm_entries(builtin_load(text))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return 0
    ap = argparse.ArgumentParser(prog="zcd-vms.py", add_help=False,
                                 usage="%(prog)s [--vm NAME] [--specs] [--parser auto|pyyaml|builtin] CONFIG (--help: more)")
    ap.add_argument("config")
    ap.add_argument("--vm", action="append", default=[], metavar="NAME")
    ap.add_argument("--specs", action="store_true")
    ap.add_argument("--parser", choices=("auto", "pyyaml", "builtin"), default="auto")
    a = ap.parse_args(argv)
    if a.parser == "pyyaml" and not have_pyyaml():
        print(f"zcd-vms: PyYAML is not installed: {APT_YAML}", file=sys.stderr)
        return 1
    try:
        entries = load(a.config, a.parser)
    except OSError as ex:
        print(f"zcd-vms: {a.config}: {ex.strerror}", file=sys.stderr)
        return 1
    except ConfigError as ex:
        print(f"zcd-vms: {a.config}: {ex}", file=sys.stderr)
        return 2
    except Unsupported as ex:
        print(f"zcd-vms: {a.config}: {ex}: the builtin reader cannot read this file; "
              f"install PyYAML: {APT_YAML}", file=sys.stderr)
        return 1
    for name in a.vm:
        if name not in {e[0] for e in entries}:
            print(f"zcd-vms: {a.config}: no VM named {name}", file=sys.stderr)
            return 2
    chosen = [e for e in entries if not a.vm or e[0] in a.vm]
    if a.specs:
        print(" ".join(mac + (f"/{vlan}" if vlan else "") for _, mac, vlan in chosen))
    else:
        for name, mac, vlan in chosen:
            print(f"{name} {mac} {vlan}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
