/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Strict and deferred DMA-table updates (dataplane/dma.c) over the sim
 * IOMMU, and the checker that walks ledger and table together.
 */
#include <stdlib.h>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "check.h"
#include "dma.h"

#define NB_BUFS 16

static struct zcd_buf_region region = {.nb_bufs = NB_BUFS, .buf_size = 4096, .pages_per_buf = 1};

static struct zcd_config *make_config(enum zcd_iommu_mode mode, uint32_t batch, uint32_t us)
{
	struct zcd_config *cfg = calloc(1, sizeof(*cfg));

	snprintf(cfg->iommu_backend, sizeof(cfg->iommu_backend), "sim");
	cfg->iommu_mode = mode;
	cfg->iommu_deferred_batch = batch;
	cfg->iommu_deferred_us = us;
	return cfg;
}

static int mapped(struct zcd_dma *dma, uint32_t id)
{
	return dma->ops->is_mapped(dma->mmu, id);
}

/* Ledger with buffers ids[] granted to VM 0, the rest free. */
static void grant(struct zcd_ledger *l, const uint32_t *ids, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		zcd_ledger_post(l, ids[i]);
		zcd_ledger_receive(l, ids[i]);
		zcd_ledger_grant(l, ids[i], 0);
	}
}

static void test_strict(void)
{
	struct zcd_config *cfg = make_config(ZCD_IOMMU_STRICT, 4, 1000);
	struct zcd_dma dma;
	struct zcd_ledger l;
	struct zcd_iommu_stats st;
	const uint32_t ids[] = {7, 3, 4, 5, 12}; /* unsorted: runs 3-5, 7, 12 */
	char err[256];

	CHECK_EQ(zcd_dma_init(&dma, cfg, &region, err, sizeof(err)), 0);
	CHECK(zcd_dma_has_table(&dma));
	CHECK_EQ(zcd_ledger_init(&l, NB_BUFS, NULL), 0);
	CHECK_EQ(zcd_dma_check(&dma, &l), 0);
	zcd_dma_unmap(&dma, ids, 5, rte_rdtsc());
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ(mapped(&dma, ids[i]), 0);
	dma.ops->stats(dma.mmu, &st);
	CHECK_EQ(st.unmap_calls, 3); /* one per contiguous run */
	CHECK_EQ(st.pages_unmapped, 5);
	/* The ledger still says free: the checker sees five disagreements. */
	CHECK_EQ(zcd_dma_check(&dma, &l), 5);
	grant(&l, ids, 5);
	CHECK_EQ(zcd_dma_check(&dma, &l), 0);
	/* Back in: mapped again, one call per buffer (a type1 mapping cannot split). */
	zcd_dma_map(&dma, ids, 5);
	dma.ops->stats(dma.mmu, &st);
	CHECK_EQ(st.map_calls, NB_BUFS + 5);
	CHECK_EQ(dma.st.deferred_buffers, 0);
	CHECK_EQ(dma.st.failures, 0);
	zcd_dma_fini(&dma);
	zcd_ledger_fini(&l);
	free(cfg);
}

static void test_deferred(void)
{
	struct zcd_config *cfg = make_config(ZCD_IOMMU_DEFERRED, 4, 1000);
	uint64_t hz = rte_get_tsc_hz(), t0 = rte_rdtsc();
	struct zcd_dma dma;
	struct zcd_ledger l;
	struct zcd_iommu_stats st;
	const uint32_t first[] = {1, 2, 3};
	const uint32_t more[] = {9, 10};
	char err[256];

	CHECK_EQ(zcd_dma_init(&dma, cfg, &region, err, sizeof(err)), 0);
	CHECK_EQ(zcd_ledger_init(&l, NB_BUFS, NULL), 0);
	grant(&l, first, 3);
	zcd_dma_unmap(&dma, first, 3, t0);
	/* Queued, still in the table: the exposure window. The checker accepts it. */
	CHECK_EQ(mapped(&dma, 1), 1);
	CHECK_EQ(dma.st.deferred_buffers, 3);
	CHECK_EQ(zcd_dma_check(&dma, &l), 0);
	/* Buffer 2 comes back before the flush: it just leaves the queue. */
	zcd_dma_map(&dma, &first[1], 1);
	dma.ops->stats(dma.mmu, &st);
	CHECK_EQ(st.map_calls, NB_BUFS);
	/* The fourth and fifth fill the batch of 4 (stale entry included): one flush. */
	grant(&l, more, 2);
	zcd_dma_unmap(&dma, more, 2, t0 + 1);
	CHECK_EQ(dma.st.flushes_by_count, 1);
	CHECK_EQ(mapped(&dma, 1), 0);
	CHECK_EQ(mapped(&dma, 3), 0);
	CHECK_EQ(mapped(&dma, 9), 0);
	CHECK_EQ(mapped(&dma, 2), 1);
	CHECK_EQ(mapped(&dma, 10), 1); /* queued after the flush */
	/* Time bound: nothing before it, a flush after it. */
	zcd_dma_tick(&dma, t0 + 2);
	CHECK_EQ(mapped(&dma, 10), 1);
	zcd_dma_tick(&dma, t0 + 2 + hz / 500);
	CHECK_EQ(dma.st.flushes_by_time, 1);
	CHECK_EQ(mapped(&dma, 10), 0);
	CHECK(dma.st.max_exposure_us >= 1000);
	dma.ops->stats(dma.mmu, &st);
	CHECK_EQ(st.unmap_calls, 4); /* {1}, {3}, {9} (2 was cancelled), then {10} */
	CHECK_EQ(st.errors, 0);
	zcd_dma_fini(&dma);
	zcd_ledger_fini(&l);
	free(cfg);
}

int main(int argc, char **argv)
{
	char *eal_args[] = {argv[0], "--no-huge", "-m", "64", "--no-pci", "-l", "0",
			    "--file-prefix", "zcd-test-dma", "--log-level", "lib.eal:error",
			    "--no-telemetry"};

	(void)argc;
	if (rte_eal_init((int)(sizeof(eal_args) / sizeof(eal_args[0])), eal_args) < 0) {
		fprintf(stderr, "test_dma: cannot initialise EAL\n");
		return 1;
	}
	test_strict();
	test_deferred();
	rte_eal_cleanup();
	return check_report("test_dma");
}
