/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The poll loop: receive a burst, classify all of it, then hand off per VM
 * with one backend call each; take back returned buffers in batches.
 * No allocation, syscall or log line per frame.
 */
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_prefetch.h>

#include "dataplane.h"

#define IDLE_SLEEP_MAX_US 200
#define IDLE_BEFORE_SLEEP_US 1000 /* see idle_backoff */
#define REVOKE_RETRY_MAX_MS 1000u

/* Queue a frame for vm; the first frame for a VM in this burst lists it. */
static inline void batch_add(struct zcd_worker *w, uint16_t vm, struct rte_mbuf *m,
			     const struct zcd_class_result *cls, uint8_t kind)
{
	struct zcd_vm_batch *b = &w->batches[vm];
	struct zcd_handoff *h = &b->items[b->len];

	if (b->len == 0)
		w->touched[w->nb_touched++] = vm;
	h->data = rte_pktmbuf_mtod(m, const uint8_t *);
	h->buf_id = zcd_mbuf_buf_id(m);
	h->generation = 0;
	h->offset = m->data_off;
	h->length = (uint16_t)m->pkt_len;
	h->vlan = cls->vlan;
	h->kind = kind;
	b->mbufs[b->len++] = m;
}

/* A VM's lock, taken only when another lcore may touch the VM too. */
static inline void vm_lock(struct zcd_dataplane *dp, uint16_t vm)
{
	if (dp->nb_workers > 1)
		rte_spinlock_lock(zcd_dataplane_vm_lock(dp, vm));
}

static inline void vm_unlock(struct zcd_dataplane *dp, uint16_t vm)
{
	if (dp->nb_workers > 1)
		rte_spinlock_unlock(zcd_dataplane_vm_lock(dp, vm));
}

/*
 * Hand vm its batch: what credits allow, unmapped from the device first,
 * in one backend call.  Frames it did not take are counted and, when they
 * were to be remapped, go back to the device's DMA table and are dropped.
 */
static void flush_vm(struct zcd_dataplane *dp, struct zcd_worker *w, uint16_t vm,
		     uint64_t now_tsc, struct rte_mbuf **to_free, unsigned *nb_free)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	struct zcd_vm_batch *b = &w->batches[vm];
	struct zcd_ledger *ledger = &dp->pool->ledger;
	uint32_t remap_ids[ZCD_BURST_MAX];
	unsigned n = b->len, allowed, delivered, nb_remap = 0;

	b->len = 0;
	vm_lock(dp, vm);
	allowed = vs->credits > vs->outstanding ? RTE_MIN(n, vs->credits - vs->outstanding) : 0;
	if (unlikely(!vs->connected)) {
		for (unsigned i = 0; i < n; i++)
			if (b->items[i].kind == ZCD_HANDOFF_REMAP)
				to_free[(*nb_free)++] = b->mbufs[i];
		vs->c.dropped_disconnected += n;
		vm_unlock(dp, vm);
		return;
	}
	for (unsigned i = 0; i < allowed; i++) {
		struct zcd_handoff *h = &b->items[i];

		if (h->kind == ZCD_HANDOFF_REMAP) {
			h->generation = zcd_ledger_next_generation(ledger, h->buf_id);
			remap_ids[nb_remap++] = h->buf_id;
			w->scrubbed_bytes += zcd_pool_clean_around_frame(dp->pool, b->mbufs[i]);
		}
	}
	/* Strict mode: the device loses access before the guest gains it. */
	zcd_dma_unmap(&dp->dma, remap_ids, nb_remap, now_tsc);
	delivered = allowed != 0 ? dp->hv_ops->handoff(dp->hv, vm, b->items, allowed) : 0;

	nb_remap = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct zcd_handoff *h = &b->items[i];

		if (i < delivered) {
			vs->c.rx_packets++;
			vs->c.rx_bytes += h->length;
			if (h->kind == ZCD_HANDOFF_REMAP) {
				zcd_ledger_grant(ledger, h->buf_id, vm);
				vs->c.remapped++;
				if (unlikely(dp->pool->fault.armed))
					zcd_pool_fault_victim(dp->pool, h->buf_id);
			} else {
				vs->c.copied++;
			}
			continue;
		}
		vs->c.dropped_no_credit++;
		if (h->kind == ZCD_HANDOFF_REMAP) {
			if (i < allowed)
				remap_ids[nb_remap++] = h->buf_id;
			to_free[(*nb_free)++] = b->mbufs[i];
		}
	}
	zcd_dma_map(&dp->dma, remap_ids, nb_remap);
	vs->outstanding += delivered;
	vm_unlock(dp, vm);
}

/*
 * Some drivers hand the 802.1Q tag over in vlan_tci instead of the frame
 * (net_af_packet always does).  VMs get frames as they were on the wire, so
 * put it back, into the headroom.
 */
static void restore_vlan_tag(struct rte_mbuf *m)
{
	uint8_t *frame;

	if (m->data_off < 4 || m->data_len < 12)
		return;
	frame = rte_pktmbuf_mtod(m, uint8_t *) - 4;
	memmove(frame, frame + 4, 12);
	frame[12] = ZCD_ETHERTYPE_VLAN >> 8;
	frame[13] = ZCD_ETHERTYPE_VLAN & 0xff;
	frame[14] = (uint8_t)(m->vlan_tci >> 8);
	frame[15] = (uint8_t)m->vlan_tci;
	m->data_off -= 4;
	m->data_len += 4;
	m->pkt_len += 4;
	m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
}

unsigned zcd_dataplane_rx_burst(struct zcd_dataplane *dp, struct zcd_worker *w, unsigned port)
{
	struct rte_mbuf *pkts[ZCD_BURST_MAX];
	unsigned nb = rte_eth_rx_burst(dp->ports[port].port_id, (uint16_t)w->index, pkts,
				       (uint16_t)dp->cfg->burst);

	if (nb != 0)
		zcd_dataplane_rx_frames(dp, w, port, pkts, nb);
	return nb;
}

void zcd_dataplane_rx_frames(struct zcd_dataplane *dp, struct zcd_worker *w, unsigned port,
			     struct rte_mbuf **pkts, unsigned nb)
{
	/* Each frame is freed at most once: dropped, flooded (after the copies)
	 * or not taken by its VM. */
	struct rte_mbuf *to_free[ZCD_BURST_MAX];
	struct zcd_port_counters *port_c = &w->port_c[port];
	struct zcd_ledger *ledger = &dp->pool->ledger;
	/* Only deferred unmaps need the time, once per burst (rdtsc is not
	 * free, least of all in a VM). */
	uint64_t now_tsc = dp->dma.keeps_table ? rte_rdtsc() : 0;
	unsigned nb_free = 0;

	/* A device's writes are not in this core's caches: ask for every
	 * header now, while the ledger is brought up to date. */
	for (unsigned i = 0; i < nb; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (unsigned i = 0; i < nb; i++) {
		zcd_pool_note_frame(dp->pool, pkts[i]);
		if (unlikely(dp->pool->fault.armed) && zcd_pool_fault_received(dp->pool, pkts[i])) {
			/* The device wrote (or failed to write) somewhere else. */
			for (struct rte_mbuf *seg = pkts[i]; seg != NULL; seg = seg->next)
				zcd_ledger_receive(ledger, zcd_mbuf_buf_id(seg));
			port_c->rx_packets++;
			to_free[nb_free++] = pkts[i];
			/* Keep the others in arrival order. */
			memmove(&pkts[i], &pkts[i + 1], (nb - i - 1) * sizeof(pkts[0]));
			nb--;
			i--;
			continue;
		}
		if (unlikely(pkts[i]->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED)) {
			restore_vlan_tag(pkts[i]);
			zcd_pool_note_frame(dp->pool, pkts[i]);
		}
		port_c->rx_packets++;
		port_c->rx_bytes += pkts[i]->pkt_len;
		for (struct rte_mbuf *seg = pkts[i]; seg != NULL; seg = seg->next)
			zcd_ledger_receive(ledger, zcd_mbuf_buf_id(seg));
	}

	/* Pass 1: a destination for every frame. */
	for (unsigned i = 0; i < nb; i++) {
		struct rte_mbuf *m = pkts[i];
		struct zcd_class_result cls;
		const uint16_t *members;
		unsigned nb_members;

		cls = zcd_classify(&dp->demux, rte_pktmbuf_mtod(m, const uint8_t *), m->pkt_len);
		switch (cls.kind) {
		case ZCD_CLASS_UNICAST:
			/* A frame fits one buffer unless it is oversize, which
			 * classification already dropped. */
			if (unlikely(m->nb_segs != 1)) {
				w->drops[ZCD_DROP_OVERSIZE]++;
				to_free[nb_free++] = m;
				break;
			}
			/* Small frames cost less to copy than to remap. */
			if (m->pkt_len >= dp->copy_threshold && (dp->hv_features & ZCD_HV_F_REMAP)) {
				batch_add(w, cls.vm, m, &cls, ZCD_HANDOFF_REMAP);
				break;
			}
			batch_add(w, cls.vm, m, &cls, ZCD_HANDOFF_COPY);
			to_free[nb_free++] = m;
			break;
		case ZCD_CLASS_FLOOD:
			/* One page has one owner: every receiver gets a copy. */
			nb_members = zcd_demux_flood_members(&dp->demux, cls.vlan, &members);
			for (unsigned k = 0; k < nb_members; k++)
				batch_add(w, members[k], m, &cls, ZCD_HANDOFF_COPY);
			to_free[nb_free++] = m;
			break;
		default:
			w->drops[cls.drop]++;
			to_free[nb_free++] = m;
			break;
		}
	}

	/* Pass 2: one handoff per destination VM. */
	for (unsigned t = 0; t < w->nb_touched; t++)
		flush_vm(dp, w, w->touched[t], now_tsc, to_free, &nb_free);
	w->nb_touched = 0;

	if (nb_free != 0)
		rte_pktmbuf_free_bulk(to_free, nb_free);
	if (unlikely(dp->cfg->iommu_check))
		zcd_dma_check(&dp->dma, ledger);
}

void zcd_dataplane_recycle(struct zcd_dataplane *dp, const uint32_t *ids, unsigned n)
{
	struct rte_mbuf *mbufs[ZCD_RETURN_BURST];
	struct zcd_pool *pool = dp->pool;

	while (n != 0) {
		unsigned k = RTE_MIN(n, (unsigned)ZCD_RETURN_BURST);

		/* What the VM saw stays recorded as dirty and is zeroed before
		 * the buffer next leaves the dataplane (pool.h). */
		for (unsigned i = 0; i < k; i++) {
			mbufs[i] = pool->mbuf_of[ids[i]];
			zcd_ledger_scrubbed(&pool->ledger, ids[i]);
		}
		zcd_dma_map(&dp->dma, ids, k);
		rte_pktmbuf_free_bulk(mbufs, k);
		ids += k;
		n -= k;
	}
	if (unlikely(dp->cfg->iommu_check))
		zcd_dma_check(&dp->dma, &pool->ledger);
}

/* Recycle what revokes ended, for all VMs together: one DMA-table update
 * and one trip into the free pool. */
static void flush_reclaimed(struct zcd_dataplane *dp)
{
	if (dp->nb_reclaimed != 0)
		zcd_dataplane_recycle(dp, dp->reclaimed, dp->nb_reclaimed);
	dp->nb_reclaimed = 0;
}

/* End access to buffers vm returned; the rest stay pending. Returns revoked count. */
static unsigned revoke_returned(struct zcd_dataplane *dp, uint16_t vm, const uint32_t *ids,
				unsigned n)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	bool revoked[ZCD_RETURN_BURST];
	uint32_t done[ZCD_RETURN_BURST];
	unsigned nb_done = 0;

	dp->hv_ops->revoke(dp->hv, vm, ids, n, revoked);
	for (unsigned i = 0; i < n; i++) {
		if (revoked[i]) {
			zcd_ledger_revoked(&dp->pool->ledger, ids[i]);
			done[nb_done++] = ids[i];
		} else {
			vs->pending_revoke[vs->nb_pending_revoke++] = ids[i];
		}
	}
	/* Credit comes back only when the guest can no longer reach the page. */
	vs->outstanding -= nb_done;
	if (dp->nb_reclaimed + nb_done > ZCD_RECLAIM_BATCH)
		flush_reclaimed(dp);
	memcpy(dp->reclaimed + dp->nb_reclaimed, done, nb_done * sizeof(done[0]));
	dp->nb_reclaimed += nb_done;
	return nb_done;
}

static unsigned retry_vm_revokes(struct zcd_dataplane *dp, uint16_t vm);

static unsigned poll_vm_returns(struct zcd_dataplane *dp, uint16_t vm)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	struct zcd_hv_return rets[ZCD_RETURN_BURST];
	struct zcd_hv_return_tally tally = {0};
	uint32_t ids[ZCD_RETURN_BURST];
	unsigned n, nb_ok = 0, work;
	bool forget = false;

	vm_lock(dp, vm);
	n = dp->hv_ops->poll_returns(dp->hv, vm, rets, ZCD_RETURN_BURST, &tally);
	vs->outstanding -= tally.copies_released;
	vs->c.returned += tally.copies_released;
	vs->c.bad_returns += tally.copies_rejected;
	work = n + tally.copies_released + tally.copies_rejected;

	for (unsigned i = 0; i < n; i++) {
		switch (zcd_ledger_accept_return(&dp->pool->ledger, vm, rets[i].buf_id,
						 rets[i].generation)) {
		case ZCD_RETURN_OK:
			ids[nb_ok++] = rets[i].buf_id;
			continue;
		case ZCD_RETURN_FORGED:
			vs->c.forged_returns++;
			break;
		case ZCD_RETURN_STALE:
			vs->c.stale_returns++;
			break;
		case ZCD_RETURN_DUPLICATE:
			vs->c.duplicate_returns++;
			break;
		}
		vs->c.bad_returns++;
	}
	vs->c.returned += nb_ok;
	if (nb_ok != 0)
		revoke_returned(dp, vm, ids, nb_ok);

	/* Retry pages a guest still maps, backing off from 1 ms to 1 s while
	 * nothing comes back: each try may cost a hypercall and, under Xen, a
	 * kernel log line per page still in use. */
	if (unlikely(vs->nb_pending_revoke != 0) && rte_rdtsc() >= vs->revoke_retry_tsc) {
		unsigned revoked = retry_vm_revokes(dp, vm);

		work += revoked;
		vs->revoke_retry_ms = revoked != 0 || vs->revoke_retry_ms == 0
					      ? 1
					      : RTE_MIN(vs->revoke_retry_ms * 2, REVOKE_RETRY_MAX_MS);
		vs->revoke_retry_tsc = rte_rdtsc() + vs->revoke_retry_ms * rte_get_tsc_hz() / 1000;
	}
	/* A guest that went away is let go once nothing of ours is in reach;
	 * a VM removed by a reload is forgotten then. */
	if (unlikely(vs->releasing) && vs->nb_pending_revoke == 0) {
		vs->releasing = false;
		forget = vs->slot == ZCD_VM_REMOVING;
		if (!forget)
			dp->hv_ops->vm_release(dp->hv, vm);
	}
	vm_unlock(dp, vm);
	if (unlikely(forget))
		zcd_dataplane_forget_vm(dp, vm);
	return work;
}

unsigned zcd_dataplane_poll_returns(struct zcd_dataplane *dp, uint16_t vm)
{
	unsigned work = poll_vm_returns(dp, vm);

	flush_reclaimed(dp);
	return work;
}

unsigned zcd_dataplane_poll_all_returns(struct zcd_dataplane *dp)
{
	unsigned work = 0;

	for (uint16_t v = 0; v < dp->nb_vms; v++) {
		const struct zcd_vm_state *vs = &dp->vms[v];

		/* A VM that holds nothing of ours has nothing to give back;
		 * anything else it wrote is read at the next tick
		 * (poll_idle_vms).  Read without its lock: a VM another lcore
		 * just served is seen on the next round. */
		if (__atomic_load_n(&vs->outstanding, __ATOMIC_RELAXED) == 0 &&
		    likely(!vs->releasing))
			continue;
		work += poll_vm_returns(dp, v);
	}
	flush_reclaimed(dp);
	return work;
}

/*
 * Once per tick, the rings of connected VMs that hold nothing too: a guest
 * that breaks its ring (or returns buffers it does not hold) while idle is
 * caught then, not at its next frame.
 */
static unsigned poll_idle_vms(struct zcd_dataplane *dp)
{
	unsigned work = 0;

	for (uint16_t v = 0; v < dp->nb_vms; v++) {
		const struct zcd_vm_state *vs = &dp->vms[v];

		if (!vs->connected || vs->releasing ||
		    __atomic_load_n(&vs->outstanding, __ATOMIC_RELAXED) != 0)
			continue;
		work += poll_vm_returns(dp, v);
	}
	flush_reclaimed(dp);
	return work;
}

static unsigned retry_vm_revokes(struct zcd_dataplane *dp, uint16_t vm)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	unsigned nb = vs->nb_pending_revoke, done = 0;

	/* Oldest first; what fails again goes back to the end of the list. */
	while (nb != 0) {
		unsigned k = RTE_MIN(nb, (unsigned)ZCD_RETURN_BURST);
		uint32_t retry[ZCD_RETURN_BURST];

		memcpy(retry, vs->pending_revoke, k * sizeof(retry[0]));
		memmove(vs->pending_revoke, vs->pending_revoke + k,
			(vs->nb_pending_revoke - k) * sizeof(retry[0]));
		vs->nb_pending_revoke -= k;
		done += revoke_returned(dp, vm, retry, k);
		nb -= k;
	}
	return done;
}

unsigned zcd_dataplane_retry_revokes(struct zcd_dataplane *dp, uint16_t vm)
{
	unsigned done;

	vm_lock(dp, vm);
	done = retry_vm_revokes(dp, vm);
	vm_unlock(dp, vm);

	flush_reclaimed(dp);
	return done;
}

unsigned zcd_dataplane_take_back(struct zcd_dataplane *dp, uint16_t vm)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	unsigned nb_pending;

	/* What it gave back before it went counts as returned. */
	while (zcd_dataplane_poll_returns(dp, vm) != 0)
		;
	vm_lock(dp, vm);
	zcd_dataplane_abandon_vm(dp, vm);
	vs->releasing = true;
	nb_pending = vs->nb_pending_revoke;
	vm_unlock(dp, vm);
	return nb_pending;
}

void zcd_dataplane_set_credits(struct zcd_dataplane *dp, uint16_t vm, uint32_t credits)
{
	struct zcd_vm_state *vs = &dp->vms[vm];
	uint32_t over;

	vm_lock(dp, vm);
	vs->credits = RTE_MIN(credits, vs->credit_cap);
	over = vs->connected && vs->outstanding > vs->credits ? vs->outstanding - vs->credits : 0;
	if (dp->hv_ops->vm_set_credits != NULL)
		dp->hv_ops->vm_set_credits(dp->hv, vm, vs->credits, over);
	vs->credit_deadline_tsc =
		over != 0 ? rte_rdtsc() + dp->cfg->credit_timeout_ms * rte_get_tsc_hz() / 1000 : 0;
	vm_unlock(dp, vm);
	if (over != 0)
		ZCD_LOG(INFO, "%s: credits cut to %u: asked to give back %u buffers within %u ms\n",
			dp->cfg->vms[vm].name, vs->credits, over, dp->cfg->credit_timeout_ms);
}

unsigned zcd_dataplane_check_credits(struct zcd_dataplane *dp, uint64_t now_tsc)
{
	unsigned cut = 0;

	for (uint16_t v = 0; v < dp->nb_vms; v++) {
		struct zcd_vm_state *vs = &dp->vms[v];
		uint32_t over = 0;

		if (likely(vs->credit_deadline_tsc == 0))
			continue;
		vm_lock(dp, v);
		if (!vs->connected || vs->outstanding <= vs->credits)
			vs->credit_deadline_tsc = 0; /* gave back, or went away */
		else if (now_tsc >= vs->credit_deadline_tsc) {
			vs->credit_deadline_tsc = 0;
			vs->connected = false;
			vs->c.credit_timeouts++;
			over = vs->outstanding - vs->credits;
			/* The backend reports it down; the event takes back what it holds. */
			if (dp->hv_ops->vm_cut_off != NULL)
				dp->hv_ops->vm_cut_off(dp->hv, v);
		}
		vm_unlock(dp, v);
		if (over == 0)
			continue;
		ZCD_LOG(WARNING, "%s: still %u buffers over its credits after %u ms: cut off\n",
			dp->cfg->vms[v].name, over, dp->cfg->credit_timeout_ms);
		if (dp->hv_ops->vm_cut_off == NULL)
			ZCD_LOG(INFO, "%s: taking back %u buffers\n", dp->cfg->vms[v].name,
				zcd_dataplane_take_back(dp, v));
		cut++;
	}
	return cut;
}

unsigned zcd_dataplane_poll_events(struct zcd_dataplane *dp)
{
	struct zcd_hv_event ev[16];
	unsigned n;

	zcd_dataplane_hv_lock(dp);
	n = dp->hv_ops->poll_events(dp->hv, ev, RTE_DIM(ev));
	zcd_dataplane_hv_unlock(dp);
	for (unsigned i = 0; i < n; i++) {
		uint16_t vm = ev[i].vm;
		struct zcd_vm_state *vs = &dp->vms[vm];

		/* A VM being removed has been cut off already. */
		if (vs->slot != ZCD_VM_SERVING)
			continue;
		vm_lock(dp, vm);
		vs->connected = ev[i].kind == ZCD_HV_VM_UP;
		vm_unlock(dp, vm);
		if (ev[i].kind == ZCD_HV_VM_UP) {
			ZCD_LOG(INFO, "%s: guest connected\n", dp->cfg->vms[vm].name);
			continue;
		}
		ZCD_LOG(INFO, "%s: guest gone or cut off; taking back %u buffers\n",
			dp->cfg->vms[vm].name, zcd_dataplane_take_back(dp, vm));
	}
	return n;
}

static bool all_vms_drained(struct zcd_dataplane *dp)
{
	for (uint16_t v = 0; v < dp->nb_vms; v++) {
		bool drained;

		vm_lock(dp, v);
		drained = !dp->vms[v].connected || dp->hv_ops->vm_drained(dp->hv, v);
		vm_unlock(dp, v);
		if (!drained)
			return false;
	}
	return true;
}

/* Receive a burst from every port that has a queue for w; returns frames. */
static unsigned poll_rx_queues(struct zcd_dataplane *dp, struct zcd_worker *w)
{
	unsigned rx = 0;

	for (unsigned p = 0; p < dp->nb_ports; p++)
		if (w->index < dp->ports[p].nb_rx_queues)
			rx += zcd_dataplane_rx_burst(dp, w, p);
	return rx;
}

/*
 * Idle: back off so that an idle daemon does not hold a core (and guests
 * sharing it get to run).  Sleep only after a while without work: a loaded
 * loop that finds an empty ring between bursts must not sleep, since waking
 * up can take milliseconds (in a VM above all) and the device's ring fills
 * meanwhile.
 */
struct idle_backoff {
	uint64_t last_work_tsc;
	uint64_t before_sleep_tsc;
	unsigned sleep_us;
};

static void idle_backoff_init(struct idle_backoff *b, uint64_t now)
{
	b->last_work_tsc = now;
	b->before_sleep_tsc = IDLE_BEFORE_SLEEP_US * rte_get_tsc_hz() / 1000000;
	b->sleep_us = 1;
}

static void idle_backoff_worked(struct idle_backoff *b, uint64_t now)
{
	b->last_work_tsc = now;
	b->sleep_us = 1;
}

static void idle_backoff_wait(struct idle_backoff *b, uint64_t now)
{
	if (now - b->last_work_tsc < b->before_sleep_tsc) {
		rte_pause();
		return;
	}
	rte_delay_us_sleep(b->sleep_us);
	b->sleep_us = RTE_MIN(b->sleep_us * 2, (unsigned)IDLE_SLEEP_MAX_US);
}

struct remote_worker_arg {
	struct zcd_dataplane *dp;
	struct zcd_worker *w;
};

void zcd_dataplane_pause_workers(struct zcd_dataplane *dp)
{
	if (dp->nb_workers == 1)
		return;
	__atomic_store_n(&dp->workers_ctl, ZCD_WORKERS_PAUSE, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&dp->workers_held, __ATOMIC_ACQUIRE) != dp->nb_workers - 1)
		rte_pause();
}

void zcd_dataplane_resume_workers(struct zcd_dataplane *dp)
{
	if (dp->nb_workers == 1)
		return;
	__atomic_store_n(&dp->workers_ctl, ZCD_WORKERS_RUN, __ATOMIC_RELEASE);
}

/* Wait out a pause; false if the worker is to return. */
static bool worker_hold(struct zcd_dataplane *dp)
{
	int ctl = __atomic_load_n(&dp->workers_ctl, __ATOMIC_ACQUIRE);

	if (likely(ctl == ZCD_WORKERS_RUN))
		return true;
	if (ctl == ZCD_WORKERS_STOP)
		return false;
	/* Everything this lcore did is visible to the main lcore before it counts us. */
	__atomic_add_fetch(&dp->workers_held, 1, __ATOMIC_RELEASE);
	while ((ctl = __atomic_load_n(&dp->workers_ctl, __ATOMIC_ACQUIRE)) == ZCD_WORKERS_PAUSE)
		rte_pause();
	__atomic_sub_fetch(&dp->workers_held, 1, __ATOMIC_RELEASE);
	return ctl != ZCD_WORKERS_STOP;
}

/* A worker on a remote lcore: its queues only, until the main lcore stops it. */
static int remote_worker_main(void *arg)
{
	const struct remote_worker_arg *a = arg;
	struct zcd_dataplane *dp = a->dp;
	struct zcd_worker *w = a->w;
	struct idle_backoff idle;
	uint64_t now = rte_rdtsc();

	idle_backoff_init(&idle, now);
	while (worker_hold(dp)) {
		unsigned rx = poll_rx_queues(dp, w);

		now = rte_rdtsc();
		if (rx != 0) {
			__atomic_store_n(&w->last_rx_tsc, now, __ATOMIC_RELAXED);
			idle_backoff_worked(&idle, now);
			continue;
		}
		idle_backoff_wait(&idle, now);
	}
	return 0;
}

/* How long since any worker last received, in TSC cycles. */
static uint64_t rx_idle_for(const struct zcd_dataplane *dp, uint64_t now)
{
	uint64_t latest = 0;

	for (unsigned i = 0; i < dp->nb_workers; i++)
		latest = RTE_MAX(latest, __atomic_load_n(&dp->workers[i].last_rx_tsc,
							 __ATOMIC_RELAXED));
	/* Another core's TSC may run a little ahead of this one's. */
	return latest >= now ? 0 : now - latest;
}

static void stop_remote_workers(struct zcd_dataplane *dp, unsigned nb_launched)
{
	__atomic_store_n(&dp->workers_ctl, ZCD_WORKERS_STOP, __ATOMIC_RELEASE);
	for (unsigned i = 1; i <= nb_launched; i++)
		rte_eal_wait_lcore(dp->workers[i].lcore_id);
}

/* A reload asked for by SIGHUP or by telemetry (not yet served). */
static bool reload_wanted(struct zcd_dataplane *dp, volatile sig_atomic_t *reload)
{
	if (*reload) {
		*reload = 0;
		return true;
	}
	return __atomic_load_n(&dp->reload.requested, __ATOMIC_ACQUIRE) !=
	       __atomic_load_n(&dp->reload.done, __ATOMIC_RELAXED);
}

int zcd_dataplane_run(struct zcd_dataplane *dp, const struct zcd_run_limits *limits,
		      volatile sig_atomic_t *quit, volatile sig_atomic_t *reload)
{
	struct remote_worker_arg args[ZCD_MAX_WORKERS];
	struct zcd_worker *w0 = &dp->workers[0];
	const uint64_t hz = rte_get_tsc_hz();
	uint64_t now = rte_rdtsc();
	uint64_t deadline = limits->duration_s ? now + limits->duration_s * hz : UINT64_MAX;
	uint64_t idle_exit = limits->idle_exit_ms ? limits->idle_exit_ms * hz / 1000 : 0;
	uint64_t next_stats = limits->stats_interval_s ? now + limits->stats_interval_s * hz
						      : UINT64_MAX;
	uint64_t next_dma_check = now, next_events = now;
	struct idle_backoff idle;

	dp->started_tsc = now;
	for (unsigned i = 0; i < dp->nb_workers; i++)
		dp->workers[i].last_rx_tsc = now;
	__atomic_store_n(&dp->workers_ctl, ZCD_WORKERS_RUN, __ATOMIC_RELAXED);
	__atomic_store_n(&dp->workers_held, 0, __ATOMIC_RELAXED);
	/* Guests already up get the first frames, whichever lcore has them. */
	zcd_dataplane_poll_events(dp);
	next_events = now + hz / 1000;
	for (unsigned i = 1; i < dp->nb_workers; i++) {
		args[i] = (struct remote_worker_arg){.dp = dp, .w = &dp->workers[i]};
		if (rte_eal_remote_launch(remote_worker_main, &args[i],
					  dp->workers[i].lcore_id) != 0) {
			ZCD_LOG(ERR, "cannot start worker %u on lcore %u\n", i,
				dp->workers[i].lcore_id);
			stop_remote_workers(dp, i - 1);
			dp->stopped_tsc = rte_rdtsc();
			return -1;
		}
	}
	idle_backoff_init(&idle, now);
	while (!*quit) {
		unsigned rx, work = 0;

		/* Guests coming and going, and a new configuration. */
		if (unlikely(now >= next_events)) {
			work += zcd_dataplane_poll_events(dp);
			work += zcd_dataplane_check_credits(dp, now);
			work += poll_idle_vms(dp);
			if (unlikely(reload_wanted(dp, reload))) {
				zcd_dataplane_reload(dp);
				work++;
			}
			next_events = now + hz / 1000;
		}
		rx = poll_rx_queues(dp, w0);
		work += rx;
		work += zcd_dataplane_poll_all_returns(dp);

		now = rte_rdtsc();
		zcd_dma_tick(&dp->dma, now);
		if (now >= deadline)
			break;
		if (unlikely(now >= next_stats)) {
			zcd_stats_log_line(dp);
			if (limits->stats_json != NULL &&
			    zcd_stats_write_json(dp, limits->stats_json) != 0)
				ZCD_LOG(WARNING, "cannot write %s\n", limits->stats_json);
			next_stats = now + limits->stats_interval_s * hz;
		}
		if (rx != 0)
			w0->last_rx_tsc = now;
		if (work != 0) {
			idle_backoff_worked(&idle, now);
			continue;
		}

		if (idle_exit != 0 && rx_idle_for(dp, now) >= idle_exit && all_vms_drained(dp))
			break;
		/* Ledger and DMA table must agree at every point; idle time is
		 * when checking costs nothing.  Other lcores may be moving
		 * buffers meanwhile: then only shutdown checks. */
		if (dp->nb_workers == 1 && now >= next_dma_check) {
			zcd_dma_check(&dp->dma, &dp->pool->ledger);
			next_dma_check = now + hz / 10;
		}
		idle_backoff_wait(&idle, now);
	}
	stop_remote_workers(dp, dp->nb_workers - 1);
	dp->stopped_tsc = rte_rdtsc();
	return 0;
}
