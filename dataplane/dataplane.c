/* SPDX-License-Identifier: BSD-3-Clause */
/* Setting the dataplane up and taking it down; the hot path is in loop.c. */
#include <errno.h>
#include <string.h>

#include <rte_bus.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dataplane.h"

RTE_LOG_REGISTER(zcd_logtype, zcdemux, INFO);

#define POOL_SLACK_BUFFERS 64
#define UNUSED_TX_DESCRIPTORS 64 /* the driver may round it up */
#define SHUTDOWN_REVOKE_WAIT_S 5
#define SHUTDOWN_REVOKE_GAP_US 20000 /* each failed try may log per page (Xen) */

/*
 * Buffers for one NUMA node with nb_rx_queues of the ports' queues: every
 * queue's ring full, a burst in flight per queue, every VM at its credit
 * limit (its frames may all arrive on this node): then a VM that never
 * returns can only starve itself.
 */
static uint32_t node_pool_size(const struct zcd_config *cfg, unsigned nb_rx_queues)
{
	uint64_t n;

	n = (uint64_t)nb_rx_queues * (cfg->rx_descriptors + cfg->burst) + POOL_SLACK_BUFFERS;
	for (unsigned v = 0; v < cfg->nb_vms; v++)
		n += cfg->vms[v].credits;
	return n > ZCD_BUFFERS_MAX ? ZCD_BUFFERS_MAX : (uint32_t)n;
}

/*
 * RX queues for a device that should serve nb_workers lcores: one each as
 * far as it has them, spread by RSS where it hashes.  Devices without RSS
 * (net_pcap with several rx_pcap files, memif with several queues) fill
 * their queues by their own means.
 */
static uint16_t port_rx_queues(const struct rte_eth_dev_info *info, unsigned nb_workers,
			       struct rte_eth_conf *conf)
{
	unsigned device_max = info->max_rx_queues != 0 ? info->max_rx_queues : 1;
	uint16_t nb = (uint16_t)RTE_MIN(nb_workers, device_max);

	if (nb > 1 && info->flow_type_rss_offloads != 0) {
		conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf->rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP |
						    RTE_ETH_RSS_UDP | RTE_ETH_RSS_L2_PAYLOAD;
		conf->rx_adv_conf.rss_conf.rss_hf &= info->flow_type_rss_offloads;
	}
	return nb;
}

/* Probe the port's device and configure it; no buffer is posted yet. */
static int port_probe(struct zcd_dataplane *dp, unsigned idx, unsigned nb_workers)
{
	const struct zcd_port_config *pc = &dp->cfg->ports[idx];
	struct zcd_port_state *port = &dp->ports[idx];
	struct rte_eth_conf conf = {.rxmode = {.mtu = dp->cfg->mtu}};
	struct rte_eth_dev_info info;
	struct rte_dev_iterator it;
	uint16_t pid;
	bool found = false;
	int rc;

	rc = rte_dev_probe(pc->devargs);
	if (rc != 0 && rc != -EEXIST) {
		ZCD_LOG(ERR, "ports[%u] (%s): cannot probe \"%s\": %s\n", idx, pc->name, pc->devargs,
			strerror(-rc));
		return -1;
	}
	RTE_ETH_FOREACH_MATCHING_DEV(pid, pc->devargs, &it)
	{
		if (!found)
			port->port_id = pid;
		found = true;
	}
	if (!found) {
		ZCD_LOG(ERR, "ports[%u] (%s): \"%s\" is not an Ethernet device\n", idx, pc->name,
			pc->devargs);
		return -1;
	}
	for (unsigned p = 0; p < idx; p++) {
		if (dp->ports[p].port_id == port->port_id) {
			ZCD_LOG(ERR, "ports[%u] (%s): same device as ports[%u]\n", idx, pc->name, p);
			return -1;
		}
	}
	rc = rte_eth_dev_info_get(port->port_id, &info);
	if (rc != 0) {
		ZCD_LOG(ERR, "ports[%u] (%s): cannot get device info: %s\n", idx, pc->name,
			strerror(-rc));
		return -1;
	}
	if (dp->cfg->mtu > info.max_mtu) {
		ZCD_LOG(ERR, "ports[%u] (%s): dataplane.mtu %u exceeds the device's maximum %u\n",
			idx, pc->name, dp->cfg->mtu, info.max_mtu);
		return -1;
	}
	/* The kernel hands af_packet tagged frames without their tag; the PMD
	 * then tries to put it back into the mbuf, which fails on pool buffers
	 * and logs an error per frame.  Asking for stripping stops that, and
	 * the RX path restores the tag itself (loop.c). */
	if (strcmp(info.driver_name, "net_af_packet") == 0 &&
	    (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_VLAN_STRIP))
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_VLAN_STRIP;
	port->nb_rx_queues = port_rx_queues(&info, nb_workers, &conf);
	/* Transmit queues, never used: shared-memory ports (memif) pair each
	 * ring with the peer's, and a peer that also receives needs ours. */
	port->nb_tx_queues = info.max_tx_queues != 0 ? RTE_MIN(port->nb_rx_queues, info.max_tx_queues)
						       : 1;
	rc = rte_eth_dev_configure(port->port_id, port->nb_rx_queues, port->nb_tx_queues, &conf);
	if (rc != 0) {
		ZCD_LOG(ERR, "ports[%u] (%s): cannot configure: %s\n", idx, pc->name, strerror(-rc));
		return -1;
	}
	port->probed = true;
	return 0;
}

/* The NUMA node of a probed port (virtual devices have none: this lcore's). */
static int port_node(const struct zcd_dataplane *dp, unsigned p)
{
	int node = rte_eth_dev_socket_id(dp->ports[p].port_id);

	return node == SOCKET_ID_ANY ? (int)rte_socket_id() : node;
}

/*
 * One part of the pool per NUMA node with ports, sized for that node's RX
 * queues; an explicit dataplane.buffers is shared out by queue count.
 * Returns the number of parts.
 */
static unsigned pool_layout(struct zcd_dataplane *dp, unsigned nb_queues,
			    struct zcd_pool_part parts[ZCD_POOL_MAX_NODES])
{
	unsigned queues_on[ZCD_POOL_MAX_NODES] = {0}, nb_parts = 0, k;
	uint32_t shared = 0;

	for (unsigned p = 0; p < dp->nb_ports; p++) {
		int node = port_node(dp, p);

		for (k = 0; k < nb_parts && parts[k].socket != node; k++)
			;
		if (k == ZCD_POOL_MAX_NODES)
			k = 0; /* more nodes than parts: share the first */
		if (k == nb_parts)
			parts[nb_parts++] = (struct zcd_pool_part){.socket = node};
		queues_on[k] += dp->ports[p].nb_rx_queues;
	}
	if (nb_parts == 0)
		parts[nb_parts++] = (struct zcd_pool_part){.socket = (int)rte_socket_id()};
	for (k = 0; k < nb_parts; k++) {
		if (dp->cfg->buffers == 0) {
			parts[k].nb_bufs = node_pool_size(dp->cfg, queues_on[k]);
			continue;
		}
		parts[k].nb_bufs = k + 1 < nb_parts ? (uint32_t)((uint64_t)dp->cfg->buffers *
								 queues_on[k] / nb_queues)
						    : dp->cfg->buffers - shared;
		shared += parts[k].nb_bufs;
	}
	/* Any VM's frames may all come in on one node: each node's part must
	 * hold every credit besides its queues' needs. */
	dp->credit_room = UINT64_MAX;
	for (k = 0; k < nb_parts; k++) {
		uint64_t need = (uint64_t)queues_on[k] * (dp->cfg->rx_descriptors + dp->cfg->burst) +
				POOL_SLACK_BUFFERS;

		dp->credit_room = RTE_MIN(dp->credit_room,
					  parts[k].nb_bufs > need ? parts[k].nb_bufs - need : 0);
	}
	return nb_parts;
}

/* Give the port its queues and start it: it takes buffers from now on. */
static int port_start(struct zcd_dataplane *dp, unsigned idx)
{
	const struct zcd_port_config *pc = &dp->cfg->ports[idx];
	struct zcd_port_state *port = &dp->ports[idx];
	uint16_t nb_rxd = (uint16_t)dp->cfg->rx_descriptors, nb_txd = UNUSED_TX_DESCRIPTORS;
	int socket = port_node(dp, idx);
	struct rte_eth_dev_info info;
	int rc;

	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port->port_id, &nb_rxd, &nb_txd);
	if (rc == 0)
		rc = rte_eth_dev_info_get(port->port_id, &info);
	for (uint16_t q = 0; rc == 0 && q < port->nb_rx_queues; q++)
		rc = rte_eth_rx_queue_setup(port->port_id, q, nb_rxd, (unsigned)socket, NULL,
					    zcd_pool_mempool(dp->pool, socket));
	for (uint16_t q = 0; rc == 0 && q < port->nb_tx_queues; q++)
		rc = rte_eth_tx_queue_setup(port->port_id, q, nb_txd, (unsigned)socket, NULL);
	if (rc != 0) {
		ZCD_LOG(ERR, "ports[%u] (%s): cannot set up its queues: %s\n", idx, pc->name,
			strerror(-rc));
		return -1;
	}
	/* VMs own many MACs: the port must hand every frame to the demux. */
	rc = rte_eth_promiscuous_enable(port->port_id);
	if (rc != 0 && rc != -ENOTSUP)
		ZCD_LOG(WARNING, "ports[%u] (%s): promiscuous mode: %s\n", idx, pc->name,
			strerror(-rc));
	rc = rte_eth_allmulticast_enable(port->port_id);
	if (rc != 0 && rc != -ENOTSUP)
		ZCD_LOG(WARNING, "ports[%u] (%s): all-multicast mode: %s\n", idx, pc->name,
			strerror(-rc));
	rc = rte_eth_dev_start(port->port_id);
	if (rc != 0) {
		ZCD_LOG(ERR, "ports[%u] (%s): cannot start: %s\n", idx, pc->name, strerror(-rc));
		return -1;
	}
	port->started = true;
	ZCD_LOG(INFO, "port %s: DPDK port %u (%s), %u rx queue(s) of %u descriptors%s\n",
		pc->name, port->port_id, info.driver_name, port->nb_rx_queues, nb_rxd,
		port->nb_rx_queues > 1 && info.flow_type_rss_offloads != 0 ? ", RSS" : "");
	return 0;
}

static void ports_close(struct zcd_dataplane *dp)
{
	for (unsigned p = 0; p < dp->nb_ports; p++) {
		struct zcd_port_state *port = &dp->ports[p];

		if (!port->probed)
			continue;
		port->at_close = zcd_port_driver_counters(port);
		/* The driver gives its posted buffers back to the pool here. */
		if (port->started)
			rte_eth_dev_stop(port->port_id);
		rte_eth_dev_close(port->port_id);
		port->started = false;
		port->probed = false;
	}
}

/*
 * As many workers as the ports have RX queues.  Returns the RX queues of
 * all ports together.
 */
static unsigned workers_count(struct zcd_dataplane *dp)
{
	unsigned nb_queues = 0;

	dp->nb_workers = 1;
	for (unsigned p = 0; p < dp->nb_ports; p++) {
		dp->nb_workers = RTE_MAX(dp->nb_workers, (unsigned)dp->ports[p].nb_rx_queues);
		nb_queues += dp->ports[p].nb_rx_queues;
	}
	if (dp->nb_workers < rte_lcore_count())
		ZCD_LOG(WARNING, "%u lcores given, but the ports have RX queues for %u: "
			"the others stay idle\n", rte_lcore_count(), dp->nb_workers);
	return nb_queues;
}

/*
 * Worker 0 on the main lcore, the others on the EAL's other lcores in
 * order.  Their counters stay as they are (carried from an earlier run).
 */
static void workers_assign(struct zcd_dataplane *dp)
{
	unsigned w = 1, lcore;

	dp->workers[0].index = 0;
	dp->workers[0].lcore_id = rte_get_main_lcore();
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (w == dp->nb_workers)
			break;
		dp->workers[w].index = w;
		dp->workers[w].lcore_id = lcore;
		w++;
	}
	for (unsigned i = 0; i < ZCD_MAX_WORKERS; i++) {
		dp->workers[i].nb_touched = 0;
		dp->workers[i].batches = NULL;
	}
}

/* Each worker's per-VM burst scratch, on its lcore's node. */
static int workers_alloc(struct zcd_dataplane *dp)
{
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		struct zcd_worker *w = &dp->workers[i];

		/* Every slot: VMs may be added while running. */
		w->batches = rte_zmalloc_socket("zcd_batches", ZCD_MAX_VMS * sizeof(*w->batches),
						RTE_CACHE_LINE_SIZE,
						(int)rte_lcore_to_socket_id(w->lcore_id));
		if (w->batches == NULL) {
			ZCD_LOG(ERR, "out of DPDK memory for lcore %u's burst scratch\n",
				w->lcore_id);
			return -1;
		}
	}
	return 0;
}

int zcd_dataplane_vm_init(struct zcd_dataplane *dp, uint16_t vm)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	uint32_t credits = dp->cfg->vms[vm].credits;
	struct zcd_vm_counters kept = vs->c;

	memset(vs, 0, sizeof(*vs));
	vs->c = kept;
	rte_spinlock_init(&vs->lock);
	vs->credits = credits;
	vs->pending_revoke = rte_malloc_socket("zcd_pending", credits * sizeof(uint32_t), 0,
					       dp->pool->nodes[0].socket);
	if (vs->pending_revoke == NULL) {
		ZCD_LOG(ERR, "out of DPDK memory for VM %s\n", dp->cfg->vms[vm].name);
		return -1;
	}
	vs->credit_cap = credits;
	zcd_state_name_vm(dp->state, vm, dp->cfg->vms[vm].name);
	return 0;
}

/* The VM slots and the lcores' counters: in the state file, or in DPDK memory. */
static int counters_place(struct zcd_dataplane *dp, uint32_t nb_bufs, uint32_t buf_size,
			  int socket)
{
	char err[512];

	if (dp->state != NULL) {
		if (zcd_state_attach(dp->state, dp->cfg, nb_bufs, buf_size, err, sizeof(err)) != 0) {
			ZCD_LOG(ERR, "%s\n", err);
			return -1;
		}
		dp->vms = zcd_state_vms(dp->state);
		dp->workers = zcd_state_workers(dp->state);
		return 0;
	}
	dp->vms = rte_zmalloc_socket("zcd_vms", ZCD_MAX_VMS * sizeof(*dp->vms),
				     RTE_CACHE_LINE_SIZE, socket);
	dp->workers = rte_zmalloc_socket("zcd_workers", ZCD_MAX_WORKERS * sizeof(*dp->workers),
					 RTE_CACHE_LINE_SIZE, socket);
	if (dp->vms == NULL || dp->workers == NULL) {
		ZCD_LOG(ERR, "out of DPDK memory for %u VM slots\n", ZCD_MAX_VMS);
		return -1;
	}
	return 0;
}

/*
 * Guests outlive the process only with a state file and a backend that can
 * re-attach to them; only then is the pool in a file next to the state
 * file, so that the pages a guest kept are the new pool's pages.
 */
static const char *keep_prefix(const struct zcd_dataplane *dp)
{
	return dp->state != NULL && dp->hv_ops->vm_reattach != NULL ? dp->state->path : NULL;
}

static int pool_create(struct zcd_dataplane *dp, const struct zcd_pool_part *parts,
		       unsigned nb_parts, uint32_t pages_per_buf)
{
	struct zcd_pool_file file = { .fd = -1 };
	uint64_t bytes = 0;
	char err[512];

	for (unsigned k = 0; k < nb_parts; k++)
		bytes += (uint64_t)parts[k].nb_bufs * pages_per_buf * ZCD_PAGE_SIZE;
	if (keep_prefix(dp) != NULL) {
		file.fd = zcd_state_pool_file(dp->state, bytes, &file.kept, err, sizeof(err));
		if (file.fd < 0) {
			ZCD_LOG(ERR, "%s\n", err);
			return -1;
		}
	} else if (dp->state != NULL) {
		/* Nothing can be kept: no entry of the previous ledger is needed. */
		zcd_state_forget_previous(dp->state);
	}
	dp->pool = zcd_pool_create(parts, nb_parts, pages_per_buf,
				   dp->state != NULL ? zcd_state_ledger(dp->state) : NULL,
				   file.fd >= 0 ? &file : NULL, err, sizeof(err));
	if (file.fd >= 0)
		close(file.fd);
	if (dp->pool == NULL) {
		ZCD_LOG(ERR, "buffer pool: %s\n", err);
		return -1;
	}
	return 0;
}

/*
 * A buffer VM vm's guest can reach that the previous run's ledger does
 * not give it: end its access now, or keep the buffer out of use until
 * the guest lets go.  Returns false if it is still mapped.
 */
static bool revoke_stray(struct zcd_dataplane *dp, uint16_t vm, uint32_t id, uint32_t generation)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	bool revoked = false;

	dp->hv_ops->revoke(dp->hv, vm, &id, 1, &revoked);
	if (revoked || zcd_pool_keep(dp->pool, id, vm, generation) != 0)
		return revoked;
	zcd_ledger_abandon(&dp->pool->ledger, id, vm);
	vs->pending_revoke[vs->nb_pending_revoke++] = id;
	vs->outstanding++;
	return false;
}

/*
 * After a restart, before any port starts: the buffers each VM's guest
 * kept (it ran on, and the backend re-attached to it) stay GRANTED to it
 * at the generation it has, as the previous run's ledger says; what the
 * guest can reach without the ledger's say-so is revoked.  Counted as
 * kept instead of taken back (or lost, for a frame being handed over).
 * 0, or -1 (logged) if there was no memory to do so: nothing may start
 * while a guest can reach a buffer the pool would hand out.
 */
static int reattach_vms(struct zcd_dataplane *dp)
{
	struct zcd_state *st = dp->state;
	struct zcd_hv_return *held;

	if (st->previous_ledger == NULL || dp->hv_ops->vm_reattach == NULL)
		goto out;
	/* A guest reaches at most one buffer per grant slot, one per credit. */
	held = rte_malloc("zcd_reattach", ZCD_CREDITS_MAX * sizeof(*held), 0);
	if (held == NULL) {
		ZCD_LOG(ERR, "out of DPDK memory to take over the guests that ran on\n");
		return -1;
	}
	for (uint16_t v = 0; v < dp->nb_vms; v++) {
		struct zcd_vm_state *vs = &dp->vms[v];
		const char *name = dp->cfg->vms[v].name;
		uint32_t copies = 0, kept = 0, strays = 0, mapped = 0;
		bool served_on = false;
		unsigned n = dp->hv_ops->vm_reattach(dp->hv, v, held, ZCD_CREDITS_MAX, &copies,
						     &served_on);

		for (unsigned i = 0; i < n; i++) {
			uint32_t id = held[i].buf_id;
			enum zcd_buf_state was =
				served_on ? zcd_state_previously_held(st, id, name, held[i].generation)
					  : ZCD_BUF_STATE_COUNT;

			if (was == ZCD_BUF_STATE_COUNT ||
			    zcd_pool_keep(dp->pool, id, v, held[i].generation) != 0) {
				strays++;
				mapped += id < dp->pool->region.nb_bufs &&
					  !revoke_stray(dp, v, id, held[i].generation);
				continue;
			}
			zcd_state_count_kept(st, was);
			if (was == ZCD_BUF_GRANTED) {
				vs->c.reclaimed--; /* counted as taken back when the file was read */
			} else {
				vs->c.rx_packets++;
				vs->c.remapped++;
			}
			kept++;
		}
		vs->outstanding += kept + copies;
		if (n != 0 || copies != 0)
			ZCD_LOG(INFO, "%s: its guest ran on: %u buffers and %u copy pages kept\n",
				name, kept, copies);
		if (strays != 0 && !served_on)
			ZCD_LOG(INFO, "%s: its guest starts afresh: %u buffers it could still reach "
				"taken back, %u of them once the guest lets go\n", name, strays, mapped);
		else if (strays != 0)
			ZCD_LOG(WARNING, "%s: %u buffers its guest could reach were not its own: "
				"revoked, %u of them once the guest lets go\n", name, strays, mapped);
	}
	rte_free(held);
	zcd_pool_prune_free(dp->pool);
out:
	zcd_state_forget_previous(st);
	return 0;
}

/* The buffers VMs kept across a restart leave the device's DMA table. */
static void dma_drop_kept(struct zcd_dataplane *dp)
{
	const struct zcd_ledger *ledger = &dp->pool->ledger;

	for (uint32_t id = 0; id < ledger->nb_bufs; id++) {
		enum zcd_buf_state s = zcd_ledger_state(ledger, id);

		if (s == ZCD_BUF_GRANTED || s == ZCD_BUF_REVOKING)
			zcd_dma_unmap(&dp->dma, &id, 1, rte_rdtsc());
	}
	zcd_dma_flush(&dp->dma, rte_rdtsc());
}

/* What the state file says about the run before this one. */
static void state_report(const struct zcd_dataplane *dp)
{
	const struct zcd_state *st = dp->state;
	const struct zcd_state_totals *t = &st->hdr->totals;

	if (!st->found_previous) {
		ZCD_LOG(INFO, "state %s: new\n", st->path);
		return;
	}
	ZCD_LOG(INFO, "state %s: run %" PRIu64 ", after pid %d %s; every restart so far: %" PRIu64
		" frames lost in flight, %" PRIu64 " buffers taken back from VMs, %" PRIu64
		" being revoked, %" PRIu64 " kept by guests that ran on\n", st->path,
		st->hdr->incarnation, (int)st->previous_pid,
		st->previous_unclean ? "stopped without cleaning up" : "exited cleanly",
		t->lost_in_restart, t->taken_back, t->revoking, t->kept);
}

int zcd_dataplane_init(struct zcd_dataplane *dp, struct zcd_config *cfg, struct zcd_state *state)
{
	uint32_t pages_per_buf = zcd_pool_pages_per_buf(zcd_frame_limit(cfg->mtu, true));
	unsigned nb_lcores = RTE_MIN(rte_lcore_count(), (unsigned)ZCD_MAX_WORKERS), nb_queues;
	struct zcd_pool_part parts[ZCD_POOL_MAX_NODES];
	unsigned nb_parts;
	uint32_t nb_bufs;
	int socket;
	char err[256];

	memset(dp, 0, sizeof(*dp));
	dp->cfg = cfg;
	dp->state = state;
	dp->nb_vms = cfg->nb_vms;
	if (rte_lcore_count() > ZCD_MAX_WORKERS)
		ZCD_LOG(WARNING, "%u lcores given; at most %u poll\n", rte_lcore_count(),
			ZCD_MAX_WORKERS);
	/* The devices first: the pool goes where they are. */
	for (unsigned p = 0; p < cfg->nb_ports; p++) {
		dp->nb_ports = p + 1;
		if (port_probe(dp, p, nb_lcores) != 0)
			return -1;
	}
	nb_queues = workers_count(dp);
	/* The checker walks the whole ledger after every burst: only a ledger
	 * that no other lcore is changing can be checked. */
	if (cfg->iommu_check && dp->nb_workers > 1) {
		ZCD_LOG(ERR, "%s: iommu.check needs a single polling lcore, but %u poll here "
			"(EAL option -l)\n", cfg->path, dp->nb_workers);
		return -1;
	}
	if (cfg->buffers != 0 &&
	    cfg->buffers <= (uint64_t)nb_queues * (cfg->rx_descriptors + cfg->burst)) {
		ZCD_LOG(ERR, "%s: dataplane.buffers: %u is too small for %u RX queues of %u "
			"descriptors (and a burst each)\n", cfg->path, cfg->buffers, nb_queues,
			cfg->rx_descriptors);
		return -1;
	}
	nb_parts = pool_layout(dp, nb_queues, parts);
	nb_bufs = 0;
	for (unsigned k = 0; k < nb_parts; k++)
		nb_bufs += parts[k].nb_bufs;
	/* Per-VM state next to the first node's buffers. */
	socket = parts[0].socket;
	if (counters_place(dp, nb_bufs, pages_per_buf * ZCD_PAGE_SIZE, socket) != 0)
		return -1;
	workers_assign(dp);
	dp->hv_ops = zcd_hv_find(cfg->hv_backend);
	if (pool_create(dp, parts, nb_parts, pages_per_buf) != 0)
		return -1;
	for (unsigned k = 0; k < nb_parts; k++)
		ZCD_LOG(INFO, "pool: %u buffers of %u page(s), %zu KiB, NUMA node %d\n",
			parts[k].nb_bufs, pages_per_buf,
			(size_t)parts[k].nb_bufs * dp->pool->region.buf_size / 1024, parts[k].socket);
	if (zcd_demux_build(&dp->demux, cfg, NULL) != 0) {
		ZCD_LOG(ERR, "demux table: %s\n", strerror(errno));
		return -1;
	}
	rte_spinlock_init(&dp->reload.lock);
	if (workers_alloc(dp) != 0)
		return -1;
	for (uint16_t v = 0; v < cfg->nb_vms; v++) {
		if (zcd_dataplane_vm_init(dp, v) != 0)
			return -1;
		dp->vms[v].slot = ZCD_VM_SERVING;
	}

	dp->hv = dp->hv_ops->create(cfg, &dp->pool->region, keep_prefix(dp), err, sizeof(err));
	if (dp->hv == NULL) {
		ZCD_LOG(ERR, "hypervisor %s: %s\n", cfg->hv_backend, err);
		return -1;
	}
	dp->hv_features = dp->hv_ops->features(dp->hv);
	dp->vms_in_parallel = dp->hv_features & ZCD_HV_F_PARALLEL_VMS;
	rte_spinlock_init(&dp->hv_lock);
	dp->copy_threshold = cfg->copy_threshold;
	if (!(dp->hv_features & ZCD_HV_F_REMAP))
		ZCD_LOG(WARNING, "hypervisor %s cannot remap pages here: every frame is copied\n",
			cfg->hv_backend);
	for (unsigned v = 0; v < cfg->nb_vms; v++) {
		if (dp->hv_ops->vm_connect(dp->hv, v, err, sizeof(err)) != 0) {
			ZCD_LOG(ERR, "%s: %s\n", cfg->path, err);
			return -1;
		}
	}
	if (state != NULL) {
		if (reattach_vms(dp) != 0)
			return -1;
		state_report(dp);
	}

	/* An IOMMU backend maps the pool for the devices probed (all but what
	 * VMs kept); then the ports start and post buffers. */
	if (zcd_dma_init(&dp->dma, cfg, &dp->pool->region, err, sizeof(err)) != 0) {
		ZCD_LOG(ERR, "%s\n", err);
		return -1;
	}
	dma_drop_kept(dp);
	for (unsigned p = 0; p < cfg->nb_ports; p++)
		if (port_start(dp, p) != 0)
			return -1;
	return 0;
}

void zcd_dataplane_abandon_vm(struct zcd_dataplane *dp, uint16_t vm)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	struct zcd_ledger *ledger = &dp->pool->ledger;

	for (uint32_t id = 0; id < ledger->nb_bufs; id++) {
		if (ledger->entries[id].owner != vm ||
		    zcd_ledger_state(ledger, id) != ZCD_BUF_GRANTED)
			continue;
		zcd_ledger_abandon(ledger, id, vm);
		vs->pending_revoke[vs->nb_pending_revoke++] = id;
		vs->c.reclaimed++;
	}
	/* Copies in flight are in the guest's own pages: nothing to take back. */
	vs->outstanding = vs->nb_pending_revoke;
}

int zcd_dataplane_shutdown(struct zcd_dataplane *dp)
{
	const struct zcd_ledger *ledger = &dp->pool->ledger;
	uint64_t deadline = rte_rdtsc() + SHUTDOWN_REVOKE_WAIT_S * rte_get_tsc_hz();
	uint32_t count[ZCD_BUF_STATE_COUNT];
	unsigned pending;
	int rc = 0;

	for (uint16_t v = 0; v < dp->nb_vms; v++) {
		if (dp->vms[v].slot == ZCD_VM_FREE)
			continue;
		dp->hv_ops->vm_disconnect(dp->hv, v);
		dp->vms[v].connected = false;
	}
	/* Returns published before the guests stopped still count. */
	for (uint16_t v = 0; v < dp->nb_vms; v++)
		while (zcd_dataplane_poll_returns(dp, v) != 0)
			;
	zcd_dma_flush(&dp->dma, rte_rdtsc());
	zcd_dma_check(&dp->dma, ledger);
	/* Before the VMs' buffers are taken back and scrubbed. */
	zcd_pool_fault_verify(dp->pool);
	for (uint16_t v = 0; v < dp->nb_vms; v++)
		zcd_dataplane_abandon_vm(dp, v);
	/* Guests that complied let go of everything; give stragglers a moment. */
	do {
		pending = 0;
		for (uint16_t v = 0; v < dp->nb_vms; v++) {
			zcd_dataplane_retry_revokes(dp, v);
			pending += dp->vms[v].nb_pending_revoke;
		}
		if (pending != 0)
			rte_delay_us_sleep(SHUTDOWN_REVOKE_GAP_US);
	} while (pending != 0 && rte_rdtsc() < deadline);
	for (uint16_t v = 0; v < dp->nb_vms; v++)
		if (dp->vms[v].nb_pending_revoke != 0)
			ZCD_LOG(ERR, "%s: %u buffers still mapped by the guest; they stay out of use\n",
				dp->cfg->vms[v].name, dp->vms[v].nb_pending_revoke);
	ports_close(dp);
	zcd_dma_check(&dp->dma, ledger);

	zcd_ledger_tally(ledger, count);
	if (zcd_pool_free_count(dp->pool) != ledger->nb_bufs || count[ZCD_BUF_FREE] != ledger->nb_bufs) {
		ZCD_LOG(ERR, "pool not whole at exit: %u of %u buffers free (ledger: %u free, "
			"%u posted, %u held, %u granted, %u revoking)\n",
			zcd_pool_free_count(dp->pool), ledger->nb_bufs, count[ZCD_BUF_FREE],
			count[ZCD_BUF_POSTED], count[ZCD_BUF_HELD], count[ZCD_BUF_GRANTED],
			count[ZCD_BUF_REVOKING]);
		rc = -1;
	}
	if (ledger->violations != 0) {
		ZCD_LOG(ERR, "%" PRIu64 " buffer ledger violations\n", ledger->violations);
		rc = -1;
	}
	if (dp->dma.st.mismatches != 0 || dp->dma.st.failures != 0) {
		ZCD_LOG(ERR, "DMA table and ledger disagreed %" PRIu64 " times, %" PRIu64
			" failed table updates\n", dp->dma.st.mismatches, dp->dma.st.failures);
		rc = -1;
	}
	return rc;
}

void zcd_dataplane_forget_vm(struct zcd_dataplane *dp, uint16_t vm)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	const struct zcd_vm_counters *c = &vs->c;
	struct zcd_vm_counters *sum = &dp->removed;

	zcd_dataplane_hv_lock(dp);
	dp->hv_ops->vm_remove(dp->hv, vm);
	zcd_dataplane_hv_unlock(dp);
	ZCD_LOG(INFO, "%s: removed; %" PRIu64 " frames delivered, %" PRIu64 " returned, %" PRIu64
		" taken back\n", dp->cfg->vms[vm].name, c->rx_packets, c->returned, c->reclaimed);
	sum->rx_packets += c->rx_packets;
	sum->rx_bytes += c->rx_bytes;
	sum->remapped += c->remapped;
	sum->copied += c->copied;
	sum->dropped_no_credit += c->dropped_no_credit;
	sum->dropped_disconnected += c->dropped_disconnected;
	sum->returned += c->returned;
	sum->bad_returns += c->bad_returns;
	sum->forged_returns += c->forged_returns;
	sum->stale_returns += c->stale_returns;
	sum->duplicate_returns += c->duplicate_returns;
	sum->reclaimed += c->reclaimed;
	sum->credit_timeouts += c->credit_timeouts;
	dp->nb_removed++;

	__atomic_store_n(&vs->slot, ZCD_VM_FREE, __ATOMIC_RELEASE);
	rte_free(vs->pending_revoke);
	memset(vs, 0, sizeof(*vs));
	memset(&dp->cfg->vms[vm], 0, sizeof(dp->cfg->vms[vm]));
	zcd_state_name_vm(dp->state, vm, "");
	while (dp->nb_vms > 0 && dp->vms[dp->nb_vms - 1].slot == ZCD_VM_FREE)
		dp->nb_vms--;
	dp->cfg->nb_vms = dp->nb_vms;
}

void zcd_dataplane_fini(struct zcd_dataplane *dp)
{
	ports_close(dp);
	if (dp->hv != NULL)
		dp->hv_ops->destroy(dp->hv);
	zcd_dma_fini(&dp->dma);
	if (dp->vms != NULL)
		for (unsigned v = 0; v < ZCD_MAX_VMS; v++)
			rte_free(dp->vms[v].pending_revoke);
	for (unsigned i = 0; dp->workers != NULL && i < dp->nb_workers; i++)
		rte_free(dp->workers[i].batches);
	if (dp->state == NULL) {
		rte_free(dp->vms);
		rte_free(dp->workers);
	}
	zcd_demux_free(&dp->demux);
	zcd_pool_destroy(dp->pool);
	memset(dp, 0, sizeof(*dp));
}
