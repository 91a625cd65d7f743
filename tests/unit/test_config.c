/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the configuration loader (dataplane/config.c): the values a
 * valid file yields, and the exact "<file>:<line>: <key>:" of every error.
 * Run from the repository root: fixtures are read from tests/unit/configs/,
 * error cases are written to temporary files under /tmp.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "zcdemux/config.h"
#include "zcdemux/hv.h"
#include "zcdemux/iommu.h"

#define CONFIGS "tests/unit/configs/"
#define TEMP_TEMPLATE "/tmp/zcd-test-config-XXXXXX"

/*
 * The backend registries, replaced: the loader accepts a backend iff
 * zcd_hv_find()/zcd_iommu_find() know it, and a second hypervisor backend
 * ("xen") is needed to test that sim: sections are refused without sim.
 * Defining these here keeps the library's registry objects out of this test.
 */
static const struct zcd_hv_ops test_hv_backends[] = { { .name = "sim" }, { .name = "xen" } };
static const struct zcd_iommu_ops test_iommu_backends[] = { { .name = "none" }, { .name = "vfio" },
							    { .name = "sim" } };

const struct zcd_hv_ops *zcd_hv_find(const char *name)
{
	for (size_t i = 0; i < sizeof(test_hv_backends) / sizeof(test_hv_backends[0]); i++)
		if (strcmp(test_hv_backends[i].name, name) == 0)
			return &test_hv_backends[i];
	return NULL;
}

const char *zcd_hv_names(void)
{
	return "sim, xen";
}

const struct zcd_iommu_ops *zcd_iommu_find(const char *name)
{
	for (size_t i = 0; i < sizeof(test_iommu_backends) / sizeof(test_iommu_backends[0]); i++)
		if (strcmp(test_iommu_backends[i].name, name) == 0)
			return &test_iommu_backends[i];
	return NULL;
}

const char *zcd_iommu_names(void)
{
	return "none, vfio, sim";
}

/* ---- helpers ---- */

/* A fresh temporary file for writing; its name goes to path. */
static FILE *temp_open(char path[sizeof(TEMP_TEMPLATE)])
{
	int fd;
	FILE *f;

	memcpy(path, TEMP_TEMPLATE, sizeof(TEMP_TEMPLATE));
	fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		return NULL;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		perror("fdopen");
		close(fd);
		unlink(path);
	}
	return f;
}

/*
 * Load path and expect failure with "<path>:<line>: <key>: " (key NULL: a
 * problem of the whole document, no key) followed by text containing message.
 */
static void expect_error_in(const char *what, const char *path, unsigned line, const char *key,
			    const char *message)
{
	char err[512] = "", prefix[256];
	unsigned failures_before = check_failures;
	struct zcd_config *cfg = zcd_config_load(path, err, sizeof(err));

	if (key != NULL)
		snprintf(prefix, sizeof(prefix), "%s:%u: %s: ", path, line, key);
	else
		snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	CHECK(cfg == NULL);
	CHECK_STR_CONTAINS(err, prefix);
	CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
	CHECK_STR_CONTAINS(err + strlen(prefix), message);
	CHECK(strchr(err, '\n') == NULL);
	if (check_failures != failures_before)
		fprintf(stderr, "  ^ in case: %s\n", what);
	zcd_config_free(cfg);
}

/* Write yaml to a temporary file and expect_error_in() it. */
static void expect_error(const char *what, const char *yaml, unsigned line, const char *key,
			 const char *message)
{
	char path[sizeof(TEMP_TEMPLATE)];
	FILE *f = temp_open(path);

	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(yaml, f);
	fclose(f);
	expect_error_in(what, path, line, key, message);
	unlink(path);
}

static void check_mac(const uint8_t mac[6], uint8_t a, uint8_t b, uint8_t c, uint8_t d,
		      uint8_t e, uint8_t f)
{
	const uint8_t expected[6] = { a, b, c, d, e, f };

	CHECK(memcmp(mac, expected, 6) == 0);
}

/* ---- valid files ---- */

static void test_full_file(void)
{
	char err[512] = "";
	struct zcd_config *cfg = zcd_config_load(CONFIGS "full.yaml", err, sizeof(err));
	const struct zcd_vm_config *vm;

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "full.yaml: %s\n", err);
		return;
	}
	CHECK(strcmp(cfg->path, CONFIGS "full.yaml") == 0);

	CHECK_EQ(cfg->nb_ports, 2);
	CHECK(strcmp(cfg->ports[0].name, "uplink") == 0);
	CHECK(strcmp(cfg->ports[0].devargs, "net_pcap0,rx_pcap=traffic.pcap") == 0);
	CHECK_EQ(cfg->ports[0].line, 5);
	CHECK(strcmp(cfg->ports[1].name, "port.2_b-X") == 0);
	CHECK(strcmp(cfg->ports[1].devargs, "net_null0") == 0);
	CHECK_EQ(cfg->ports[1].line, 7);

	CHECK(strcmp(cfg->hv_backend, "sim") == 0);
	CHECK(strcmp(cfg->iommu_backend, "sim") == 0);
	CHECK_EQ(cfg->mtu, 9000);
	CHECK_EQ(cfg->unknown_unicast_vm, 1); /* vm2, defined after dataplane: */
	CHECK_EQ(cfg->rx_descriptors, 1024);
	CHECK_EQ(cfg->burst, 64);
	CHECK_EQ(cfg->buffers, 4096);
	CHECK_EQ(cfg->credit_timeout_ms, 250);

	CHECK_EQ(cfg->nb_vms, 3);
	vm = &cfg->vms[0];
	CHECK(strcmp(vm->name, "vm1") == 0);
	CHECK_EQ(vm->nb_macs, 2);
	check_mac(vm->macs[0], 0x02, 0, 0, 0, 0, 0x01);
	check_mac(vm->macs[1], 0x02, 0, 0, 0, 0, 0x02);
	CHECK_EQ(vm->vlan, 10);
	CHECK_EQ(vm->credits, 128);
	CHECK_EQ(vm->notify, ZCD_NOTIFY_EVENT);
	CHECK(strcmp(vm->sim.sink, "out/vm1.pcap") == 0);
	CHECK(vm->sim.stall);
	CHECK_EQ(vm->line, 21);

	vm = &cfg->vms[1];
	CHECK(strcmp(vm->name, "vm2") == 0);
	CHECK_EQ(vm->nb_macs, 2);
	check_mac(vm->macs[0], 0x02, 0, 0, 0, 0, 0x01);
	check_mac(vm->macs[1], 0x0a, 0xbc, 0xde, 0xf0, 0x12, 0x34);
	CHECK_EQ(vm->vlan, 0);
	CHECK_EQ(vm->credits, ZCD_CREDITS_MAX);
	CHECK_EQ(vm->notify, ZCD_NOTIFY_POLL);
	CHECK(strcmp(vm->sim.sink, "") == 0);
	CHECK(!vm->sim.stall);
	CHECK_EQ(vm->sim.hold, 100);
	CHECK_EQ(vm->line, 28);

	vm = &cfg->vms[2];
	CHECK(strcmp(vm->name, "vm3") == 0);
	CHECK_EQ(vm->nb_macs, 1);
	check_mac(vm->macs[0], 0x02, 0, 0, 0, 0, 0x01);
	CHECK_EQ(vm->vlan, 4094);
	CHECK_EQ(vm->credits, ZCD_CREDITS_MIN);
	CHECK_EQ(vm->line, 35);

	zcd_config_free(cfg);
}

/* The example configurations shipped in configs/ load as they are. */
static void test_shipped_examples(void)
{
	static const char *const files[] = {"configs/demo.yaml", "configs/xen.yaml",
					     "configs/vfio.yaml"};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char err[512] = "";
		struct zcd_config *cfg = zcd_config_load(files[i], err, sizeof(err));

		CHECK(cfg != NULL);
		if (cfg == NULL)
			fprintf(stderr, "%s\n", err);
		zcd_config_free(cfg);
	}
}

static void test_defaults(void)
{
	char err[512] = "";
	struct zcd_config *cfg = zcd_config_load(CONFIGS "minimal.yaml", err, sizeof(err));

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "minimal.yaml: %s\n", err);
		return;
	}
	CHECK_EQ(cfg->nb_ports, 1);
	CHECK(strcmp(cfg->hv_backend, "sim") == 0);
	CHECK(strcmp(cfg->iommu_backend, "none") == 0);
	CHECK_EQ(cfg->mtu, ZCD_MTU_DEFAULT);
	CHECK_EQ(cfg->unknown_unicast_vm, ZCD_UNKNOWN_UNICAST_DROP);
	CHECK_EQ(cfg->rx_descriptors, ZCD_RX_DESC_DEFAULT);
	CHECK_EQ(cfg->burst, ZCD_BURST_DEFAULT);
	CHECK_EQ(cfg->buffers, 0);
	CHECK_EQ(cfg->copy_threshold, ZCD_COPY_THRESHOLD_DEFAULT);
	CHECK_EQ(cfg->credit_timeout_ms, ZCD_CREDIT_TIMEOUT_MS_DEFAULT);
	CHECK_EQ(cfg->iommu_mode, ZCD_IOMMU_STRICT);
	CHECK_EQ(cfg->iommu_deferred_batch, ZCD_DEFERRED_BATCH_DEFAULT);
	CHECK_EQ(cfg->iommu_deferred_us, ZCD_DEFERRED_US_DEFAULT);
	CHECK(!cfg->iommu_check);
	CHECK_EQ(cfg->nb_vms, 1);
	CHECK_EQ(cfg->vms[0].xen.domid, 0);
	CHECK(strcmp(cfg->vms[0].name, "guest") == 0);
	CHECK_EQ(cfg->vms[0].vlan, 0);
	CHECK_EQ(cfg->vms[0].credits, ZCD_CREDITS_DEFAULT);
	CHECK(strcmp(cfg->vms[0].sim.sink, "") == 0);
	CHECK(!cfg->vms[0].sim.stall);
	CHECK_EQ(cfg->vms[0].sim.hold, 0);
	zcd_config_free(cfg);
}

/* Section values at the edges of their ranges, "drop" spelt out, a non-sim backend. */
static void test_edge_values(void)
{
	static const char yaml[] = "hypervisor: {backend: xen}\n"
				   "iommu: {mode: deferred, deferred_batch: 4096, deferred_max_us: 1,\n"
				   "        check: true}\n"
				   "dataplane:\n"
				   "  mtu: 68\n"
				   "  unknown_unicast: drop\n"
				   "  rx_descriptors: 16384\n"
				   "  burst: 1\n"
				   "  buffers: 4194304\n"
				   "  copy_threshold: 9018\n"
				   "  credit_timeout_ms: 600000\n"
				   "vms: [{name: a, macs: [\"fe:ff:ff:ff:ff:ff\"], xen: {domid: 32751}}]\n"
				   "ports: [{name: p, devargs: x}]\n";
	char path[sizeof(TEMP_TEMPLATE)], err[512] = "";
	FILE *f = temp_open(path);
	struct zcd_config *cfg;

	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(yaml, f);
	fclose(f);
	cfg = zcd_config_load(path, err, sizeof(err));
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(strcmp(cfg->hv_backend, "xen") == 0);
		CHECK(strcmp(cfg->iommu_backend, "none") == 0);
		CHECK_EQ(cfg->iommu_mode, ZCD_IOMMU_DEFERRED);
		CHECK_EQ(cfg->iommu_deferred_batch, ZCD_DEFERRED_BATCH_MAX);
		CHECK_EQ(cfg->iommu_deferred_us, 1);
		CHECK(cfg->iommu_check);
		CHECK_EQ(cfg->mtu, ZCD_MTU_MIN);
		CHECK_EQ(cfg->unknown_unicast_vm, ZCD_UNKNOWN_UNICAST_DROP);
		CHECK_EQ(cfg->rx_descriptors, ZCD_RX_DESC_MAX);
		CHECK_EQ(cfg->burst, ZCD_BURST_MIN);
		CHECK_EQ(cfg->buffers, ZCD_BUFFERS_MAX);
		CHECK_EQ(cfg->copy_threshold, 9018);
		CHECK_EQ(cfg->credit_timeout_ms, ZCD_CREDIT_TIMEOUT_MS_MAX);
		CHECK_EQ(cfg->vms[0].xen.domid, ZCD_DOMID_MAX);
		check_mac(cfg->vms[0].macs[0], 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff);
	} else {
		fprintf(stderr, "edge values: %s\n", err);
	}
	zcd_config_free(cfg);
	unlink(path);
}

/* ---- errors ---- */

static void test_unreadable_files(void)
{
	char err[512] = "";
	struct zcd_config *cfg;

	cfg = zcd_config_load(CONFIGS "does-not-exist.yaml", err, sizeof(err));
	CHECK(cfg == NULL);
	CHECK(strcmp(err, CONFIGS "does-not-exist.yaml: cannot open: No such file or directory") ==
	      0);
	CHECK_STR_CONTAINS(err, "cannot open");

	cfg = zcd_config_load(CONFIGS, err, sizeof(err));
	CHECK(cfg == NULL);
	CHECK(strcmp(err, CONFIGS ": cannot open: Is a directory") == 0);
	CHECK_STR_CONTAINS(err, "Is a directory");

	/* A short buffer gets a cut, terminated message. */
	cfg = zcd_config_load(CONFIGS "does-not-exist.yaml", err, 8);
	CHECK(cfg == NULL);
	CHECK(strcmp(err, "tests/u") == 0);
}

/* Lines 1-5 of most cases: a valid port and hypervisor section. */
#define HEAD                                                                          \
	"ports:\n"                                                                    \
	"  - name: uplink\n"                                                          \
	"    devargs: net_null0\n"                                                    \
	"hypervisor:\n"                                                               \
	"  backend: sim\n"
/* Lines 6-8 when used after HEAD: one valid VM. */
#define VM1                                                                           \
	"vms:\n"                                                                      \
	"  - name: vm1\n"                                                             \
	"    macs: [\"02:00:00:00:00:01\"]\n"

/* Two lines that complete a file whose case is about its ports. */
#define REST                                                                          \
	"hypervisor: {backend: sim}\n"                                                \
	"vms: [{name: vm1, macs: [\"02:00:00:00:00:01\"]}]\n"

struct error_case {
	const char *what;
	const char *yaml;
	unsigned line;
	const char *key; /* NULL: a problem of the document as a whole */
	const char *message;
};

static const struct error_case error_cases[] = {
	/* The document as a whole. */
	{ "empty file", "", 1, NULL, "the file is empty" },
	{ "only comments", "# nothing here\n\n", 1, NULL, "the file is empty" },
	{ "only a document marker", "---\n", 1, NULL, "the file is empty" },
	{ "syntax error", HEAD "vms:\n  - name: vm1\n    macs: [\"02:00:00:00:00:01\"\n", 9,
	  NULL, "YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
		"sequence at line 8)" },
	{ "bad indentation", "ports:\n  - name: a\n   devargs: b\n", 3, NULL,
	  "YAML syntax error: " },
	{ "top level a sequence", "- ports\n- vms\n", 1, NULL,
	  "the top level must be a plain mapping with keys ports, hypervisor and vms (found a "
	  "sequence)" },
	{ "top level a scalar", "\n\nhello\n", 3, NULL, "(found \"hello\")" },
	{ "top level anchored", "&top\nports: []\n", 1, NULL, "with an anchor or tag" },
	{ "two documents", HEAD VM1 "---\nports: []\n", 9, NULL,
	  "only one YAML document is allowed" },
	{ "too deep", HEAD VM1 "dataplane: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]\n", 9, NULL,
	  "nested more than 16 levels deep" },

	/* Unknown and duplicate keys, at every level. */
	{ "unknown top-level key", HEAD VM1 "extra: 1\n", 9, "extra",
	  "unknown key (allowed: ports, hypervisor, iommu, dataplane, vms)" },
	{ "unknown port key", "ports:\n  - name: uplink\n    devargs: x\n    speed: 10\n" REST, 4,
	  "ports[0].speed", "unknown key (allowed: name, devargs)" },
	{ "unknown hypervisor key", HEAD "  domain: 0\n" VM1, 6, "hypervisor.domain",
	  "unknown key (allowed: backend)" },
	{ "unknown iommu mode", HEAD VM1 "iommu:\n  mode: lazy\n", 10, "iommu.mode",
	  "\"lazy\" is not a mode (strict or deferred)" },
	{ "deferred_batch zero", HEAD VM1 "iommu:\n  deferred_batch: 0\n", 10,
	  "iommu.deferred_batch", "0 is out of range (1..4096)" },
	{ "deferred_max_us too long", HEAD VM1 "iommu:\n  deferred_max_us: 1000001\n", 10,
	  "iommu.deferred_max_us", "1000001 is out of range (1..1000000)" },
	{ "iommu check not a boolean", HEAD VM1 "iommu:\n  check: 1\n", 10, "iommu.check",
	  "boolean" },
	{ "unknown iommu key", HEAD VM1 "iommu:\n  group: 3\n", 10, "iommu.group",
	  "unknown key (allowed: backend, mode, deferred_batch, deferred_max_us, check)" },
	{ "unknown iommu mode", HEAD VM1 "iommu:\n  mode: lazy\n", 10, "iommu.mode",
	  "\"lazy\" is not a mode (strict or deferred)" },
	{ "deferred_batch zero", HEAD VM1 "iommu:\n  deferred_batch: 0\n", 10,
	  "iommu.deferred_batch", "0 is out of range (1..4096)" },
	{ "deferred_max_us too long", HEAD VM1 "iommu:\n  deferred_max_us: 1000001\n", 10,
	  "iommu.deferred_max_us", "1000001 is out of range (1..1000000)" },
	{ "iommu check not a boolean", HEAD VM1 "iommu:\n  check: 1\n", 10, "iommu.check",
	  "boolean" },
	{ "unknown dataplane key", HEAD VM1 "dataplane:\n  cores: 2\n", 10, "dataplane.cores",
	  "unknown key (allowed: mtu, unknown_unicast, rx_descriptors, burst, buffers, "
	  "copy_threshold, credit_timeout_ms)" },
	{ "credit_timeout_ms zero", HEAD VM1 "dataplane:\n  credit_timeout_ms: 0\n", 10,
	  "dataplane.credit_timeout_ms", "0 is out of range (1..600000)" },
	{ "unknown vm key", HEAD VM1 "    color: red\n", 9, "vms[0].color",
	  "unknown key (allowed: name, macs, vlan, credits, notify, sim, xen)" },
	{ "notify not a mode", HEAD VM1 "    notify: interrupt\n", 9, "vms[0].notify",
	  "\"interrupt\" is not a mode (event or poll)" },
	{ "unknown sim key", HEAD VM1 "    sim: {sink: a, drop: true}\n", 9, "vms[0].sim.drop",
	  "unknown key (allowed: sink, stall, instant_return, hostile, scribble_after, "
	  "reboot_every, hold)" },
	{ "hold with stall", HEAD VM1 "    sim: {stall: true, hold: 4}\n", 9, "vms[0].sim.hold",
	  "a guest that holds buffers does none of instant_return, stall, hostile or "
	  "scribble_after" },
	{ "hold too many", HEAD VM1 "    sim: {hold: 32769}\n", 9, "vms[0].sim.hold",
	  "32769 is out of range (0..32768)" },
	{ "instant_return with stall", HEAD VM1 "    sim: {stall: true, instant_return: true}\n", 9,
	  "vms[0].sim.instant_return", "neither stalls nor writes a sink" },
	{ "instant_return with a sink", HEAD VM1 "    sim:\n      sink: a.pcap\n      instant_return: true\n",
	  11, "vms[0].sim.instant_return", "neither stalls nor writes a sink" },
	{ "instant_return not a boolean", HEAD VM1 "    sim: {instant_return: 1}\n", 9,
	  "vms[0].sim.instant_return", "boolean" },
	{ "hostile with instant_return", HEAD VM1 "    sim: {instant_return: true, hostile: true}\n",
	  9, "vms[0].sim.hostile", "cannot also be hostile" },
	{ "scribble_after with instant_return",
	  HEAD VM1 "    sim: {instant_return: true, scribble_after: 5}\n", 9,
	  "vms[0].sim.scribble_after", "does not scribble" },
	{ "reboot_every with stall", HEAD VM1 "    sim: {stall: true, reboot_every: 5}\n", 9,
	  "vms[0].sim.reboot_every", "neither returns buffers unread, stalls nor scribbles" },
	{ "hostile not a boolean", HEAD VM1 "    sim: {hostile: often}\n", 9, "vms[0].sim.hostile",
	  "boolean" },
	{ "unknown key with odd characters", HEAD VM1 "\"a\\nb\": 1\n", 9, "a\\nb",
	  "unknown key" },
	{ "mapping as a key", HEAD VM1 "? {a: 1}\n: 2\n", 9, "(top level)",
	  "keys must be plain names, found a mapping" },
	{ "duplicate top-level key", HEAD VM1 "hypervisor:\n  backend: sim\n", 9, "hypervisor",
	  "duplicate key (first at line 4)" },
	{ "duplicate dataplane key", HEAD VM1 "dataplane:\n  mtu: 1500\n  mtu: 9000\n", 11,
	  "dataplane.mtu", "duplicate key (first at line 10)" },
	{ "duplicate vm key", HEAD VM1 "    name: vm2\n", 9, "vms[0].name",
	  "duplicate key (first at line 7)" },

	/* Wrong node types. */
	{ "vms a scalar", HEAD "vms: vm1\n", 6, "vms", "expected a sequence, found \"vm1\"" },
	{ "vms empty", HEAD "vms:\n", 6, "vms", "expected a sequence, found an empty value" },
	{ "ports a mapping", "ports: {name: a}\nhypervisor: {backend: sim}\n" VM1, 1, "ports",
	  "expected a sequence, found a mapping" },
	{ "port entry a scalar", "ports: [uplink]\n" REST, 1, "ports[0]",
	  "expected a mapping, found \"uplink\"" },
	{ "hypervisor a scalar", "ports: [{name: a, devargs: b}]\nhypervisor: sim\n" VM1, 2,
	  "hypervisor", "expected a mapping, found \"sim\"" },
	{ "dataplane a sequence", HEAD VM1 "dataplane: [mtu]\n", 9, "dataplane",
	  "expected a mapping, found a sequence" },
	{ "vm entry a scalar", HEAD "vms:\n  - vm1\n", 7, "vms[0]",
	  "expected a mapping, found \"vm1\"" },
	{ "macs a scalar", HEAD "vms:\n  - name: vm1\n    macs: 02:00:00:00:00:01\n", 8,
	  "vms[0].macs", "expected a sequence, found \"02:00:00:00:00:01\"" },
	{ "mac a mapping", HEAD "vms:\n  - name: vm1\n    macs: [{a: b}]\n", 8, "vms[0].macs[0]",
	  "expected a scalar, found a mapping" },
	{ "name a sequence", HEAD "vms:\n  - name: [vm1]\n    macs: [\"02:00:00:00:00:01\"]\n", 7,
	  "vms[0].name", "expected a scalar, found a sequence" },
	{ "sim a scalar", HEAD VM1 "    sim: yes\n", 9, "vms[0].sim",
	  "expected a mapping, found \"yes\"" },
	{ "backend with a NUL", "ports: [{name: a, devargs: b}]\nhypervisor:\n  backend: \"sim\\0x\"\n" VM1, 3, "hypervisor.backend",
	  "\"sim\\x00x\" contains a NUL character" },

	/* Aliases, anchors and tags. */
	{ "anchor and alias", HEAD "vms:\n  - name: vm1\n    macs: &m [\"02:00:00:00:00:01\"]\n"
			"  - name: vm2\n    macs: *m\n",
	  8, "vms[0].macs", "anchors (&name) are not supported" },
	{ "anchor on a scalar", HEAD "vms:\n  - name: &n vm1\n    macs: [\"02:00:00:00:00:01\"]\n", 7,
	  "vms[0].name", "anchors (&name) are not supported" },
	{ "alias use", HEAD VM1 "dataplane:\n  mtu: *x\n", 10, "dataplane.mtu",
	  "aliases (*name) are not supported" },
	{ "tag", HEAD VM1 "dataplane:\n  mtu: !!int 1500\n", 10, "dataplane.mtu",
	  "tags (!name) are not supported" },
	{ "tag on a key", HEAD VM1 "dataplane:\n  !!str mtu: 1500\n", 10, "dataplane",
	  "keys must be plain names, found a scalar with an anchor or tag" },

	/* Missing required keys: reported at the mapping that should hold them. */
	{ "missing vms", HEAD, 1, "vms", "required key is missing" },
	{ "missing ports", "hypervisor:\n  backend: sim\n" VM1, 1, "ports",
	  "required key is missing" },
	{ "missing hypervisor", "\nports: [{name: a, devargs: b}]\n" VM1, 2, "hypervisor",
	  "required key is missing" },
	{ "missing hypervisor.backend", "ports: [{name: a, devargs: b}]\n"
					"hypervisor: {}\n" VM1,
	  2, "hypervisor.backend", "required key is missing" },
	{ "missing port name", "ports:\n  - devargs: net_null0\nhypervisor: {backend: sim}\n" VM1,
	  2, "ports[0].name", "required key is missing" },
	{ "missing port devargs", "ports:\n  - name: uplink\nhypervisor: {backend: sim}\n" VM1, 2,
	  "ports[0].devargs", "required key is missing" },
	{ "missing vm name", HEAD VM1 "  - macs: [\"02:00:00:00:00:02\"]\n", 9, "vms[1].name",
	  "required key is missing" },
	{ "missing vm macs", HEAD VM1 "  - name: vm2\n    vlan: 3\n", 9, "vms[1].macs",
	  "required key is missing" },

	/* Empty sequences. */
	{ "no ports", "ports: []\nhypervisor: {backend: sim}\n" VM1, 1, "ports",
	  "is empty; at least one port is needed" },
	{ "no vms", HEAD "vms: []\n", 6, "vms", "is empty; at least one VM is needed" },
	{ "no macs", HEAD "vms:\n  - name: vm1\n    macs: []\n", 8, "vms[0].macs",
	  "is empty; at least one MAC address is needed" },

	/* MAC addresses. */
	{ "malformed mac", HEAD VM1 "  - name: vm2\n    macs: [\"02:00:00:00:00:0g\"]\n", 10,
	  "vms[1].macs[0]",
	  "\"02:00:00:00:00:0g\" is not a MAC address (expected six hex pairs like "
	  "02:00:00:00:00:01)" },
	{ "mac with dashes", HEAD "vms:\n  - name: vm1\n    macs:\n      - 02-00-00-00-00-01\n",
	  9, "vms[0].macs[0]", "\"02-00-00-00-00-01\" is not a MAC address" },
	{ "multicast mac", HEAD "vms:\n  - name: vm1\n    macs: [\"01:00:5E:00:00:01\"]\n", 8,
	  "vms[0].macs[0]",
	  "\"01:00:5E:00:00:01\" is a multicast address; a VM address must be unicast" },
	{ "broadcast mac", HEAD "vms:\n  - name: vm1\n    macs: [\"ff:ff:ff:ff:ff:ff\"]\n", 8,
	  "vms[0].macs[0]", "is a multicast address; a VM address must be unicast" },
	{ "zero mac", HEAD "vms:\n  - name: vm1\n    macs: [\"00:00:00:00:00:00\"]\n", 8,
	  "vms[0].macs[0]", "\"00:00:00:00:00:00\" is the all-zero address" },
	{ "duplicate mac in one vm",
	  HEAD "vms:\n  - name: vm1\n    macs:\n      - 02:00:00:00:00:01\n"
	       "      - 02:00:00:00:00:01\n",
	  10, "vms[0].macs[1]", "02:00:00:00:00:01 untagged is already used by vm1" },
	{ "duplicate mac across vms",
	  HEAD "vms:\n"
	       "  - name: vm1\n    vlan: 10\n    macs: [\"02:00:00:00:00:01\"]\n"
	       "  - name: vm2\n    macs: [\"02:00:00:00:00:01\"]\n"
	       "  - name: vm3\n    macs: [\"02:00:00:00:00:01\"]\n    vlan: 10\n",
	  13, "vms[2].macs[0]", "02:00:00:00:00:01 on VLAN 10 is already used by vm1" },
	{ "duplicate mac in other case",
	  HEAD VM1 "  - name: vm2\n    macs: [\"02:00:00:00:00:0A\", \"02:00:00:00:00:01\"]\n",
	  10, "vms[1].macs[1]", "02:00:00:00:00:01 untagged is already used by vm1" },

	/* Names. */
	{ "duplicate vm name", HEAD VM1 "  - name: vm1\n    macs: [\"02:00:00:00:00:02\"]\n", 9,
	  "vms[1].name", "\"vm1\" is already used by vms[0]" },
	{ "duplicate port name",
	  "ports:\n  - {name: uplink, devargs: a}\n  - {name: uplink, devargs: b}\n" REST, 3,
	  "ports[1].name", "\"uplink\" is already used by ports[0]" },
	{ "vm named drop", HEAD "vms:\n  - name: drop\n    macs: [\"02:00:00:00:00:01\"]\n", 7,
	  "vms[0].name", "\"drop\" is reserved" },
	{ "name with a space", HEAD "vms:\n  - name: vm 1\n    macs: [\"02:00:00:00:00:01\"]\n",
	  7, "vms[0].name",
	  "\"vm 1\" is not a valid name (1 to 31 characters of A-Z a-z 0-9 . _ -)" },
	{ "name with a slash", "ports:\n  - name: eth/0\n    devargs: x\n" REST, 2, "ports[0].name",
	  "\"eth/0\" is not a valid name" },
	{ "empty name", HEAD "vms:\n  - name: \"\"\n    macs: [\"02:00:00:00:00:01\"]\n", 7,
	  "vms[0].name", "\"\" is not a valid name" },
	{ "null name", HEAD "vms:\n  - name:\n    macs: [\"02:00:00:00:00:01\"]\n", 7,
	  "vms[0].name", "\"\" is not a valid name" },
	{ "name too long",
	  HEAD "vms:\n  - name: abcdefghijklmnopqrstuvwxyz012345\n"
	       "    macs: [\"02:00:00:00:00:01\"]\n",
	  7, "vms[0].name",
	  "\"abcdefghijklmnopqrstuvwxyz012345\" is too long for a name (at most 31 characters)" },
	{ "empty devargs", "ports:\n  - name: uplink\n    devargs: \"\"\n" REST, 3, "ports[0].devargs",
	  "must not be empty" },

	/* Numbers and booleans. */
	{ "vlan 0", HEAD VM1 "    vlan: 0\n", 9, "vms[0].vlan", "0 is out of range (1..4094)" },
	{ "vlan 4095", HEAD VM1 "    vlan: 4095\n", 9, "vms[0].vlan",
	  "4095 is out of range (1..4094)" },
	{ "vlan not a number", HEAD VM1 "    vlan: ten\n", 9, "vms[0].vlan",
	  "\"ten\" is not a number" },
	{ "vlan negative", HEAD VM1 "    vlan: -1\n", 9, "vms[0].vlan", "\"-1\" is not a number" },
	{ "credits 0", HEAD VM1 "    credits: 0\n", 9, "vms[0].credits",
	  "0 is out of range (1..32768)" },
	{ "credits too many", HEAD VM1 "    credits: 32769\n", 9, "vms[0].credits",
	  "32769 is out of range (1..32768)" },
	{ "mtu too small", HEAD VM1 "dataplane:\n  mtu: 67\n", 10, "dataplane.mtu",
	  "67 is out of range (68..9000)" },
	{ "mtu too large", HEAD VM1 "dataplane:\n  mtu: 9001\n", 10, "dataplane.mtu",
	  "9001 is out of range (68..9000)" },
	{ "mtu quoted", HEAD VM1 "dataplane:\n  mtu: \"1500\"\n", 10, "dataplane.mtu",
	  "\"1500\" is not a number (expected decimal digits without sign, leading zeros or "
	  "quotes)" },
	{ "mtu hex", HEAD VM1 "dataplane:\n  mtu: 0x5dc\n", 10, "dataplane.mtu",
	  "\"0x5dc\" is not a number" },
	{ "mtu float", HEAD VM1 "dataplane:\n  mtu: 1500.0\n", 10, "dataplane.mtu",
	  "\"1500.0\" is not a number" },
	{ "mtu with plus", HEAD VM1 "dataplane:\n  mtu: +1500\n", 10, "dataplane.mtu",
	  "\"+1500\" is not a number" },
	{ "mtu leading zero", HEAD VM1 "dataplane:\n  mtu: 01500\n", 10, "dataplane.mtu",
	  "\"01500\" is not a number" },
	{ "mtu empty", HEAD VM1 "dataplane:\n  mtu:\n", 10, "dataplane.mtu",
	  "\"\" is not a number" },
	{ "rx_descriptors too few", HEAD VM1 "dataplane:\n  rx_descriptors: 31\n", 10,
	  "dataplane.rx_descriptors", "31 is out of range (32..16384)" },
	{ "burst too large", HEAD VM1 "dataplane:\n  burst: 65\n", 10, "dataplane.burst",
	  "65 is out of range (1..64)" },
	{ "burst zero", HEAD VM1 "dataplane:\n  burst: 0\n", 10, "dataplane.burst",
	  "0 is out of range (1..64)" },
	{ "buffers too many", HEAD VM1 "dataplane:\n  buffers: 4194305\n", 10, "dataplane.buffers",
	  "4194305 is out of range (0..4194304)" },
	{ "buffers beyond 64 bits", HEAD VM1 "dataplane:\n  buffers: 123456789012345678901234\n",
	  10, "dataplane.buffers", "123456789012345678901234 is out of range (0..4194304)" },
	{ "stall not a boolean", HEAD VM1 "    sim:\n      stall: yes\n", 10, "vms[0].sim.stall",
	  "\"yes\" is not a boolean (expected true or false)" },
	{ "stall quoted", HEAD VM1 "    sim:\n      stall: \"true\"\n", 10, "vms[0].sim.stall",
	  "\"true\" is not a boolean" },

	/* Backends and cross-references. */
	{ "unknown hypervisor backend", "ports: [{name: a, devargs: b}]\n"
					"hypervisor:\n  backend: kvm\n" VM1,
	  3, "hypervisor.backend", "\"kvm\" is not a known backend (known: sim, xen)" },
	{ "unknown iommu backend", HEAD VM1 "iommu:\n  backend: amd-vi\n", 10, "iommu.backend",
	  "\"amd-vi\" is not a known backend (known: none, vfio, sim)" },
	{ "unknown_unicast naming no vm", HEAD "dataplane:\n  unknown_unicast: vm9\n" VM1, 7,
	  "dataplane.unknown_unicast",
	  "\"vm9\" is not the name of a VM (expected \"drop\" or a name under vms)" },
	{ "unknown_unicast a sequence", HEAD VM1 "dataplane:\n  unknown_unicast: [vm1]\n", 10,
	  "dataplane.unknown_unicast", "expected a scalar, found a sequence" },
	{ "sim section with xen",
	  "ports: [{name: a, devargs: b}]\n"
	  "vms:\n  - name: vm1\n    macs: [\"02:00:00:00:00:01\"]\n"
	  "  - name: vm2\n    macs: [\"02:00:00:00:00:02\"]\n    sim:\n      stall: true\n"
	  "hypervisor:\n  backend: xen\n",
	  7, "vms[1].sim", "only allowed with hypervisor.backend sim (this file uses xen)" },
	{ "xen section with sim", HEAD VM1 "    xen: {domid: 3}\n", 9, "vms[0].xen",
	  "only allowed with hypervisor.backend xen (this file uses sim)" },
	{ "unknown xen key", HEAD VM1 "    xen: {name: g1}\n", 9, "vms[0].xen.name",
	  "unknown key (allowed: domid)" },
	{ "xen domid 0", HEAD VM1 "    xen: {domid: 0}\n", 9, "vms[0].xen.domid",
	  "0 is out of range (1..32751)" },
	{ "xen domid reserved", HEAD VM1 "    xen: {domid: 32752}\n", 9, "vms[0].xen.domid",
	  "32752 is out of range (1..32751)" },
	{ "copy_threshold too big", HEAD VM1 "dataplane:\n  copy_threshold: 9019\n", 10,
	  "dataplane.copy_threshold", "9019 is out of range (0..9018)" },
};

/* Cases too big to write out: too many entries, strings too long. */
static void test_generated_errors(void)
{
	char path[sizeof(TEMP_TEMPLATE)];
	FILE *f;

	/* 257 VMs: the one over the limit is on line 6 + 2 * 256 + 1. */
	f = temp_open(path);
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(HEAD "vms:\n", f);
		for (unsigned i = 0; i <= ZCD_MAX_VMS; i++)
			fprintf(f, "  - name: vm%u\n    macs: [\"02:00:00:00:%02x:%02x\"]\n", i,
				i >> 8, i & 0xff);
		fclose(f);
		expect_error_in("too many vms", path, 6 + 2 * ZCD_MAX_VMS + 1, "vms[256]",
				"too many VMs (at most 256)");
		unlink(path);
	}

	/* 17 MACs, one a line from line 9. */
	f = temp_open(path);
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(HEAD "vms:\n  - name: vm1\n    macs:\n", f);
		for (unsigned i = 0; i <= ZCD_MAX_MACS_PER_VM; i++)
			fprintf(f, "      - 02:00:00:00:00:%02x\n", i + 1);
		fclose(f);
		expect_error_in("too many macs", path, 9 + ZCD_MAX_MACS_PER_VM, "vms[0].macs[16]",
				"too many MAC addresses (at most 16)");
		unlink(path);
	}

	/* 17 ports, one a line from line 2. */
	f = temp_open(path);
	CHECK(f != NULL);
	if (f != NULL) {
		fputs("ports:\n", f);
		for (unsigned i = 0; i <= ZCD_MAX_PORTS; i++)
			fprintf(f, "  - {name: p%u, devargs: net_null%u}\n", i, i);
		fputs(REST, f);
		fclose(f);
		expect_error_in("too many ports", path, 2 + ZCD_MAX_PORTS, "ports[16]",
				"too many ports (at most 16)");
		unlink(path);
	}

	/* devargs of ZCD_DEVARGS_MAX bytes: one too many for the terminating NUL. */
	f = temp_open(path);
	CHECK(f != NULL);
	if (f != NULL) {
		fputs("ports:\n  - name: uplink\n    devargs: ", f);
		for (unsigned i = 0; i < ZCD_DEVARGS_MAX; i++)
			fputc('a', f);
		fputs("\n" REST, f);
		fclose(f);
		expect_error_in("devargs too long", path, 3, "ports[0].devargs",
				"...\" is too long (1024 bytes; at most 1023)");
		unlink(path);
	}

	f = temp_open(path);
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(HEAD VM1 "    sim:\n      sink: \"", f);
		for (unsigned i = 0; i < ZCD_FILE_PATH_MAX + 10; i++)
			fputc('s', f);
		fputs("\"\n", f);
		fclose(f);
		expect_error_in("sink too long", path, 10, "vms[0].sim.sink",
				"is too long (1034 bytes; at most 1023)");
		unlink(path);
	}

	/* Not UTF-8: the reader knows a byte offset, not a line. */
	f = temp_open(path);
	CHECK(f != NULL);
	if (f != NULL) {
		char err[512] = "", expected[256];
		struct zcd_config *cfg;

		fputs("ports: \xff\n", f);
		fclose(f);
		cfg = zcd_config_load(path, err, sizeof(err));
		snprintf(expected, sizeof(expected), "%s: cannot read: ", path);
		CHECK(cfg == NULL);
		CHECK(strncmp(err, expected, strlen(expected)) == 0);
		CHECK_STR_CONTAINS(err, "UTF-8");
		zcd_config_free(cfg);
		unlink(path);
	}
}

static void test_parse_mac(void)
{
	uint8_t mac[6] = { 0 };

	CHECK_EQ(zcd_parse_mac("02:00:00:00:00:01", mac), 0);
	check_mac(mac, 0x02, 0, 0, 0, 0, 0x01);
	CHECK_EQ(zcd_parse_mac("aB:Cd:eF:09:fA:10", mac), 0);
	check_mac(mac, 0xab, 0xcd, 0xef, 0x09, 0xfa, 0x10);
	/* Group addresses parse: refusing them is the loader's business. */
	CHECK_EQ(zcd_parse_mac("ff:ff:ff:ff:ff:ff", mac), 0);
	check_mac(mac, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

	/* A failed parse leaves mac alone. */
	CHECK_EQ(zcd_parse_mac("02:00:00:00:00:0g", mac), -1);
	check_mac(mac, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

	CHECK_EQ(zcd_parse_mac(NULL, mac), -1);
	CHECK_EQ(zcd_parse_mac("", mac), -1);
	CHECK_EQ(zcd_parse_mac("02:00:00:00:00", mac), -1); /* five pairs */
	CHECK_EQ(zcd_parse_mac("02:00:00:00:00:01:02", mac), -1); /* seven */
	CHECK_EQ(zcd_parse_mac("02:00:00:00:00:01 ", mac), -1); /* trailing space */
	CHECK_EQ(zcd_parse_mac(" 02:00:00:00:00:01", mac), -1);
	CHECK_EQ(zcd_parse_mac("02:00:00:00:00:1", mac), -1); /* short pair */
	CHECK_EQ(zcd_parse_mac("2:00:00:00:00:01", mac), -1);
	CHECK_EQ(zcd_parse_mac("02:00:00:00:00:001", mac), -1); /* long pair */
	CHECK_EQ(zcd_parse_mac("02-00-00-00-00-01", mac), -1);
	CHECK_EQ(zcd_parse_mac("02:00:00:00:00:01:", mac), -1);
	CHECK_EQ(zcd_parse_mac("0200.0000.0001", mac), -1);
	CHECK_EQ(zcd_parse_mac("020000000001", mac), -1);
	CHECK_EQ(zcd_parse_mac("+2:00:00:00:00:01", mac), -1);
	CHECK_EQ(zcd_parse_mac("02:00:00:00:00:x1", mac), -1);
	CHECK_EQ(zcd_parse_mac("02::00:00:00:00:01", mac), -1);
}

int main(void)
{
	test_parse_mac();
	test_full_file();
	test_defaults();
	test_shipped_examples();
	test_edge_values();
	test_unreadable_files();
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
		expect_error(error_cases[i].what, error_cases[i].yaml, error_cases[i].line,
			     error_cases[i].key, error_cases[i].message);
	test_generated_errors();
	return check_report("test_config");
}
