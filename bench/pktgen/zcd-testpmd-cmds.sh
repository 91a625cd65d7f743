#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# zcd-testpmd-cmds.sh — the short-option front end of zcd-testpmd-cmds.py,
# kept for callers of its first version: writes the same dpdk-testpmd
# command file to stdout.
#
# Usage:
#   zcd-testpmd-cmds.sh -c CONFIG [-v VM] [-s SIZE] [-m MODE] [-n BURSTS] [-p PORT]
#
#   -c CONFIG   the zcdemux YAML configuration
#   -v VM       the VM to send to (default: the first); its first MAC is used
#   -s SIZE     frame size on the wire including the 4-byte FCS (default 64)
#   -m MODE     txonly (default) or burst (exactly BURSTS bursts of 32)
#   -n BURSTS   with -m burst: how many bursts (default 10)
#   -p PORT     testpmd's port id (default 0)
#   -h          this text
#
# zcd-testpmd-cmds.py --help describes the file; it takes several VMs.
set -euo pipefail

usage() { sed -n '4,/^set -euo pipefail/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

config="" vm="" size="" mode="" bursts="" port=""
while getopts "c:v:s:m:n:p:h" opt; do
	case $opt in
	c) config=$OPTARG ;;
	v) vm=$OPTARG ;;
	s) size=$OPTARG ;;
	m) mode=$OPTARG ;;
	n) bursts=$OPTARG ;;
	p) port=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ -n "$config" ] || { echo "zcd-testpmd-cmds: -c CONFIG is required (see -h)" >&2; exit 2; }
exec python3 "$(dirname "$0")/zcd-testpmd-cmds.py" "$config" ${vm:+"--vm=$vm"} ${size:+"--size=$size"} \
	${mode:+"--mode=$mode"} ${bursts:+"--bursts=$bursts"} ${port:+"--port=$port"}
