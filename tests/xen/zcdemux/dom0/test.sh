#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The real-Xen test, dom0 side (run by the dom0 /init; tests/xen/xen_test.py
# builds the payload and checks what this prints).
#
#   1. load the grant helper, run its selftest against a live guest;
#   2. start four guests running zcdemux-guest: g1 (TAP sink), g2, and g3, g4
#      misbehaving (forged/stale/duplicate returns, withheld buffers);
#   3. run 1: zcdemux with the xen backend on net_af_packet (a veth pair);
#      feed part 1 with zcd-replay, destroy g4 while it holds buffers, feed
#      part 2, stop zcdemux with SIGINT;
#   4. run 2: zcdemux again (the guests re-handshake) and a new domain named
#      g4 (it takes the old one's place); feed part 3 at full speed, then
#      kill -9 zcdemux while g3 still maps buffers it withheld: the helper
#      must keep exactly those pages pinned and granted (a zombie region);
#      run 2 keeps its ledger and counters in a state file (--state);
#   5. run 3: a standby (--standby) started before the kill, waiting on run
#      2's state file: it takes over, accounts for what run 2 left and
#      carries its counters; it takes over the dead run's connections where
#      they were (the helper hands it the zombie regions: the pool's and
#      each ring's), so the guests keep their sessions and g3 what it
#      withheld; a reload with a broken file is
#      rejected, one that cuts g2's credits is applied (announced on g2's
#      ring); part 4; a cut of g3's credits below what it withheld: g3 does
#      not give them back, is cut off after the time-out, asked to close,
#      lets go and connects again; SIGINT; the helper has nothing left and
#      unloads;
#   6. run 4 without the helper: g2 breaks its ring as soon as it connects
#      and is cut off alone, its connection torn down, and connects again;
#      zcdemux copies every frame (part 5); then a reload removes g4 (its
#      guest's session ends) and another adds it back (the guest connects
#      again, for its last session).
# Every step that can hang is bounded; the verdict on the numbers is the
# host's (xen_test.py), this script fails only when a step cannot complete.
. /usr/lib/zcd-lib.sh
P=/payload
. $P/expect.env

# ---- helpers

# Wait until "$@" succeeds, for at most $WAIT_SECS seconds.
wait_until() {
	_end=$(($(date +%s) + WAIT_SECS))
	until "$@"; do
		[ "$(date +%s)" -lt "$_end" ] || return 1
		usleep 200000
	done
}

port_rx() {
	sed -n 's/.*"name": "uplink", "rx_packets": \([0-9]*\).*/\1/p' "$1" 2>/dev/null | head -n 1
}

# vm_field FILE VM FIELD
vm_field() {
	grep "{\"name\": \"$2\"" "$1" 2>/dev/null | sed -n "s/.*\"$3\": \([0-9]*\).*/\1/p" | head -n 1
}

port_rx_is() { [ "$(port_rx "$1")" = "$2" ]; }
vm_field_is() { [ "$(vm_field "$1" "$2" "$3")" = "$4" ]; }

# Every guest named connected to this run of zcdemux (its own counters say
# so; xenstore may still show a connection from the run before).
connected() {
	_json=$1
	shift
	for _g in "$@"; do
		vm_field_is "$_json" "$_g" connects 1 || return 1
	done
}

# The stats file stopped changing: everything in flight has settled.
settled() {
	_a=$(md5sum <"$1")
	sleep 3
	[ "$_a" = "$(md5sum <"$1")" ]
}

# Guest $2 connected to run $1 a second time (after a reload added it back).
connected_twice() {
	[ "$(grep -c "zcdemux: $2: guest connected" "/run/$1.out")" = 2 ]
}

kmod_param() { cat "/sys/module/zcdemux_grant/parameters/$1"; }
kmod_report() {
	zcd_result "kmod $1 granted_pages=$(kmod_param granted_pages) pinned_pages=$(kmod_param pinned_pages) regions=$(kmod_param regions) zombie_regions=$(kmod_param zombie_regions)"
}
no_zombie() { [ "$(kmod_param zombie_regions)" = 0 ]; }

# start_zcdemux RUN [OPTION...]: options go after --config.
start_zcdemux() {
	_run=$1
	shift
	rm -f "/run/$_run.json"
	$P/zcdemux --no-huge -m 256 --no-pci -l 0 --file-prefix "$_run" \
		--log-level=lib.eal:warning --log-level=lib.telemetry:error -- \
		--config /run/xen.yaml --stats-json "/run/$_run.json" --stats-interval 1 "$@" \
		>"/run/$_run.out" 2>&1 &
	ZCD_PID=$!
	echo "ZCD-XEN: zcdemux $_run started (pid $ZCD_PID)"
}

# end_zcdemux SIGNAL: stop it and wait; its exit status in ZCD_RC.
end_zcdemux() {
	kill "-$1" "$ZCD_PID"
	wait "$ZCD_PID"
	ZCD_RC=$?
}

# report_zcdemux RUN: its log, exit status and stats (written at exit, or
# the last ones it wrote when it cannot write them).
report_zcdemux() {
	cat "/run/$1.out"
	zcd_result "exit $1 rc=$ZCD_RC"
	sed "s/^/ZCD-RESULT json $1 /" "/run/$1.json"
}

# stop_zcdemux RUN SIGNAL
stop_zcdemux() {
	end_zcdemux "$2"
	report_zcdemux "$1"
}

fail_run() {
	[ -f "/run/$1.out" ] && tail -n 40 "/run/$1.out"
	[ -f "/run/$1.json" ] && cat "/run/$1.json"
	zcd_fail "$2"
}

# replay PART RATE (frames per second, 0 = as fast as the socket takes them)
replay() {
	$P/zcd-replay --rate "$2" zout "$P/$1.pcap" || zcd_fail "zcd-replay $1 failed"
}

# feed RUN PART RATE EXPECTED_RX: send a part, wait until it is all in and settled.
feed() {
	replay "$2" "$3"
	wait_until port_rx_is "/run/$1.json" "$4" || fail_run "$1" "$1: $2 not all received"
	wait_until settled "/run/$1.json" || fail_run "$1" "$1: $2 did not settle"
}

# reload RUN TEXT: SIGHUP once the configuration file is replaced, wait for TEXT in its log.
reload() {
	kill -HUP "$ZCD_PID"
	wait_until grep -q "$2" "/run/$1.out" || fail_run "$1" "$1: no \"$2\" after SIGHUP"
}

# ---- 1. grant helper

insmod $P/zcdemux_grant.ko || zcd_fail "insmod zcdemux_grant.ko"

# ---- 2. guests (they wait for the backend; start them first, they boot slowly)

zcd_guest_start g1 role=tap sessions=3 || zcd_fail "cannot start g1"
zcd_guest_start g2 role=plain sessions=4 scribble=3 || zcd_fail "cannot start g2"
zcd_guest_start g3 role=misbehave sessions=4 || zcd_fail "cannot start g3"
zcd_guest_start g4 role=misbehave sessions=1 || zcd_fail "cannot start g4"

$P/zcd-grant-selftest "$(zcd_domid g2)" 64 || zcd_fail "zcd-grant-selftest failed"

# A veth pair: zcd-replay sends into zout, zcdemux reads zin.
for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do
	[ -f $f ] && echo 1 >$f
done
$P/ip link add zin mtu 9000 type veth peer name zout mtu 9000 || zcd_fail "cannot create veth"
$P/ip link set zin up && $P/ip link set zout up || zcd_fail "cannot bring veth up"
cp $P/xen.yaml /run/xen.yaml || zcd_fail "cannot copy xen.yaml"

# ---- 3. run 1: parts 1 and 2, g4 destroyed in between

start_zcdemux run1
wait_until connected /run/run1.json g1 g2 g3 g4 || fail_run run1 "run1: guests did not all connect"
feed run1 part1 "$REPLAY_RATE" "$N1"
# g4 holds the buffers it withheld: destroying it must give them all back.
zcd_guest_destroy g4
wait_until vm_field_is /run/run1.json g4 reclaimed "$G4_RECLAIMED" ||
	fail_run run1 "run1: g4's buffers were not reclaimed"
echo "ZCD-XEN: run1: g4 destroyed and reclaimed"
feed run1 part2 "$REPLAY_RATE" "$((N1 + N2))"
stop_zcdemux run1 INT

# ---- 4. run 2: the guests reconnect, a new g4 started after zcdemux joins;
#         at full speed frames arrive in bursts, so grants and maps batch up

start_zcdemux run2 --state /run/zcdemux.state
zcd_guest_start g4 role=plain sessions=3 || zcd_fail "cannot start the new g4"
wait_until connected /run/run2.json g1 g2 g3 g4 || fail_run run2 "run2: guests did not all connect"
feed run2 part3 0 "$N3"
RUN2_PID=$ZCD_PID
# Run 3 waits on run 2's state file to take over from it.
start_zcdemux run3 --state /run/zcdemux.state --standby
wait_until grep -q "standby: waiting to take over /run/zcdemux.state from pid $RUN2_PID" \
	/run/run3.out || fail_run run3 "run3: the standby is not waiting for run 2"
RUN3_PID=$ZCD_PID
# Killed: it cannot end the grants of what g3 still maps, nor of the rings
# the guests map; the helper keeps them.  It is read at once: the standby
# takes far longer to start and take them over.
ZCD_PID=$RUN2_PID
end_zcdemux KILL
kmod_report after-kill
report_zcdemux run2
ZCD_PID=$RUN3_PID

# ---- 5. run 3 takes over the dead run's connections, with the pages the
#         guests hold: the helper has no zombie left

wait_until connected /run/run3.json g1 g2 g3 g4 || fail_run run3 "run3: guests did not all reconnect"
wait_until no_zombie || { kmod_report stuck; zcd_fail "run3: the dead run's pages were never taken over"; }
kmod_report after-takeover
echo "vms: [" >/run/xen.yaml
reload run3 "reload rejected, the running configuration stays"
# g2 holds nothing now: the cut is only announced; part 4 stays within 128.
sed '/name: "g2"/,/credits:/ s/credits: 512/credits: 128/' $P/xen.yaml >/run/xen.yaml
reload run3 "reloaded /run/xen.yaml; new credits for g2"
echo "ZCD-XEN: run3: a broken file rejected, g2's credits cut to 128"
feed run3 part4 0 "$((N3 + N4))"
# g3 (misbehaving) withheld buffers of parts 3 and 4 and keeps them when asked.
sed '/name: "g3"/,/credits:/ s/credits: 512/credits: 2/' /run/xen.yaml >/run/xen.yaml.new &&
	mv /run/xen.yaml.new /run/xen.yaml
reload run3 "reloaded /run/xen.yaml; new credits for g3"
wait_until grep -q "g3: still [0-9]* buffers over its credits after" /run/run3.out ||
	fail_run run3 "run3: g3 was not cut off"
wait_until vm_field_is /run/run3.json g3 connects 2 ||
	fail_run run3 "run3: g3 did not connect again after it was cut off"
wait_until settled /run/run3.json || fail_run run3 "run3: did not settle after g3's cut-off"
echo "ZCD-XEN: run3: g3 cut off for keeping buffers past a credit cut, and back"
stop_zcdemux run3 INT
cp $P/xen.yaml /run/xen.yaml
kmod_report final
rmmod zcdemux_grant && zcd_result "kmod unloaded=1" || zcd_result "kmod unloaded=0"

# ---- 6. run 4 without the helper: every frame is copied

start_zcdemux run4
wait_until grep -q "g2: domain [0-9]* broke its ring; cutting it off" /run/run4.out ||
	fail_run run4 "run4: g2 broke its ring and was not cut off"
wait_until connected /run/run4.json g1 g3 g4 || fail_run run4 "run4: guests did not all connect"
wait_until vm_field_is /run/run4.json g2 connects 2 ||
	fail_run run4 "run4: g2 did not connect again after it broke its ring"
echo "ZCD-XEN: run4: g2 cut off for breaking its ring, and back"
feed run4 part5 0 "$N5"
sed '/name: "g4"/,$d' $P/xen.yaml >/run/xen.yaml
reload run4 "g4: removed;"
cp $P/xen.yaml /run/xen.yaml
reload run4 "reloaded /run/xen.yaml; added g4"
wait_until connected_twice run4 g4 || fail_run run4 "run4: the re-added g4 did not connect"
echo "ZCD-XEN: run4: g4 removed and added back by reloads"
stop_zcdemux run4 INT

for g in g1 g2 g3 g4; do
	zcd_wait_guest "$g" 60 || zcd_fail "guest $g: zcdemux-guest did not end cleanly"
done
exit 0
