/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Interface of the zcdemux dom0 grant helper (hypervisor-glue/xen/kmod/),
 * the character device /dev/zcdemux_grant.
 *
 * Dom0 userspace can share fresh pages with a domain (gntalloc) but cannot
 * grant a page it already holds to a domain chosen after a frame arrived in
 * it.  The helper does exactly that and nothing more:
 *
 *   REGISTER  pin the dataplane's buffer region (long-term) and reserve one
 *             grant reference per page: page i is always granted through
 *             reference first_ref + i, so a buffer of n pages has n
 *             consecutive references and a descriptor can name the first;
 *   GRANT     grant a batch of pages to one domain (a few stores into the
 *             shared grant table per page, no hypercall);
 *   END       end access for a batch; per page, whether it ended or the
 *             guest still maps it (then the page must not be reused: retry);
 *   STATUS    how many pages are granted now;
 *   ADOPT     REGISTER over pages that a region closed earlier may still
 *             have granted (its process died while a guest mapped some of
 *             them): the new region takes that zombie over, with its
 *             references and its grants, so what the guest holds stays
 *             valid and can be ended by the new owner;
 *   QUERY     to which domain each page is granted now.
 *
 * One ioctl per batch, never per page.  Closing the device ends every grant
 * it can; pages a guest still maps stay pinned (and their references
 * reserved) until the guest lets go, so no page is freed while a guest can
 * see it.  One region per open file.
 *
 * Shared by the kernel module and userspace: fixed-width fields only.
 */
#ifndef ZCDEMUX_XEN_GRANT_H
#define ZCDEMUX_XEN_GRANT_H

#ifdef __KERNEL__
#include <linux/ioctl.h>
#include <linux/types.h>
#else
#include <stdint.h>
#include <sys/ioctl.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

#define ZCD_GRANT_DEVICE "/dev/zcdemux_grant"
#define ZCD_GRANT_MAX_BATCH 4096U /* pages per GRANT or END call */

/* Per-page result of END. */
#define ZCD_GRANT_ENDED 1 /* access ended; the page may be reused */
#define ZCD_GRANT_STILL_MAPPED 0 /* the guest still maps it: retry later */

struct zcd_grant_register {
	__u64 addr; /* in: page-aligned start of the region */
	__u64 len; /* in: bytes, a multiple of 4096 */
	__u32 first_ref; /* out: reference of page 0; page i uses first_ref + i */
	__u32 nr_pages; /* out: pages pinned */
};

struct zcd_grant_batch {
	__u64 pages; /* in: user pointer to __u32 page indices */
	__u64 results; /* END: user pointer to __u8 per page, ZCD_GRANT_* */
	__u32 count; /* in: entries, 1..ZCD_GRANT_MAX_BATCH */
	__u16 domid; /* GRANT: the domain that may map the pages */
	__u8 readonly; /* GRANT: 1 = the guest may only read */
	__u8 pad;
	__u32 done; /* out: GRANT: pages granted; END: pages whose access ended */
	__u32 pad2;
};

struct zcd_grant_status {
	__u32 nr_pages; /* pages in the registered region */
	__u32 granted; /* pages granted and not yet ended */
	__u32 first_ref;
	__u32 pad;
};

/*
 * ADOPT: addr/len as for REGISTER, over a file mapped shared (the pages
 * must be the very pages the zombie pinned, at the same indices).  If a
 * zombie region of the same number of pages has every page it still pins
 * at the same index of this range, the new region takes it over: its
 * first_ref, its granted pages and their domains; the zombie is gone.
 * Otherwise it is a plain REGISTER.  EBUSY if a region of an open file
 * (its process may still be exiting) pins the first page of this range:
 * retry after a moment.
 */
struct zcd_grant_adopt {
	__u64 addr; /* in */
	__u64 len; /* in */
	__u32 first_ref; /* out */
	__u32 nr_pages; /* out */
	__u32 granted; /* out: pages still granted that were taken over; 0 if none */
	__u32 pad; /* in: 0 */
};

/* QUERY: domids[i] = the domain page i is granted to, 0 if it is not granted. */
struct zcd_grant_query {
	__u64 domids; /* in: user pointer to count __u16 */
	__u32 count; /* in: the region's nr_pages */
	__u32 pad; /* in: 0 */
};

#define ZCD_GRANT_IOC_MAGIC 'Z'
#define ZCD_GRANT_IOC_REGISTER _IOWR(ZCD_GRANT_IOC_MAGIC, 1, struct zcd_grant_register)
#define ZCD_GRANT_IOC_GRANT _IOWR(ZCD_GRANT_IOC_MAGIC, 2, struct zcd_grant_batch)
#define ZCD_GRANT_IOC_END _IOWR(ZCD_GRANT_IOC_MAGIC, 3, struct zcd_grant_batch)
#define ZCD_GRANT_IOC_STATUS _IOR(ZCD_GRANT_IOC_MAGIC, 4, struct zcd_grant_status)
#define ZCD_GRANT_IOC_ADOPT _IOWR(ZCD_GRANT_IOC_MAGIC, 5, struct zcd_grant_adopt)
#define ZCD_GRANT_IOC_QUERY _IOW(ZCD_GRANT_IOC_MAGIC, 6, struct zcd_grant_query)

#endif /* ZCDEMUX_XEN_GRANT_H */
