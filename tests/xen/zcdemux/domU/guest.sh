#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The real-Xen test, guest side (run by the domU /init as guest.sh NAME).
# Runs zcdemux-guest in the role dom0 gave this guest on its kernel command
# line (zcd.role=...):
#   tap        frames go to a TAP interface, i.e. into this guest's own stack
#   plain      frames are only counted and hashed
#   misbehave  forged, stale and duplicate returns, some buffers never returned
# zcd.sessions=N: exit after the dataplane closed N times (it is restarted).
# zcd.scribble=N: break the ring as soon as session N connects.
# The tool prints one "ZCD-GUEST name=... sha256=..." line per session.
name=$1
set -- --sessions "${ZCD_SESSIONS:-1}"
case $ZCD_ROLE in
tap) set -- "$@" --sink tap:zcd0 ;;
plain) ;;
misbehave) set -- "$@" --misbehave ;;
*) echo "guest.sh: unknown role '$ZCD_ROLE'"; exit 2 ;;
esac
[ -n "$ZCD_SCRIBBLE" ] && set -- "$@" --scribble-session "$ZCD_SCRIBBLE"
echo "guest $name: zcdemux-guest $*"
/payload/zcdemux-guest "$@" &
pid=$!
# The TAP interface goes away with the tool: sample what this guest's own
# network stack received through it while the tool runs.
tap_rx=0
while kill -0 $pid 2>/dev/null; do
	n=$(cat /sys/class/net/zcd0/statistics/rx_packets 2>/dev/null) && tap_rx=$n
	usleep 200000
done
wait $pid
rc=$?
[ "$ZCD_ROLE" = tap ] && echo "ZCD-TAP name=$name rx_packets=$tap_rx"
exit $rc
