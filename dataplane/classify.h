/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Demultiplexing: which VM(s) a frame is for.
 *
 * Key is (VLAN, destination MAC).  A frame whose outer ethertype is 802.1Q
 * (0x8100) has that tag's VID; an untagged frame, or a priority tag (VID 0),
 * has none.  Unicast to a known key goes to its VM; group addresses
 * (broadcast, multicast) go to every VM on the frame's VLAN; other unicast
 * follows dataplane.unknown_unicast.  The table is built once from the
 * configuration and only read on the hot path.
 */
#ifndef ZCDEMUX_CLASSIFY_H
#define ZCDEMUX_CLASSIFY_H

#include <stdint.h>
#include <string.h>

#include "zcdemux/config.h"

#define ZCD_MIN_FRAME 60 /* Ethernet minimum without FCS */
#define ZCD_ETHERTYPE_VLAN 0x8100
#define ZCD_VID_COUNT 4096

enum zcd_class_kind {
	ZCD_CLASS_UNICAST, /* one VM: result.vm */
	ZCD_CLASS_FLOOD, /* every VM on result.vlan */
	ZCD_CLASS_DROP, /* result.drop says why */
};

enum zcd_drop_reason {
	ZCD_DROP_RUNT,
	ZCD_DROP_OVERSIZE,
	ZCD_DROP_UNKNOWN_UNICAST,
	ZCD_DROP_NO_RECEIVER, /* a flood on a VLAN no VM is on */
	ZCD_DROP_REASON_COUNT
};

struct zcd_class_result {
	uint8_t kind; /* enum zcd_class_kind */
	uint8_t drop; /* enum zcd_drop_reason, for ZCD_CLASS_DROP */
	uint16_t vlan; /* VID the frame demultiplexes under, 0 = none */
	uint16_t vm; /* ZCD_CLASS_UNICAST */
};

struct zcd_demux_table {
	uint64_t *keys; /* open addressing, ZCD_DEMUX_EMPTY marks a free slot */
	uint16_t *vms;
	uint32_t mask;
	uint32_t flood_start[ZCD_VID_COUNT + 1]; /* VMs on VID v: flood_vms[start[v]..start[v+1]) */
	uint16_t *flood_vms;
	uint32_t limit_untagged; /* largest accepted frame */
	uint32_t limit_tagged;
	int unknown_unicast_vm; /* or ZCD_UNKNOWN_UNICAST_DROP */
};

#define ZCD_DEMUX_EMPTY UINT64_MAX

/*
 * Build from a validated config, with only the VMs v for which listed[v]
 * (every VM if listed is NULL).  0, or -1 with errno (ENOMEM).
 */
int zcd_demux_build(struct zcd_demux_table *t, const struct zcd_config *cfg, const bool *listed);
void zcd_demux_free(struct zcd_demux_table *t);

static inline uint64_t zcd_demux_key(uint16_t vlan, const uint8_t mac[6])
{
	return (uint64_t)vlan << 48 | (uint64_t)mac[0] << 40 | (uint64_t)mac[1] << 32 |
	       (uint64_t)mac[2] << 24 | (uint64_t)mac[3] << 16 | (uint64_t)mac[4] << 8 | mac[5];
}

static inline uint32_t zcd_demux_slot(const struct zcd_demux_table *t, uint64_t key)
{
	/* Fibonacci hashing: the top bits of key * 2^64/phi spread MACs well. */
	return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & t->mask;
}

/* VM index for (vlan, mac), or -1. */
static inline int zcd_demux_lookup(const struct zcd_demux_table *t, uint16_t vlan,
				   const uint8_t mac[6])
{
	uint64_t key = zcd_demux_key(vlan, mac);

	for (uint32_t slot = zcd_demux_slot(t, key);; slot = (slot + 1) & t->mask) {
		if (t->keys[slot] == key)
			return t->vms[slot];
		if (t->keys[slot] == ZCD_DEMUX_EMPTY)
			return -1;
	}
}

/* VMs on vlan (0 = untagged), in configuration order. */
static inline unsigned zcd_demux_flood_members(const struct zcd_demux_table *t, uint16_t vlan,
					       const uint16_t **vms)
{
	*vms = t->flood_vms + t->flood_start[vlan];
	return t->flood_start[vlan + 1] - t->flood_start[vlan];
}

/*
 * Classify one frame: its first bytes (at least 18 when len >= 60) and its
 * total length.  Pure function of the frame and the table.
 */
static inline struct zcd_class_result zcd_classify(const struct zcd_demux_table *t,
						   const uint8_t *frame, uint32_t len)
{
	struct zcd_class_result r = {.kind = ZCD_CLASS_DROP};
	const uint16_t *members;
	uint16_t ethertype;
	int vm;

	if (len < ZCD_MIN_FRAME) {
		r.drop = ZCD_DROP_RUNT;
		return r;
	}
	ethertype = (uint16_t)(frame[12] << 8 | frame[13]);
	if (ethertype == ZCD_ETHERTYPE_VLAN) {
		r.vlan = (uint16_t)((frame[14] << 8 | frame[15]) & 0x0fff);
		if (len > t->limit_tagged) {
			r.drop = ZCD_DROP_OVERSIZE;
			return r;
		}
	} else if (len > t->limit_untagged) {
		r.drop = ZCD_DROP_OVERSIZE;
		return r;
	}
	if (frame[0] & 0x01) {
		if (zcd_demux_flood_members(t, r.vlan, &members) == 0) {
			r.drop = ZCD_DROP_NO_RECEIVER;
			return r;
		}
		r.kind = ZCD_CLASS_FLOOD;
		return r;
	}
	vm = zcd_demux_lookup(t, r.vlan, frame);
	if (vm < 0)
		vm = t->unknown_unicast_vm;
	if (vm < 0) {
		r.drop = ZCD_DROP_UNKNOWN_UNICAST;
		return r;
	}
	r.kind = ZCD_CLASS_UNICAST;
	r.vm = (uint16_t)vm;
	return r;
}

const char *zcd_drop_reason_name(enum zcd_drop_reason reason);

#endif /* ZCDEMUX_CLASSIFY_H */
