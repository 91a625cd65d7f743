# SPDX-License-Identifier: BSD-3-Clause
# zcdemux: zero-copy receive demultiplexer.  `make` builds build/zcdemux.
#
#   make demo      install what is missing, build, run the demo (no Xen, NIC or hugepages)
#   make test      install what is missing, build, run every test, then again under
#                  ASan/UBSan, then the real-Xen and real-IOMMU tests
#   make check     unit and integration tests of the current build only
#   make test-xen  the real-Xen test: Xen 4.17 + guests in QEMU (root, ~10 min)
#   make test-iommu  the vfio backend with a real NIC driver behind QEMU's emulated
#                  Intel IOMMU (root, ~1 min once the packages are cached)
#   make bench-quick  the benchmarks, short (under 5 minutes); ends with the ratio summary
#   make bench     the benchmarks in full: bench/results/, bench/RESULTS.md
#   make install   daemon, guest tool, module source (DKMS), systemd unit, configs
#                  (PREFIX=/usr/local, SYSCONFDIR=/etc, DESTDIR= honoured)
#   make SANITIZE=1 BUILD=build-asan ...   the same with AddressSanitizer + UBSan
#   make V=1       show compiler command lines

VERSION := 0.1
PKGCONF ?= pkg-config
PYTHON ?= python3
BUILD ?= build
SANITIZE ?=
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

# dpdk-testpmd is in dpdk up to Debian's 22.11.7 and in dpdk-dev from 22.11.11.
DEB_PACKAGES := gcc make pkg-config libc6-dev libdpdk-dev libyaml-dev \
	libnuma-dev libpcap-dev libxen-dev iproute2 python3 dpdk dpdk-dev

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wmissing-prototypes \
	-Wstrict-prototypes -Wshadow -Iinclude
LDLIBS :=

ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

# libFuzzer builds (make fuzz): clang, coverage for the fuzzer, ASan/UBSan.
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
ifneq ($(FUZZ),)
CFLAGS += -fsanitize=fuzzer-no-link $(FUZZ_SAN) -fno-omit-frame-pointer
endif

# Resolved lazily so that `make deps` works before the libraries exist.
XEN_PKGS := xencontrol xenstore xengnttab xenevtchn
PKG_CFLAGS = $(shell $(PKGCONF) --cflags libdpdk yaml-0.1 numa $(XEN_PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKGCONF) --libs libdpdk yaml-0.1 numa $(XEN_PKGS) 2>/dev/null)

CORE_SRCS := $(filter-out dataplane/main.c,$(wildcard dataplane/*.c)) \
	$(wildcard hypervisor-glue/*.c hypervisor-glue/sim/*.c hypervisor-glue/xen/*.c) \
	$(wildcard iommu/*.c)
# The guest side: a library (also linked into the unit tests) and a tool for
# the domU, built without DPDK.
GUEST_TOOL_SRC := hypervisor-glue/xen/guest/zcdemux-guest.c
GUEST_LIB_SRCS := $(filter-out $(GUEST_TOOL_SRC),$(wildcard hypervisor-glue/xen/guest/*.c))
GUEST_LIB_OBJS := $(GUEST_LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/hypervisor-glue/pcap_sink.o
GUEST_LIBS = $(shell $(PKGCONF) --libs xenstore xengnttab xenevtchn 2>/dev/null)
CORE_SRCS += $(GUEST_LIB_SRCS)
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps deps-vm deps-bench deps-fuzz deps-soak demo test check unit integration \
	test-asan test-xen test-iommu fuzz soak bench bench-quick install clean
.PRECIOUS: $(BUILD)/obj/%.o

all: $(BUILD)/zcdemux $(BUILD)/zcdemux-sim-guest $(BUILD)/zcdemux-guest $(BUILD)/zcd-replay $(BUILD)/zcd-pcapcmp \
	$(BUILD)/zcd-bench $(BUILD)/zcd-gen

$(BUILD)/obj/%.o: %.c $(wildcard include/zcdemux/*.h) $(wildcard dataplane/*.h) $(wildcard bench/*.h) \
		$(wildcard hypervisor-glue/*.h hypervisor-glue/*/*.h) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

# xenctrl.h's public headers use anonymous unions (GNU C); only this file includes it.
$(BUILD)/obj/hypervisor-glue/xen/domain.o: CFLAGS += -std=gnu11

# Unit tests reach into the modules they test; the benchmark into the dataplane.
$(BUILD)/obj/tests/%.o: CFLAGS += -Idataplane -Ihypervisor-glue -Ihypervisor-glue/xen/guest
$(BUILD)/obj/bench/%.o: CFLAGS += -Idataplane

# Guest code runs in a domU or as a simulated guest: no DPDK flags (nor its -march).
$(BUILD)/obj/hypervisor-glue/xen/guest/%.o $(BUILD)/obj/hypervisor-glue/sim/guest/%.o \
		$(BUILD)/obj/hypervisor-glue/pcap_sink.o: PKG_CFLAGS = $(shell $(PKGCONF) --cflags xenstore xengnttab xenevtchn 2>/dev/null)

# Test tools: replay a pcap out of an interface; compare two pcaps' frames.
$(BUILD)/zcd-replay $(BUILD)/zcd-pcapcmp: $(BUILD)/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

$(BUILD)/zcdemux-guest: $(BUILD)/obj/$(GUEST_TOOL_SRC:.c=.o) $(GUEST_LIB_OBJS)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(GUEST_LIBS)

# The sim backend starts one of these per VM: the simulated guest, a process of its own.
$(BUILD)/zcdemux-sim-guest: $(BUILD)/obj/hypervisor-glue/sim/guest/zcdemux-sim-guest.o \
		$(BUILD)/obj/hypervisor-glue/pcap_sink.o
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/libzcdemux.a: $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(BUILD)/zcdemux: $(BUILD)/obj/dataplane/main.o $(BUILD)/libzcdemux.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread $(LDLIBS)

$(BUILD)/zcd-bench $(BUILD)/zcd-gen: $(BUILD)/%: $(BUILD)/obj/bench/%.o $(BUILD)/obj/bench/tool.o \
		$(BUILD)/libzcdemux.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libzcdemux.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread $(LDLIBS)

$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/libzcdemux.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS) -lpthread $(LDLIBS)

# Installs the Debian packages of $(1) that are missing, when run as root;
# otherwise prints the exact command and stops.
define install_packages
	@missing=""; \
	for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "zcdemux: installing$$missing"; \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
		else \
			echo "zcdemux: missing packages; run as root:"; \
			echo "  apt-get install -y$$missing"; \
			exit 1; \
		fi; \
	fi
endef

deps:
	$(call install_packages,$(DEB_PACKAGES))

demo: deps
	$(MAKE) all
	$(PYTHON) tests/tools/zcdgen.py demo --out $(BUILD)/demo
	$(BUILD)/zcdemux --no-huge -m 512 --no-pci -l 0 --file-prefix zcdemux-demo \
		--log-level=lib.eal:warning --log-level=lib.telemetry:error -- \
		--config configs/demo.yaml --stats-json $(BUILD)/demo/stats.json --idle-exit 500

# The unit tests start simulated guests from the build, not from next to themselves.
unit: $(UNIT_BINS) $(BUILD)/zcdemux-sim-guest
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; \
		ZCDEMUX_SIM_GUEST=$(abspath $(BUILD)/zcdemux-sim-guest) $$t; done

integration: $(BUILD)/zcdemux $(BUILD)/zcdemux-sim-guest $(BUILD)/zcd-gen $(BUILD)/zcd-bench
	$(PYTHON) tests/integration/run.py --binary $(BUILD)/zcdemux --work $(BUILD)/it

check: unit integration

test-asan:
	$(MAKE) SANITIZE=1 BUILD=build-asan check

test: deps
	$(MAKE) all
	$(MAKE) check
	$(MAKE) test-asan
	$(MAKE) fuzz
	$(MAKE) test-xen
	$(MAKE) test-iommu

# Each fuzz target runs FUZZ_SECONDS from its seed corpus (tests/fuzz/corpus/,
# copied to build-fuzz/ where new inputs go), after replaying every input in
# tests/fuzz/regressions/: inputs that once crashed it.
FUZZ_PACKAGES := clang libclang-rt-14-dev
FUZZ_TARGETS := config classify return_ring
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build-fuzz

deps-fuzz: deps
	$(call install_packages,$(FUZZ_PACKAGES))

fuzz: deps-fuzz
	$(MAKE) CC=clang FUZZ=1 BUILD=$(FUZZ_BUILD) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
		bin=$(FUZZ_BUILD)/fuzz/fuzz_$$t; \
		regressions=$$(find tests/fuzz/regressions/$$t -type f 2>/dev/null | sort); \
		if [ -n "$$regressions" ]; then \
			echo "== $$bin: regressions"; $$bin $$regressions; fi; \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
		echo "== $$bin: $(FUZZ_SECONDS) s"; \
		$$bin -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/$$t- $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
			2>$(FUZZ_BUILD)/$$t.log || { tail -40 $(FUZZ_BUILD)/$$t.log; exit 1; }; \
		grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done )' $(FUZZ_BUILD)/$$t.log; \
	done

# Sustained traffic with guests coming and going, SOAK_SECONDS per pass
# (default 600): the normal build with the memory and descriptor check,
# the ASan/LSan build, and the normal build under valgrind's memcheck.
# Not part of make test.
SOAK_PACKAGES := valgrind
SOAK_SECONDS ?= 600

deps-soak: deps
	$(call install_packages,$(SOAK_PACKAGES))

soak: deps-soak
	$(MAKE) all
	$(MAKE) SANITIZE=1 BUILD=build-asan build-asan/zcdemux build-asan/zcdemux-sim-guest \
		build-asan/zcd-gen
	$(PYTHON) tests/soak/soak.py --build $(BUILD) --seconds $(SOAK_SECONDS)
	$(PYTHON) tests/soak/soak.py --build build-asan --seconds $(SOAK_SECONDS) --rate 50000 \
		--no-memory-check
	$(PYTHON) tests/soak/soak.py --build $(BUILD) --seconds $(SOAK_SECONDS) --rate 5000 \
		--valgrind --no-memory-check

VM_TEST_PACKAGES := qemu-system-x86 busybox-static cpio iproute2 kmod apt-utils

# Installs what the tests that boot a VM need on this machine (never a
# kernel: the tests extract the kernel and Xen packages they boot).
deps-vm: deps
	$(call install_packages,$(VM_TEST_PACKAGES))

test-xen: deps-vm
	$(MAKE) all
	$(PYTHON) tests/xen/xen_test.py

test-iommu: deps-vm
	$(MAKE) all
	$(PYTHON) tests/iommu/iommu_test.py

BENCH_PACKAGES := gnuplot-nox
# The last CPU, away from the one interrupts and the shell favour.
BENCH_LCORE ?= $(shell echo $$(($$(nproc) - 1)))
BENCH_EAL = --no-huge -m 1024 --no-pci -l $(BENCH_LCORE) --file-prefix zcd-bench \
	--log-level=lib.eal:warning --no-telemetry
BENCH_QUICK = -n 16384 -r 5
BENCH_FULL = -n 131072 -r 9

deps-bench: deps
	$(call install_packages,$(BENCH_PACKAGES))

BENCH_E2E_QUICK = --sizes 64,1518,imix --trial 1
BENCH_E2E_FULL = --sizes 64,128,256,512,1024,1518,imix --trial 2

# $(1): output directory, $(2): zcd-bench options, $(3): e2e.py options,
# $(4): where RESULTS.md goes
define run_bench
	@mkdir -p $(1)
	@$(BUILD)/zcd-bench $(BENCH_EAL) -- $(2) -o $(1)/dataplane.csv >$(1)/dataplane.log; \
		status=$$?; cat $(1)/dataplane.log; exit $$status
	@$(PYTHON) bench/e2e.py --build $(BUILD) --out $(1) $(3)
	@$(PYTHON) bench/report.py --csv $(1)/dataplane.csv --log $(1)/dataplane.log \
		--e2e $(1)/e2e.csv --out $(1) --results $(4)
endef

bench-quick: deps-bench
	@$(MAKE) --no-print-directory all
	$(call run_bench,$(BUILD)/bench-quick,$(BENCH_QUICK),$(BENCH_E2E_QUICK),$(BUILD)/bench-quick/RESULTS.md)

bench: deps-bench
	@$(MAKE) --no-print-directory all
	$(call run_bench,bench/results,$(BENCH_FULL),$(BENCH_E2E_FULL),bench/RESULTS.md)

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
KMOD_DIR := hypervisor-glue/xen/kmod
KMOD_DEST = $(DESTDIR)$(PREFIX)/src/zcdemux-grant-$(VERSION)
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

install: all
	install -D -m 755 $(BUILD)/zcdemux $(DESTDIR)$(PREFIX)/bin/zcdemux
	install -D -m 755 $(BUILD)/zcdemux-guest $(DESTDIR)$(PREFIX)/bin/zcdemux-guest
	install -D -m 755 $(BUILD)/zcdemux-sim-guest $(DESTDIR)$(PREFIX)/lib/zcdemux/zcdemux-sim-guest
	install -d $(DESTDIR)$(PREFIX)/share/zcdemux/examples $(DESTDIR)$(PREFIX)/share/doc/zcdemux
	install -m 644 configs/*.yaml $(DESTDIR)$(PREFIX)/share/zcdemux/examples/
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/zcdemux/
	install -D -m 644 $(KMOD_DIR)/zcdemux_grant.c $(KMOD_DEST)/zcdemux_grant.c
	install -m 644 $(KMOD_DIR)/Kbuild $(KMOD_DIR)/Makefile $(KMOD_DIR)/README.md $(KMOD_DEST)/
	install -D -m 644 include/zcdemux/xen_grant.h $(KMOD_DEST)/include/zcdemux/xen_grant.h
	$(SUBST) $(KMOD_DIR)/dkms.conf.in > $(KMOD_DEST)/dkms.conf
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(SYSCONFDIR)/modules-load.d
	$(SUBST) configs/systemd/zcdemux.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/zcdemux.service
	install -m 644 configs/systemd/zcdemux-modules.conf $(DESTDIR)$(SYSCONFDIR)/modules-load.d/zcdemux.conf
	@# Never overwrite a configuration the administrator already has.
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/zcdemux/zcdemux.yaml ]; then \
		install -D -m 644 configs/xen.yaml $(DESTDIR)$(SYSCONFDIR)/zcdemux/zcdemux.yaml; \
	fi

clean:
	rm -rf build build-asan build-fuzz
