/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of reload planning (dataplane/reload_plan.c): which VMs a new
 * file adds, removes and changes, which slots they run in, and the exact
 * message for each change that needs a restart.  Configurations are real
 * files read by the real loader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "reload.h"

#define TEMP_TEMPLATE "/tmp/zcd-test-reload-XXXXXX"

static const char *const HEAD = "ports:\n"
				"  - name: uplink\n"
				"    devargs: \"net_ring0\"\n"
				"hypervisor:\n"
				"  backend: sim\n"
				"dataplane:\n"
				"  mtu: 1500\n";

/* One VM entry; extra lines (already indented) go at its end. */
static void vm_text(char *out, size_t len, const char *name, const char *mac, unsigned credits,
		    const char *extra)
{
	snprintf(out, len, "  - name: %s\n    macs: [\"%s\"]\n    credits: %u\n%s", name, mac,
		 credits, extra);
}

/* Load HEAD + middle + "vms:" + vms; the file is removed again. */
static struct zcd_config *load(const char *middle, const char *vms)
{
	char path[] = TEMP_TEMPLATE, err[1024];
	struct zcd_config *cfg;
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (f == NULL) {
		perror("temp file");
		exit(1);
	}
	fprintf(f, "%s%svms:\n%s", HEAD, middle, vms);
	fclose(f);
	cfg = zcd_config_load(path, err, sizeof(err));
	unlink(path);
	if (cfg == NULL) {
		fprintf(stderr, "test config does not load: %s\n", err);
		exit(1);
	}
	return cfg;
}

/* The three VMs the running configuration starts with. */
static void three_vms(char *out, size_t len, unsigned vm3_credits, const char *vm3_mac)
{
	char a[256], b[256], c[256];

	vm_text(a, sizeof(a), "vm1", "02:00:00:00:01:01", 64, "");
	vm_text(b, sizeof(b), "vm2", "02:00:00:00:02:01", 64, "");
	vm_text(c, sizeof(c), "vm3", vm3_mac, vm3_credits, "");
	snprintf(out, len, "%s%s%s", a, b, c);
}

struct fixture {
	struct zcd_config *run;
	struct zcd_running_slot slots[ZCD_MAX_VMS];
	struct zcd_reload_plan plan;
	char err[1024];
};

static void fixture_init(struct fixture *fx)
{
	char vms[1024];

	three_vms(vms, sizeof(vms), 64, "02:00:00:00:03:01");
	memset(fx, 0, sizeof(*fx));
	fx->run = load("", vms);
	for (unsigned k = 0; k < fx->run->nb_vms; k++)
		fx->slots[k] = (struct zcd_running_slot){.state = ZCD_VM_SERVING,
							 .credit_cap = fx->run->vms[k].credits};
}

static int plan(struct fixture *fx, const struct zcd_config *next, uint64_t room)
{
	fx->err[0] = '\0';
	return zcd_reload_plan(fx->run, fx->slots, next, room, &fx->plan, fx->err,
			       sizeof(fx->err));
}

/* Planning next fails with a message naming its file and holding want; next is freed. */
static void check_rejected(struct fixture *fx, struct zcd_config *next, uint64_t room,
			   const char *want)
{
	CHECK_EQ(plan(fx, next, room), -1);
	CHECK_STR_CONTAINS(fx->err, next->path);
	CHECK_STR_CONTAINS(fx->err, want);
	zcd_config_free(next);
}

static void test_same_file(void)
{
	struct fixture fx;
	char vms[1024];
	struct zcd_config *next;

	fixture_init(&fx);
	three_vms(vms, sizeof(vms), 64, "02:00:00:00:03:01");
	next = load("", vms);
	CHECK_EQ(plan(&fx, next, 1000), 0);
	CHECK(!zcd_reload_plan_changes(&fx.plan));
	for (unsigned j = 0; j < 3; j++)
		CHECK_EQ(fx.plan.slot_of[j], j);
	zcd_config_free(next);
	zcd_config_free(fx.run);
}

/* vm2 removed, vm4 added: vm4 may not take vm2's slot while vm2 drains. */
static void test_add_remove(void)
{
	struct fixture fx;
	char a[256], c[256], d[256], vms[1024];
	struct zcd_config *next;

	fixture_init(&fx);
	vm_text(a, sizeof(a), "vm1", "02:00:00:00:01:01", 64, "");
	vm_text(c, sizeof(c), "vm3", "02:00:00:00:03:01", 64, "");
	vm_text(d, sizeof(d), "vm4", "02:00:00:00:04:01", 32, "");
	snprintf(vms, sizeof(vms), "%s%s%s", d, a, c);
	next = load("", vms);
	CHECK_EQ(plan(&fx, next, 1000), 0);
	CHECK(zcd_reload_plan_changes(&fx.plan));
	CHECK_EQ(fx.plan.nb_added, 1);
	CHECK_EQ(fx.plan.nb_removed, 1);
	CHECK_EQ(fx.plan.nb_readdressed, 0);
	CHECK_EQ(fx.plan.slot_of[0], 3); /* vm4 */
	CHECK_EQ(fx.plan.slot_of[1], 0); /* vm1 */
	CHECK_EQ(fx.plan.slot_of[2], 2); /* vm3 */
	CHECK(fx.plan.added[3]);
	CHECK(fx.plan.removed[1]);
	CHECK(!fx.plan.removed[0] && !fx.plan.removed[2]);

	/* Once vm2's slot is free again, a new VM takes it. */
	fx.slots[1].state = ZCD_VM_FREE;
	CHECK_EQ(plan(&fx, next, 1000), 0);
	CHECK_EQ(fx.plan.slot_of[0], 1);
	CHECK_EQ(fx.plan.nb_removed, 0);
	zcd_config_free(next);

	/* While it drains, vm2 cannot come back under its name. */
	fx.slots[1].state = ZCD_VM_REMOVING;
	three_vms(vms, sizeof(vms), 64, "02:00:00:00:03:01");
	check_rejected(&fx, load("", vms), 1000, ":12: vms[1]: vm2 is still being removed");
	zcd_config_free(fx.run);
}

static void test_readdress_and_credits(void)
{
	struct fixture fx;
	char vms[1024];
	struct zcd_config *next;

	fixture_init(&fx);
	three_vms(vms, sizeof(vms), 64, "02:00:00:00:03:09");
	next = load("", vms);
	CHECK_EQ(plan(&fx, next, 1000), 0);
	CHECK_EQ(fx.plan.nb_readdressed, 1);
	CHECK(fx.plan.readdressed[2]);
	CHECK_EQ(fx.plan.nb_added + fx.plan.nb_removed + fx.plan.nb_credits_changed, 0);
	zcd_config_free(next);

	three_vms(vms, sizeof(vms), 16, "02:00:00:00:03:01");
	next = load("  credit_timeout_ms: 50\n", vms);
	CHECK_EQ(plan(&fx, next, 1000), 0);
	CHECK_EQ(fx.plan.nb_credits_changed, 1);
	CHECK(fx.plan.credits_changed[2]);
	CHECK(fx.plan.credit_timeout_changed);
	CHECK_EQ(fx.plan.nb_readdressed, 0);
	zcd_config_free(next);

	/* Up again, but not beyond what vm3 was connected with. */
	fx.run->vms[2].credits = 16;
	three_vms(vms, sizeof(vms), 64, "02:00:00:00:03:01");
	next = load("", vms);
	CHECK_EQ(plan(&fx, next, 1000), 0);
	CHECK(fx.plan.credits_changed[2]);
	zcd_config_free(next);
	three_vms(vms, sizeof(vms), 65, "02:00:00:00:03:01");
	check_rejected(&fx, load("", vms), 1000,
		       ":15: vms[2].credits: 65 is more than the 64 vm3 was connected with; "
		       "remove it in one reload and add it back in the next");
	zcd_config_free(fx.run);
}

/* Credits may not outgrow the pool, but a reload that does not raise them passes. */
static void test_credit_room(void)
{
	struct fixture fx;
	char vms[1024], d[256];
	struct zcd_config *next;

	fixture_init(&fx); /* 192 credits running */
	three_vms(vms, sizeof(vms), 64, "02:00:00:00:03:01");
	vm_text(d, sizeof(d), "vm4", "02:00:00:00:04:01", 9, "");
	strcat(vms, d);
	next = load("", vms);
	CHECK_EQ(plan(&fx, next, 201), 0);
	check_rejected(&fx, next, 200, ": vms: the credits would add up to 201 (VMs still being "
				       "removed included), but the pool has room for 200");

	/* Removing a VM while over the room frees nothing until it drained. */
	three_vms(vms, sizeof(vms), 64, "02:00:00:00:03:01");
	*strstr(vms, "  - name: vm3") = '\0';
	next = load("", vms);
	CHECK_EQ(plan(&fx, next, 100), 0);
	CHECK_EQ(fx.plan.nb_removed, 1);
	zcd_config_free(next);
	zcd_config_free(fx.run);
}

static void test_needs_restart(void)
{
	static const struct {
		const char *middle; /* after HEAD: replaces nothing, adds keys */
		const char *vm3_extra;
		const char *message;
	} cases[] = {
		{"  burst: 16\n", "", ": dataplane.burst: 32 -> 16: cannot change while running; "
				      "restart zcdemux"},
		{"iommu:\n  backend: sim\n", "",
		 ": iommu.backend: \"none\" -> \"sim\": cannot change while running"},
		{"", "    notify: poll\n",
		 ":15: vms[2].notify: cannot change for a running VM (vm3); remove it in one "
		 "reload and add it back in the next"},
		{"", "    sim:\n      stall: true\n", ":15: vms[2].sim: cannot change"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture fx;
		char a[256], b[256], c[256], vms[1024];

		fixture_init(&fx);
		vm_text(a, sizeof(a), "vm1", "02:00:00:00:01:01", 64, "");
		vm_text(b, sizeof(b), "vm2", "02:00:00:00:02:01", 64, "");
		vm_text(c, sizeof(c), "vm3", "02:00:00:00:03:01", 64, cases[i].vm3_extra);
		snprintf(vms, sizeof(vms), "%s%s%s", a, b, c);
		check_rejected(&fx, load(cases[i].middle, vms), 1000, cases[i].message);
		zcd_config_free(fx.run);
	}
}

static void test_ports_fixed(void)
{
	struct fixture fx;
	char vms[1024];
	struct zcd_config *next;

	fixture_init(&fx);
	three_vms(vms, sizeof(vms), 64, "02:00:00:00:03:01");
	next = load("", vms);
	snprintf(next->ports[0].devargs, sizeof(next->ports[0].devargs), "net_ring1");
	check_rejected(&fx, next, 1000, ":2: ports[0]: cannot change while running");
	zcd_config_free(fx.run);
}

/* unknown_unicast names a VM of the new file: the plan gives its slot. */
static void test_unknown_unicast_slot(void)
{
	struct fixture fx;
	char a[256], c[256], vms[1024];
	struct zcd_config *next;

	fixture_init(&fx);
	vm_text(a, sizeof(a), "vm1", "02:00:00:00:01:01", 64, "");
	vm_text(c, sizeof(c), "vm3", "02:00:00:00:03:01", 64, "");
	snprintf(vms, sizeof(vms), "%s%s", a, c);
	next = load("  unknown_unicast: vm3\n  copy_threshold: 128\n", vms);
	CHECK_EQ(plan(&fx, next, 1000), 0);
	CHECK_EQ(fx.plan.unknown_unicast_slot, 2);
	CHECK(fx.plan.unknown_unicast_changed);
	CHECK(fx.plan.copy_threshold_changed);
	zcd_config_free(next);
	zcd_config_free(fx.run);
}

int main(void)
{
	test_same_file();
	test_add_remove();
	test_readdress_and_credits();
	test_credit_room();
	test_needs_restart();
	test_ports_fixed();
	test_unknown_unicast_slot();
	return check_report("test_reload_plan");
}
