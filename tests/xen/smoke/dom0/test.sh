#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Smoke test of the Xen harness, run by the dom0 /init (tests/xen/smoke.sh).
# Starts two PV guests g1 and g2 from the domU image with different roles;
# for each, dom0 shares a page and an event channel (zcd-xen-probe share),
# the guest checks its devices, xenstore and maps the page (guest.sh).
# Passes when both guests report success.
# shellcheck source=SCRIPTDIR/../../image/zcd-lib.sh
. /usr/lib/zcd-lib.sh

# dom0 side: the devices a dom0 dataplane opens.
for dev in privcmd evtchn gntdev gntalloc xenbus; do
	[ -c /dev/xen/$dev ] || zcd_fail "dom0: /dev/xen/$dev missing"
done
xl list || zcd_fail "xl list failed"

for g in g1 g2; do
	zcd_guest_create "$g" --memory 128 role="probe-$g" || zcd_fail "cannot create $g"
	domid=$(zcd_domid "$g")
	# Publish the grant before the guest runs; the probe then waits for it.
	zcd-xen-probe share "$domid" >/run/zcd/probe-$g.log 2>&1 &
	echo $! >/run/zcd/probe-$g.pid
	n=0
	until xenstore-read "/local/domain/$domid/data/smoke-port" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -lt 100 ] || { cat /run/zcd/probe-$g.log; zcd_fail "probe for $g did not publish"; }
		usleep 100000
	done
	zcd_guest_unpause "$g" || zcd_fail "cannot unpause $g"
done

for g in g1 g2; do
	zcd_wait_guest "$g" 240
	rc=$?
	[ $rc -eq 0 ] || zcd_fail "guest $g: guest.sh status $rc"
	zcd_wait_log "$g" "^ZCD-SMOKE name=$g role=probe-$g xs=ok devs=ok grant=ok" 5 ||
		zcd_fail "guest $g did not report its checks"
	wait "$(cat /run/zcd/probe-$g.pid)"
	rc=$?
	cat /run/zcd/probe-$g.log
	[ $rc -eq 0 ] || zcd_fail "dom0 probe for $g failed ($rc)"
	zcd_result "smoke guest=$g domid_ok=1 grant=ok evtchn=ok"
done
xl list
for g in g1 g2; do zcd_guest_destroy "$g"; done
exit 0
