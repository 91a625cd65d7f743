#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Smoke test, guest side (run by the domU /init as guest.sh NAME).  Proves
# the guest knows its name and role, that xenstore works from userspace and
# that the grant/event devices exist and work (zcd-xen-probe map).
name=$1
xs_name=$(xenstore-read name) || { echo "xenstore-read name failed"; exit 1; }
[ "$xs_name" = "$name" ] || { echo "xenstore name '$xs_name' != '$name'"; exit 1; }
[ "$ZCD_NAME" = "$name" ] || { echo "ZCD_NAME '$ZCD_NAME' != '$name'"; exit 1; }
for dev in evtchn gntdev gntalloc xenbus; do
	[ -c /dev/xen/$dev ] || { echo "/dev/xen/$dev missing"; exit 1; }
done
[ -c /dev/net/tun ] || { echo "/dev/net/tun missing"; exit 1; }
echo "guest $name (domid $ZCD_DOMID, role $ZCD_ROLE): xenstore and devices ok"
zcd-xen-probe map || exit 1
echo "ZCD-SMOKE name=$name role=$ZCD_ROLE xs=ok devs=ok grant=ok"
