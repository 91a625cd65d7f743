/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The xenstore handshake between the zcdemux backend (dom0 or a driver
 * domain) and a guest, in the usual split-driver shape.  States are Xen's
 * (xen/include/public/io/xenbus.h, enum xenbus_state).
 *
 *   backend dir   /local/domain/<backend-id>/backend/zcdemux/<guest-domid>/0
 *                 owned by the backend; the guest may read it, nobody else
 *   frontend dir  /local/domain/<guest-domid>/device/zcdemux/0
 *                 owned by the guest; the backend may read it
 *
 * Both directories are created by the backend (as a toolstack would create
 * them for a configured device).  The sequence:
 *
 *   backend   writes the ring grants, event channel, buffer geometry, then
 *             state = InitWait
 *   guest     maps the ring, binds the event channel, shares its copy pages
 *             and a table of their grants with the backend, writes the
 *             table's grants, then state = Initialised
 *   backend   maps the copy pages (once, persistently), state = Connected
 *   guest     state = Connected; frames flow
 *
 *   backend   state = Closing when it stops or the VM is removed; the guest
 *             unmaps every buffer it holds, unshares its pages, state =
 *             Closed, and waits for the backend to come back (InitWait).
 *   guest     state = Closing/Closed when it goes away; the backend stops
 *             delivering, ends its grants and reclaims what it held.
 *
 *   A backend process that dies leaves both states Connected.  The guest
 *   carries on (its notifications are lost meanwhile); the next backend
 *   either takes the connection over where it was (the ring and the grants
 *   are the same: see include/zcdemux/xen_grant.h, ADOPT) and binds to the
 *   guest's event-channel again, or sets Closing and starts afresh.
 *
 * All values are decimal text.  Grant references of the ring area and of the
 * copy-page table are numbered keys (ring-ref0, ring-ref1, ...), as
 * multi-page rings of other split drivers are.
 */
#ifndef ZCDEMUX_XENBUS_H
#define ZCDEMUX_XENBUS_H

#define ZCD_XS_TYPE "zcdemux"
#define ZCD_XS_DEVID 0

/* Written by the backend (backend dir). */
#define ZCD_XS_FRONTEND "frontend" /* path of the frontend dir */
#define ZCD_XS_FRONTEND_ID "frontend-id"
#define ZCD_XS_STATE "state"
#define ZCD_XS_PROTOCOL "protocol" /* ZCD_RING_VERSION */
#define ZCD_XS_RING_PAGES "ring-pages" /* pages of the shared ring area */
#define ZCD_XS_RING_REF_FMT "ring-ref%u" /* grant of ring page %u, writable */
#define ZCD_XS_EVENT_CHANNEL "event-channel" /* unbound port for the guest to bind */
#define ZCD_XS_BUFFER_PAGES "buffer-pages" /* pages per buffer (rx_desc.nr_pages) */
#define ZCD_XS_COPY_SLOTS_MAX "copy-slots-max" /* most copy slots the backend maps */
#define ZCD_XS_NOTIFY_POLL "notify-poll" /* 1: no events will come, poll the ring; absent: 0 */

/* Written by the backend into the frontend dir when it creates it. */
#define ZCD_XS_BACKEND "backend" /* path of the backend dir */
#define ZCD_XS_BACKEND_ID "backend-id"

/*
 * Written by the guest (frontend dir).  The copy pages' grants do not fit in
 * xenstore (a domain may own only a few hundred nodes), so the guest lists
 * them in a table of little-endian uint32_t grant references, slot s page p
 * at index s * buffer-pages + p, in pages it shares too; xenstore carries the
 * table's own references.
 */
#define ZCD_XS_COPY_SLOTS "copy-slots" /* copy slots shared, each buffer-pages pages */
#define ZCD_XS_COPY_TABLE_PAGES "copy-table-pages" /* pages of the grant table */
#define ZCD_XS_COPY_TABLE_REF_FMT "copy-table-ref%u" /* grant of table page %u */
/* The guest's end of the event channel: a backend that restarts binds to it again. */
#define ZCD_XS_GUEST_EVENT_CHANNEL "event-channel"

/* Longest xenstore path these make: "/local/domain/32767/backend/zcdemux/32767/0/ring-ref65535". */
#define ZCD_XS_PATH_MAX 128

/*
 * Descriptors under Xen (include/zcdemux/ring.h):
 *   remapped frame: handle = grant reference of the buffer's first page; the
 *                   nr_pages pages use handle, handle + 1, ... (granted
 *                   read-only to the guest by the backend);
 *   copied frame:   flags has ZCD_RXF_COPY, buf_id = copy slot, handle =
 *                   index of the slot's first page in the guest's copy
 *                   area (slot * buffer-pages), offset 0.
 */

#endif /* ZCDEMUX_XENBUS_H */
