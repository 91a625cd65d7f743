/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcdemux configuration: what the YAML file says, after validation.
 *
 * zcd_config_load() reads and checks the whole file before anything starts;
 * the structures below only ever hold valid values.
 */
#ifndef ZCDEMUX_CONFIG_H
#define ZCDEMUX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZCD_NAME_MAX 32 /* names: 1-31 of [A-Za-z0-9._-] */
#define ZCD_DEVARGS_MAX 1024
#define ZCD_FILE_PATH_MAX 1024
#define ZCD_MAX_PORTS 16
#define ZCD_MAX_VMS 256
#define ZCD_MAX_MACS_PER_VM 16

#define ZCD_MTU_MIN 68
#define ZCD_MTU_MAX 9000
#define ZCD_MTU_DEFAULT 1500
#define ZCD_CREDITS_MIN 1
#define ZCD_CREDITS_MAX 32768
#define ZCD_CREDITS_DEFAULT 256
#define ZCD_RX_DESC_MIN 32
#define ZCD_RX_DESC_MAX 16384
#define ZCD_RX_DESC_DEFAULT 512
#define ZCD_BURST_MIN 1
#define ZCD_BURST_MAX 64
#define ZCD_BURST_DEFAULT 32
#define ZCD_BUFFERS_MAX (1U << 22)
/* Below this many bytes copying costs the dataplane core less than
 * remapping (bench/RESULTS.md: the crossover of the two). */
#define ZCD_COPY_THRESHOLD_DEFAULT 256
#define ZCD_CREDIT_TIMEOUT_MS_DEFAULT 1000
#define ZCD_CREDIT_TIMEOUT_MS_MAX 600000

#define ZCD_UNKNOWN_UNICAST_DROP (-1)

enum zcd_iommu_mode {
	ZCD_IOMMU_STRICT, /* a buffer leaves the DMA table before its VM can see it */
	ZCD_IOMMU_DEFERRED, /* unmaps are batched: the device can reach it a while longer */
};

#define ZCD_DEFERRED_BATCH_DEFAULT 32 /* buffers per deferred unmap */
#define ZCD_DEFERRED_BATCH_MAX 4096
#define ZCD_DEFERRED_US_DEFAULT 1000 /* longest a deferred unmap waits */
#define ZCD_DEFERRED_US_MAX 1000000

struct zcd_port_config {
	char name[ZCD_NAME_MAX];
	char devargs[ZCD_DEVARGS_MAX]; /* handed to rte_dev_probe() as written */
	unsigned line; /* line of the entry in the file, for later messages */
};

struct zcd_vm_sim_config {
	char sink[ZCD_FILE_PATH_MAX]; /* pcap the guest writes; "" = discard */
	bool stall; /* the guest never returns pages */
	/* The guest gives every buffer back as soon as it gets it, unread
	 * (benchmarks: the dataplane's cost without the guest's). */
	bool instant_return;
	/* After each return the guest also sends a duplicate, one with the
	 * previous generation and one naming no buffer (tests). */
	bool hostile;
	/* After this many frames the guest gives back what it has read, then
	 * writes garbage over its ring indices and goes silent; 0 = never
	 * (tests: a guest that breaks its ring is cut off alone). */
	uint32_t scribble_after;
	/* After every this many frames the guest gives back what it read and
	 * goes away, and a new one connects once everything is back; 0 = never
	 * (tests and soak: guests coming and going). */
	uint32_t reboot_every;
	/* The guest keeps the last this many buffers it read (an application
	 * holding on to them), at most half its credits, and gives each back
	 * once that many newer ones came; asked to give some back, it does at
	 * once.  With reboot_every, it leaves holding them.  0 = it gives
	 * every buffer back as soon as it read it. */
	uint32_t hold;
};

struct zcd_vm_xen_config {
	uint32_t domid; /* 0 = find the domain by the VM's name */
};

#define ZCD_DOMID_MAX 32751 /* DOMID_FIRST_RESERVED - 1 */

/* How the guest learns that frames arrived. */
enum zcd_notify_mode {
	ZCD_NOTIFY_EVENT, /* an event (interrupt) per batch, unless the guest is polling */
	ZCD_NOTIFY_POLL, /* never an event: the guest polls its ring */
};

struct zcd_vm_config {
	char name[ZCD_NAME_MAX];
	uint8_t macs[ZCD_MAX_MACS_PER_VM][6];
	unsigned nb_macs;
	uint16_t vlan; /* 802.1Q VID 1-4094; 0 = untagged */
	uint32_t credits; /* most frames the VM may hold at once */
	enum zcd_notify_mode notify; /* vms[].notify, default event */
	struct zcd_vm_sim_config sim; /* only with hypervisor.backend sim */
	struct zcd_vm_xen_config xen; /* only with hypervisor.backend xen */
	unsigned line;
};

struct zcd_config {
	char path[ZCD_FILE_PATH_MAX]; /* the file as named on the command line */

	struct zcd_port_config ports[ZCD_MAX_PORTS];
	unsigned nb_ports;

	char hv_backend[ZCD_NAME_MAX]; /* hypervisor.backend */
	char iommu_backend[ZCD_NAME_MAX]; /* iommu.backend, default "none" */
	enum zcd_iommu_mode iommu_mode; /* iommu.mode, default strict */
	uint32_t iommu_deferred_batch; /* iommu.deferred_batch: unmap when this many wait */
	uint32_t iommu_deferred_us; /* iommu.deferred_max_us: or when the oldest waited this long */
	bool iommu_check; /* iommu.check: compare ledger and DMA table after every burst */

	uint32_t mtu; /* dataplane.mtu */
	int unknown_unicast_vm; /* index into vms[], or ZCD_UNKNOWN_UNICAST_DROP */
	uint32_t rx_descriptors; /* dataplane.rx_descriptors, per port */
	uint32_t burst; /* dataplane.burst */
	uint32_t buffers; /* dataplane.buffers; 0 = sized automatically */
	uint32_t copy_threshold; /* dataplane.copy_threshold: unicast shorter is copied */
	uint32_t credit_timeout_ms; /* dataplane.credit_timeout_ms: to give back after a credit cut */

	struct zcd_vm_config vms[ZCD_MAX_VMS];
	unsigned nb_vms;
};

/*
 * Read and validate a YAML configuration file.
 *
 * Returns a heap-allocated config (release with zcd_config_free()), or NULL
 * with a one-line message in err: "<file>:<line>: <key>: <what is wrong>"
 * (the line is left out where YAML gives none).  Does not log.
 */
struct zcd_config *zcd_config_load(const char *path, char *err, size_t errlen);

void zcd_config_free(struct zcd_config *cfg);

/* Parse "aa:bb:cc:dd:ee:ff" (hex, either case); 0 on success, -1 otherwise. */
int zcd_parse_mac(const char *text, uint8_t mac[6]);

/* Largest frame accepted, in bytes without FCS: mtu + 14, or + 18 if tagged. */
static inline uint32_t zcd_frame_limit(uint32_t mtu, bool tagged)
{
	return mtu + (tagged ? 18U : 14U);
}

#endif /* ZCDEMUX_CONFIG_H */
