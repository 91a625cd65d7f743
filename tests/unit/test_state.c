/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the state file (dataplane/state.c): the lock, the layout,
 * and recovery after a run that was killed: what its ledger said is
 * accounted for, counters go to the VM and port of the same name,
 * generations go on.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "dataplane.h"
#include "state.h"

#define NB_BUFS 64
#define BUF_SIZE 4096

static void config(struct zcd_config *cfg, const char *const *vms, unsigned nb_vms)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nb_ports = 1;
	snprintf(cfg->ports[0].name, ZCD_NAME_MAX, "uplink");
	cfg->nb_vms = nb_vms;
	for (unsigned v = 0; v < nb_vms; v++)
		snprintf(cfg->vms[v].name, ZCD_NAME_MAX, "%s", vms[v]);
}

static struct zcd_state *open_sized(const char *path, const struct zcd_config *cfg,
				     uint32_t nb_bufs, uint32_t buf_size)
{
	char err[512] = "";
	struct zcd_state *st = zcd_state_lock(path, false, err, sizeof(err));

	CHECK(st != NULL);
	if (st == NULL) {
		fprintf(stderr, "lock: %s\n", err);
		return NULL;
	}
	CHECK_EQ(zcd_state_attach(st, cfg, nb_bufs, buf_size, err, sizeof(err)), 0);
	return st;
}

static struct zcd_state *open_attached(const char *path, const struct zcd_config *cfg,
				       uint32_t nb_bufs)
{
	return open_sized(path, cfg, nb_bufs, BUF_SIZE);
}

/* The second process on a file is refused, or waits (not tested: it blocks). */
static void test_lock(const char *path)
{
	static const char *const vms[] = {"a"};
	struct zcd_config cfg;
	struct zcd_state *st, *second;
	char err[512] = "";

	config(&cfg, vms, 1);
	st = open_attached(path, &cfg, NB_BUFS);
	second = zcd_state_lock(path, false, err, sizeof(err));
	CHECK(second == NULL);
	CHECK_STR_CONTAINS(err, "in use by zcdemux pid");
	CHECK_STR_CONTAINS(err, "--standby waits to take over");
	zcd_state_close(st);
	second = zcd_state_lock(path, false, err, sizeof(err));
	CHECK(second != NULL);
	zcd_state_close(second);
}

/*
 * A run killed with buffers in every state; the next one, with its VMs in
 * another order and a new one, accounts for them.
 */
static void test_recovery_after_kill(const char *path)
{
	static const char *const first[] = {"vm1", "vm2"}, *const second[] = {"vm3", "vm2", "vm1"};
	struct zcd_config cfg;
	struct zcd_state *st;
	struct zcd_ledger_entry *ledger;
	struct zcd_vm_state *vms;
	struct zcd_worker *workers;

	unlink(path);
	config(&cfg, first, 2);
	st = open_attached(path, &cfg, NB_BUFS);
	if (st == NULL)
		return;
	CHECK(!st->found_previous);
	CHECK_EQ(st->hdr->incarnation, 1);
	ledger = zcd_state_ledger(st);
	vms = zcd_state_vms(st);
	workers = zcd_state_workers(st);
	for (uint32_t id = 0; id < NB_BUFS; id++)
		CHECK_EQ(ledger[id].generation, 1);
	/* What the killed run was doing. */
	ledger[0] = (struct zcd_ledger_entry){.state = ZCD_BUF_GRANTED, .owner = 1, .generation = 9};
	ledger[1] = (struct zcd_ledger_entry){.state = ZCD_BUF_GRANTED, .owner = 1, .generation = 4};
	ledger[2] = (struct zcd_ledger_entry){.state = ZCD_BUF_GRANTED, .owner = 0, .generation = 2};
	ledger[3] = (struct zcd_ledger_entry){.state = ZCD_BUF_HELD, .generation = 7};
	ledger[4] = (struct zcd_ledger_entry){.state = ZCD_BUF_REVOKING, .owner = 0};
	ledger[5] = (struct zcd_ledger_entry){.state = ZCD_BUF_POSTED};
	vms[0].c.rx_packets = 100;
	vms[0].c.reclaimed = 3;
	vms[1].c.rx_packets = 50;
	vms[1].c.returned = 48;
	workers[0].port_c[0].rx_packets = 120;
	workers[1].port_c[0].rx_packets = 40;
	zcd_state_close(st); /* no mark_clean: as if killed */

	config(&cfg, second, 3);
	st = open_attached(path, &cfg, NB_BUFS);
	if (st == NULL)
		return;
	CHECK(st->found_previous);
	CHECK(st->previous_unclean);
	CHECK_EQ(st->previous_pid, getpid());
	CHECK_EQ(st->hdr->incarnation, 2);
	CHECK_EQ(st->hdr->totals.restarts, 1);
	CHECK_EQ(st->hdr->totals.unclean, 1);
	CHECK_EQ(st->hdr->totals.lost_in_restart, 1);
	CHECK_EQ(st->hdr->totals.taken_back, 3);
	CHECK_EQ(st->hdr->totals.revoking, 1);
	CHECK_EQ(st->hdr->totals.posted_at_exit, 1);
	ledger = zcd_state_ledger(st);
	vms = zcd_state_vms(st);
	workers = zcd_state_workers(st);
	/* Every buffer free again, one generation on. */
	CHECK_EQ(ledger[0].generation, 10);
	CHECK_EQ(ledger[3].generation, 8);
	CHECK_EQ(ledger[4].generation, 1);
	CHECK_EQ(ledger[9].generation, 2);
	for (uint32_t id = 0; id < NB_BUFS; id++)
		CHECK_EQ(ledger[id].state, ZCD_BUF_FREE);
	/* Counters by name: vm1 is slot 2 now, vm2 slot 1, vm3 is new. */
	CHECK_EQ(vms[0].c.rx_packets, 0);
	CHECK_EQ(vms[1].c.rx_packets, 50);
	CHECK_EQ(vms[1].c.returned, 48);
	CHECK_EQ(vms[1].c.reclaimed, 2);
	CHECK_EQ(vms[2].c.rx_packets, 100);
	CHECK_EQ(vms[2].c.reclaimed, 4);
	CHECK_EQ(workers[0].port_c[0].rx_packets, 160);
	CHECK_EQ(workers[1].port_c[0].rx_packets, 0);
	CHECK(strcmp(st->hdr->vm_names[2], "vm1") == 0);

	/* A clean exit leaves nothing to account for. */
	ledger[7].state = ZCD_BUF_GRANTED;
	zcd_state_mark_clean(st);
	zcd_state_close(st);
	st = open_attached(path, &cfg, NB_BUFS / 2);
	if (st == NULL)
		return;
	CHECK(!st->previous_unclean);
	CHECK_EQ(st->hdr->totals.restarts, 2);
	CHECK_EQ(st->hdr->totals.taken_back, 3);
	/* Another pool size: every generation starts past the highest. */
	ledger = zcd_state_ledger(st);
	CHECK_EQ(ledger[0].generation, 11);
	CHECK_EQ(ledger[31].generation, 11);
	zcd_state_close(st);
}

/*
 * A run refused for want of space (here: beyond RLIMIT_FSIZE) says so and
 * leaves the killed run's state for the next run to account for.
 */
static void test_no_space_keeps_previous(const char *path)
{
	static const char *const vms[] = {"vm1"};
	struct zcd_config cfg;
	struct zcd_state *st;
	struct zcd_ledger_entry *ledger;
	struct rlimit before, limit;
	uint64_t taken_back;
	char err[512] = "";

	config(&cfg, vms, 1);
	st = open_attached(path, &cfg, NB_BUFS);
	if (st == NULL)
		return;
	taken_back = st->hdr->totals.taken_back; /* totals add up over every run */
	ledger = zcd_state_ledger(st);
	ledger[5] = (struct zcd_ledger_entry){.state = ZCD_BUF_GRANTED, .owner = 0, .generation = 7};
	zcd_state_close(st); /* killed: never marked clean */

	/* Room for that file, not for one with a million buffers. */
	CHECK_EQ(getrlimit(RLIMIT_FSIZE, &before), 0);
	limit = before;
	limit.rlim_cur = 4u << 20;
	signal(SIGXFSZ, SIG_IGN);
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
	st = zcd_state_lock(path, false, err, sizeof(err));
	CHECK(st != NULL);
	if (st != NULL) {
		CHECK_EQ(zcd_state_attach(st, &cfg, 1u << 20, BUF_SIZE, err, sizeof(err)), -1);
		CHECK_STR_CONTAINS(err, "cannot reserve");
		CHECK_STR_CONTAINS(err, strerror(EFBIG));
		zcd_state_close(st);
	}
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &before), 0);
	signal(SIGXFSZ, SIG_DFL);

	st = open_attached(path, &cfg, NB_BUFS);
	if (st == NULL)
		return;
	CHECK(st->found_previous && st->previous_unclean);
	CHECK_EQ(st->hdr->totals.taken_back, taken_back + 1);
	CHECK_EQ(zcd_state_ledger(st)[5].generation, 8);
	zcd_state_close(st);
}

/* The pool file's first byte, or -1 if it cannot be read. */
static int pool_byte(const char *path)
{
	char pool[128];
	unsigned char byte;
	FILE *f;
	int c;

	snprintf(pool, sizeof(pool), "%s.pool", path);
	f = fopen(pool, "rb");
	if (f == NULL)
		return -1;
	c = fread(&byte, 1, 1, f) == 1 ? byte : -1;
	fclose(f);
	return c;
}

static int pool_file(struct zcd_state *st, bool *kept)
{
	char err[512] = "";
	int fd = zcd_state_pool_file(st, NB_BUFS * BUF_SIZE, kept, err, sizeof(err));

	CHECK(fd >= 0);
	if (fd < 0)
		fprintf(stderr, "pool file: %s\n", err);
	return fd;
}

/*
 * After a kill, the previous ledger and the pool file are kept for the
 * buffers guests may have kept, as long as the pool is laid out the same
 * way; buffers counted as kept are not counted as taken back or lost.
 */
static void test_kept_buffers(const char *path)
{
	static const char *const first[] = {"vm1", "vm2"}, *const second[] = {"vm2"};
	struct zcd_config cfg;
	struct zcd_state *st;
	struct zcd_ledger_entry *ledger;
	uint64_t taken_back, lost;
	bool kept = true;
	int fd;

	unlink(path);
	config(&cfg, first, 2);
	st = open_attached(path, &cfg, NB_BUFS);
	if (st == NULL)
		return;
	CHECK(st->previous_ledger == NULL);
	fd = pool_file(st, &kept);
	CHECK(!kept);
	CHECK(fd >= 0 && pwrite(fd, "\x5a", 1, 0) == 1);
	close(fd);
	ledger = zcd_state_ledger(st);
	ledger[3] = (struct zcd_ledger_entry){.state = ZCD_BUF_GRANTED, .owner = 1, .generation = 5};
	ledger[4] = (struct zcd_ledger_entry){.state = ZCD_BUF_HELD, .generation = 2};
	zcd_state_close(st); /* killed */

	/* vm2 is in slot 0 now; the previous ledger names slots of its run. */
	config(&cfg, second, 1);
	st = open_attached(path, &cfg, NB_BUFS);
	if (st == NULL)
		return;
	CHECK(st->previous_ledger != NULL);
	if (st->previous_ledger != NULL) {
		CHECK_EQ(st->previous_ledger[3].state, ZCD_BUF_GRANTED);
		CHECK_EQ(st->previous_ledger[3].generation, 5);
		CHECK(strcmp(st->previous_vm_names[st->previous_ledger[3].owner], "vm2") == 0);
		CHECK_EQ(st->previous_ledger[4].state, ZCD_BUF_HELD);
	}
	/* Which buffers it gave to whom, at what generation. */
	CHECK_EQ(zcd_state_previously_held(st, 3, "vm2", 5), ZCD_BUF_GRANTED);
	CHECK_EQ(zcd_state_previously_held(st, 3, "vm2", 4), ZCD_BUF_STATE_COUNT);
	CHECK_EQ(zcd_state_previously_held(st, 3, "vm1", 5), ZCD_BUF_STATE_COUNT);
	CHECK_EQ(zcd_state_previously_held(st, 4, "vm1", 2), ZCD_BUF_HELD);
	CHECK_EQ(zcd_state_previously_held(st, 4, "vm2", 3), ZCD_BUF_HELD);
	CHECK_EQ(zcd_state_previously_held(st, 4, "vm2", 4), ZCD_BUF_STATE_COUNT);
	CHECK_EQ(zcd_state_previously_held(st, 5, "vm2", 1), ZCD_BUF_STATE_COUNT);
	CHECK_EQ(zcd_state_previously_held(st, NB_BUFS, "vm2", 1), ZCD_BUF_STATE_COUNT);
	/* The buffers are the same pages, as the guests left them. */
	fd = pool_file(st, &kept);
	CHECK(kept);
	CHECK_EQ(pool_byte(path), 0x5a);
	close(fd);
	taken_back = st->hdr->totals.taken_back;
	lost = st->hdr->totals.lost_in_restart;
	zcd_state_count_kept(st, ZCD_BUF_GRANTED);
	zcd_state_count_kept(st, ZCD_BUF_HELD);
	CHECK_EQ(st->hdr->totals.kept, 2);
	CHECK_EQ(st->hdr->totals.taken_back, taken_back - 1);
	CHECK_EQ(st->hdr->totals.lost_in_restart, lost - 1);
	zcd_state_forget_previous(st);
	CHECK(st->previous_ledger == NULL);
	CHECK_EQ(zcd_state_previously_held(st, 3, "vm2", 5), ZCD_BUF_STATE_COUNT);
	ledger = zcd_state_ledger(st);
	ledger[3] = (struct zcd_ledger_entry){.state = ZCD_BUF_GRANTED, .owner = 0, .generation = 5};
	zcd_state_close(st); /* killed again */

	/* Buffers of another size: nothing is kept, and the pool file is new. */
	st = open_sized(path, &cfg, NB_BUFS, 2 * BUF_SIZE);
	if (st == NULL)
		return;
	CHECK(st->previous_ledger == NULL);
	CHECK_EQ(st->hdr->totals.kept, 2); /* totals go on */
	fd = pool_file(st, &kept);
	CHECK(!kept);
	CHECK_EQ(pool_byte(path), 0);
	close(fd);
	/* After a clean exit there is nothing to keep either. */
	zcd_state_mark_clean(st);
	zcd_state_close(st);
	st = open_attached(path, &cfg, NB_BUFS);
	if (st == NULL)
		return;
	CHECK(st->previous_ledger == NULL);
	zcd_state_close(st);
}

/* A file that is not a state file (or was cut short) holds nothing. */
static void test_garbage(const char *path)
{
	static const char *const vms[] = {"a"};
	struct zcd_config cfg;
	struct zcd_state *st;
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	for (int i = 0; i < 10000; i++)
		fputc(i * 7, f);
	fclose(f);
	config(&cfg, vms, 1);
	st = open_attached(path, &cfg, NB_BUFS);
	if (st == NULL)
		return;
	CHECK(!st->found_previous);
	CHECK_EQ(st->hdr->incarnation, 1);
	zcd_state_close(st);
}

int main(void)
{
	char path[] = "/tmp/zcd-test-state-XXXXXX", pool[64];
	int fd = mkstemp(path);

	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	test_lock(path);
	test_recovery_after_kill(path);
	test_no_space_keeps_previous(path);
	test_kept_buffers(path);
	test_garbage(path);
	unlink(path);
	snprintf(pool, sizeof(pool), "%s.pool", path);
	unlink(pool);
	return check_report("test_state");
}
