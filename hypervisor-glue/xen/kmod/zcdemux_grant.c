// SPDX-License-Identifier: GPL-2.0
/*
 * zcdemux dom0 grant helper: /dev/zcdemux_grant.
 *
 * Grants pages of a pinned region of the dataplane's memory to a domain
 * chosen per batch, which dom0 userspace cannot do (gntalloc only shares
 * fresh pages).  The interface is include/zcdemux/xen_grant.h.
 *
 * The one rule everything here serves: a page stays pinned, and its grant
 * reference reserved, while a guest may still map it.  A region closed
 * while a guest still maps some of its pages becomes a "zombie": a delayed
 * work item retries ending those grants and frees the region once all have
 * ended, unless ADOPT first hands it, references and grants, to a new region
 * over the same pages (a restarted dataplane mapping its pool file again).
 * Every zombie holds a reference on this module, so rmmod fails while one
 * exists.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include <xen/grant_table.h>
#include <xen/interface/xen.h>
#include <xen/page.h>
#include <xen/xen.h>

#include <zcdemux/xen_grant.h>

/* Bounds the per-region arrays: 2^20 pages, 8 MiB of page pointers. */
#define ZCD_MAX_LEN SZ_4G

/*
 * Zombie retry interval: 1 s, doubling while no page ends, at most 32 s.
 * Each failed attempt is logged by the grant table code itself, so a guest
 * that never unmaps must not make us log every second forever.
 */
#define ZCD_RETRY_MIN HZ
#define ZCD_RETRY_MAX (32 * HZ)

struct zcd_region {
	struct page **pages;	/* pages[i] != NULL iff page i is pinned */
	struct page *first_page; /* pages[0] as pinned: ADOPT reads it while close unpins */
	unsigned long *granted;	/* bit i: reference first_ref + i grants page i */
	u16 *domid;		/* domain page i was last granted to (for logs) */
	unsigned int nr_pages;
	unsigned int nr_granted;
	grant_ref_t first_ref;	/* page i always uses first_ref + i */

	/*
	 * Under zcd_regions_lock: on zcd_live from REGISTER or ADOPT until
	 * close has ended what it can, then on zcd_zombies while a guest
	 * still maps a page.
	 */
	struct list_head node;
	unsigned long next_try;	/* jiffies */
	unsigned long retry;	/* current interval, jiffies */
};

struct zcd_file {
	struct mutex lock;	/* serialises ioctls: one per batch, not per page */
	struct zcd_region *region;
	/* Batch scratch, allocated with the region: no allocation per batch. */
	u32 *idx;		/* ZCD_GRANT_MAX_BATCH page indices */
	u8 *res;		/* ZCD_GRANT_MAX_BATCH END results */
	unsigned long *seen;	/* nr_pages bits, all clear between calls */
};

/* ADOPT and the zombie work item both take zcd_regions_lock: they cannot race. */
static LIST_HEAD(zcd_live);
static LIST_HEAD(zcd_zombies);
static DEFINE_MUTEX(zcd_regions_lock);
static void zcd_zombie_work_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(zcd_zombie_work, zcd_zombie_work_fn);

/* Debug counters, read-only in /sys/module/zcdemux_grant/parameters/. */
static atomic_long_t zcd_nr_pinned = ATOMIC_LONG_INIT(0);
static atomic_long_t zcd_nr_granted = ATOMIC_LONG_INIT(0);
static atomic_long_t zcd_nr_regions = ATOMIC_LONG_INIT(0);
static atomic_long_t zcd_nr_zombies = ATOMIC_LONG_INIT(0);

static int zcd_counter_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%ld\n", atomic_long_read(kp->arg));
}

/* Refuse "insmod ... pinned_pages=N": these are counters, not settings. */
static int zcd_counter_set(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static const struct kernel_param_ops zcd_counter_ops = {
	.set = zcd_counter_set,
	.get = zcd_counter_get,
};

module_param_cb(pinned_pages, &zcd_counter_ops, &zcd_nr_pinned, 0444);
MODULE_PARM_DESC(pinned_pages, "Pages pinned now, zombies included (read-only)");
module_param_cb(granted_pages, &zcd_counter_ops, &zcd_nr_granted, 0444);
MODULE_PARM_DESC(granted_pages, "Pages granted and not yet ended (read-only)");
module_param_cb(regions, &zcd_counter_ops, &zcd_nr_regions, 0444);
MODULE_PARM_DESC(regions, "Registered regions, zombies included (read-only)");
module_param_cb(zombie_regions, &zcd_counter_ops, &zcd_nr_zombies, 0444);
MODULE_PARM_DESC(zombie_regions, "Closed regions a guest still maps (read-only)");

static void zcd_region_free_mem(struct zcd_region *r)
{
	kvfree(r->pages);
	kvfree(r->granted);
	kvfree(r->domid);
	kfree(r);
}

static void zcd_unpin(struct zcd_region *r, unsigned int i)
{
	/* Dirty: a guest with write access may have written the page. */
	unpin_user_pages_dirty_lock(&r->pages[i], 1, true);
	r->pages[i] = NULL;
	atomic_long_dec(&zcd_nr_pinned);
}

/* Last step of a region: no page granted, none pinned. */
static void zcd_region_destroy(struct zcd_region *r)
{
	/* A grant we could not end must keep its page and reference: leak. */
	if (WARN_ON(r->nr_granted))
		return;
	gnttab_free_grant_reference_seq(r->first_ref, r->nr_pages);
	atomic_long_dec(&zcd_nr_regions);
	zcd_region_free_mem(r);
}

/*
 * Ends the grants of a closed region that no guest maps any more and unpins
 * those pages; returns how many pages are still granted.  A failed attempt
 * makes gnttab_end_foreign_access_ref() log a warning, so retries pass
 * @stop_at_busy and probe only up to the first page still mapped.
 */
static unsigned int zcd_region_reap(struct zcd_region *r, bool stop_at_busy)
{
	unsigned int i, ended = 0;

	for_each_set_bit(i, r->granted, r->nr_pages) {
		if (!gnttab_end_foreign_access_ref(r->first_ref + i)) {
			if (stop_at_busy)
				break;
			continue;
		}
		__clear_bit(i, r->granted);
		ended++;
		zcd_unpin(r, i);
		cond_resched();
	}
	r->nr_granted -= ended;
	atomic_long_sub(ended, &zcd_nr_granted);
	return r->nr_granted;
}

static void zcd_zombie_work_fn(struct work_struct *work)
{
	struct zcd_region *r, *tmp;
	LIST_HEAD(done);
	unsigned int before;

	mutex_lock(&zcd_regions_lock);
	list_for_each_entry_safe(r, tmp, &zcd_zombies, node) {
		if (time_before(jiffies, r->next_try))
			continue;
		before = r->nr_granted;
		if (!zcd_region_reap(r, true)) {
			list_move(&r->node, &done);
			continue;
		}
		/* Progress means the guest is letting go: look again soon. */
		if (r->nr_granted < before)
			r->retry = ZCD_RETRY_MIN;
		else
			r->retry = min_t(unsigned long, 2 * r->retry, ZCD_RETRY_MAX);
		r->next_try = jiffies + r->retry;
	}
	if (!list_empty(&zcd_zombies))
		schedule_delayed_work(&zcd_zombie_work, ZCD_RETRY_MIN);
	mutex_unlock(&zcd_regions_lock);

	list_for_each_entry_safe(r, tmp, &done, node) {
		pr_info("zombie region released: grant refs %u..%u ended, pages unpinned\n",
			r->first_ref, r->first_ref + r->nr_pages - 1);
		list_del(&r->node);
		zcd_region_destroy(r);
		atomic_long_dec(&zcd_nr_zombies);
		/* Taken in zcd_region_close(); exit waits for this work item. */
		module_put(THIS_MODULE);
	}
}

/*
 * The file is gone (close, or the daemon died), or a failed ADOPT is undone:
 * give back what we can.
 */
static void zcd_region_close(struct zcd_region *r)
{
	unsigned int i, first_busy;

	/* Pages not granted now are ours alone. */
	for (i = 0; i < r->nr_pages; i++) {
		if (!test_bit(i, r->granted)) {
			zcd_unpin(r, i);
			cond_resched();
		}
	}
	/*
	 * Try every granted page once, so a guest loses what it does not map.
	 * The region stays live until then: an ADOPT meanwhile gets EBUSY
	 * and retries, rather than miss the zombie it may become.
	 */
	if (!zcd_region_reap(r, false)) {
		mutex_lock(&zcd_regions_lock);
		list_del(&r->node);
		mutex_unlock(&zcd_regions_lock);
		pr_info("released region: %u pages, grant refs %u..%u\n",
			r->nr_pages, r->first_ref, r->first_ref + r->nr_pages - 1);
		zcd_region_destroy(r);
		return;
	}

	first_busy = find_first_bit(r->granted, r->nr_pages);
	pr_info("closed region (grant refs %u..%u): %u pages still mapped (e.g. by domain %u) stay pinned until the guest unmaps them\n",
		r->first_ref, r->first_ref + r->nr_pages - 1, r->nr_granted,
		r->domid[first_busy]);

	/* We run from fops->release or an ioctl: the open file holds the module. */
	__module_get(THIS_MODULE);
	atomic_long_inc(&zcd_nr_zombies);
	mutex_lock(&zcd_regions_lock);
	r->retry = ZCD_RETRY_MIN;
	r->next_try = jiffies + ZCD_RETRY_MIN;
	list_move_tail(&r->node, &zcd_zombies);
	schedule_delayed_work(&zcd_zombie_work, ZCD_RETRY_MIN);
	mutex_unlock(&zcd_regions_lock);
}

static void zcd_scratch_free(struct zcd_file *zf)
{
	kvfree(zf->res);
	kvfree(zf->idx);
	kvfree(zf->seen);
	zf->res = NULL;
	zf->idx = NULL;
	zf->seen = NULL;
}

/*
 * First half of REGISTER and ADOPT: checks the range, allocates the region
 * and the file's batch scratch, and pins every page.  No references yet.
 */
static struct zcd_region *zcd_region_pin(struct zcd_file *zf, u64 addr, u64 len)
{
	struct zcd_region *r;
	unsigned int nr, pinned = 0;
	long ret;

	if (!len || !IS_ALIGNED(addr, PAGE_SIZE) || !IS_ALIGNED(len, PAGE_SIZE) ||
	    len > ZCD_MAX_LEN || addr + len < addr || addr != (unsigned long)addr)
		return ERR_PTR(-EINVAL);
	nr = len >> PAGE_SHIFT;

	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return ERR_PTR(-ENOMEM);
	r->nr_pages = nr;
	r->pages = kvcalloc(nr, sizeof(*r->pages), GFP_KERNEL_ACCOUNT);
	r->granted = kvcalloc(BITS_TO_LONGS(nr), sizeof(long), GFP_KERNEL_ACCOUNT);
	r->domid = kvcalloc(nr, sizeof(*r->domid), GFP_KERNEL_ACCOUNT);
	zf->seen = kvcalloc(BITS_TO_LONGS(nr), sizeof(long), GFP_KERNEL_ACCOUNT);
	zf->idx = kvmalloc_array(ZCD_GRANT_MAX_BATCH, sizeof(*zf->idx), GFP_KERNEL_ACCOUNT);
	zf->res = kvmalloc(ZCD_GRANT_MAX_BATCH, GFP_KERNEL_ACCOUNT);
	ret = -ENOMEM;
	if (!r->pages || !r->granted || !r->domid || !zf->seen || !zf->idx || !zf->res)
		goto err_free;

	/* The pages outlive any mapping of them: pin, not get (see pin_user_pages). */
	while (pinned < nr) {
		int n = pin_user_pages_fast(addr + ((u64)pinned << PAGE_SHIFT),
					    nr - pinned, FOLL_WRITE | FOLL_LONGTERM,
					    r->pages + pinned);

		if (n <= 0) {
			ret = n ? n : -EFAULT;
			goto err_unpin;
		}
		pinned += n;
	}
	r->first_page = r->pages[0];
	return r;

err_unpin:
	unpin_user_pages(r->pages, pinned);
err_free:
	zcd_scratch_free(zf);
	zcd_region_free_mem(r);
	return ERR_PTR(ret);
}

/* Undoes zcd_region_pin() of a region that never went live. */
static void zcd_region_unpin_all(struct zcd_file *zf, struct zcd_region *r)
{
	unpin_user_pages(r->pages, r->nr_pages);
	zcd_scratch_free(zf);
	zcd_region_free_mem(r);
}

/* Consecutive references: a buffer of n pages is named by its first. */
static int zcd_region_alloc_refs(struct zcd_region *r)
{
	if (!gnttab_alloc_grant_reference_seq(r->nr_pages, &r->first_ref))
		return 0;
	pr_warn_ratelimited("no run of %u free grant references; raise Xen's gnttab_max_frames (max_grant_frames for a driver domain)\n",
			    r->nr_pages);
	return -ENOSPC;
}

/* Under zcd_regions_lock: from now on a close undoes the region. */
static void zcd_region_go_live(struct zcd_region *r)
{
	list_add_tail(&r->node, &zcd_live);
	atomic_long_add(r->nr_pages, &zcd_nr_pinned);
	atomic_long_inc(&zcd_nr_regions);
}

static long zcd_ioctl_register(struct zcd_file *zf,
			       struct zcd_grant_register __user *uarg)
{
	struct zcd_grant_register arg;
	struct zcd_region *r;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (zf->region)
		return -EBUSY;
	r = zcd_region_pin(zf, arg.addr, arg.len);
	if (IS_ERR(r))
		return PTR_ERR(r);
	if (zcd_region_alloc_refs(r)) {
		zcd_region_unpin_all(zf, r);
		return -ENOSPC;
	}
	if (put_user(r->first_ref, &uarg->first_ref) ||
	    put_user(r->nr_pages, &uarg->nr_pages)) {
		gnttab_free_grant_reference_seq(r->first_ref, r->nr_pages);
		zcd_region_unpin_all(zf, r);
		return -EFAULT;
	}

	/*
	 * Live, for ADOPT to see, but no check against other live regions:
	 * REGISTER takes nothing over, and two pins of a page do no harm.
	 */
	mutex_lock(&zcd_regions_lock);
	zcd_region_go_live(r);
	mutex_unlock(&zcd_regions_lock);
	zf->region = r;
	pr_info("registered %u pages of %s[%d], grant refs %u..%u\n", r->nr_pages,
		current->comm, task_pid_nr(current), r->first_ref,
		r->first_ref + r->nr_pages - 1);
	return 0;
}

/* Under zcd_regions_lock: whether a region of an open file pins @page first. */
static bool zcd_live_pins_first(const struct page *page)
{
	const struct zcd_region *l;

	list_for_each_entry(l, &zcd_live, node)
		if (l->first_page == page)
			return true;
	return false;
}

/*
 * Under zcd_regions_lock: a zombie of @r's size whose every pinned page is
 * @r's page at the same index, i.e. the same file pages mapped again.  A
 * zombie pins at least the pages it still grants, so a match shares one.
 */
static struct zcd_region *zcd_zombie_find(const struct zcd_region *r)
{
	struct zcd_region *z;
	unsigned int i;

	list_for_each_entry(z, &zcd_zombies, node) {
		if (z->nr_pages != r->nr_pages)
			continue;
		for (i = 0; i < z->nr_pages; i++)
			if (z->pages[i] && z->pages[i] != r->pages[i])
				break;
		if (i == z->nr_pages)
			return z;
	}
	return NULL;
}

static long zcd_ioctl_adopt(struct zcd_file *zf, struct zcd_grant_adopt __user *uarg)
{
	struct zcd_grant_adopt arg;
	struct zcd_region *r, *z;
	unsigned int i, taken = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (zf->region)
		return -EBUSY;
	if (arg.pad)
		return -EINVAL;
	r = zcd_region_pin(zf, arg.addr, arg.len);
	if (IS_ERR(r))
		return PTR_ERR(r);

	mutex_lock(&zcd_regions_lock);
	/* The previous owner may still be closing: userspace retries. */
	if (zcd_live_pins_first(r->first_page)) {
		mutex_unlock(&zcd_regions_lock);
		zcd_region_unpin_all(zf, r);
		return -EBUSY;
	}
	z = zcd_zombie_find(r);
	if (z) {
		/* Off the list, the work item and zcd_exit() never see it again. */
		list_del(&z->node);
		atomic_long_dec(&zcd_nr_zombies);
		r->first_ref = z->first_ref;
		swap(r->granted, z->granted);
		swap(r->domid, z->domid);
		r->nr_granted = z->nr_granted;
		taken = z->nr_granted;
	} else if (zcd_region_alloc_refs(r)) {
		mutex_unlock(&zcd_regions_lock);
		zcd_region_unpin_all(zf, r);
		return -ENOSPC;
	}
	zcd_region_go_live(r);
	mutex_unlock(&zcd_regions_lock);

	if (z) {
		/* r pins the same pages, so what the guest maps stays pinned. */
		for (i = 0; i < z->nr_pages; i++) {
			if (z->pages[i]) {
				zcd_unpin(z, i);
				cond_resched();
			}
		}
		atomic_long_dec(&zcd_nr_regions);
		zcd_region_free_mem(z);
		/* Taken in zcd_region_close(); our open file holds the module. */
		module_put(THIS_MODULE);
		pr_info("adopted zombie region: %u pages, grant refs %u..%u, %u pages still granted, by %s[%d]\n",
			r->nr_pages, r->first_ref, r->first_ref + r->nr_pages - 1,
			taken, current->comm, task_pid_nr(current));
	} else {
		pr_info("registered %u pages of %s[%d], grant refs %u..%u (no zombie to adopt)\n",
			r->nr_pages, current->comm, task_pid_nr(current),
			r->first_ref, r->first_ref + r->nr_pages - 1);
	}

	if (put_user(r->first_ref, &uarg->first_ref) ||
	    put_user(r->nr_pages, &uarg->nr_pages) ||
	    put_user(taken, &uarg->granted)) {
		/* Grants taken over may be mapped: undo as a close would. */
		zcd_region_close(r);
		zcd_scratch_free(zf);
		return -EFAULT;
	}
	zf->region = r;
	return 0;
}

/* Copies in the page indices of a batch: one copy per call. */
static int zcd_batch_fetch(struct zcd_file *zf, const struct zcd_grant_batch *arg)
{
	if (!arg->count || arg->count > ZCD_GRANT_MAX_BATCH || arg->pad || arg->pad2)
		return -EINVAL;
	if (copy_from_user(zf->idx, u64_to_user_ptr(arg->pages),
			   arg->count * sizeof(*zf->idx)))
		return -EFAULT;
	return 0;
}

/*
 * Checks a whole batch before anything changes: every index in range, each
 * page granted (END) or not granted (GRANT), no index twice.  Returns 0 or
 * the error of the first bad entry; -EBUSY for GRANT of a granted page.
 */
static int zcd_batch_check(struct zcd_file *zf, unsigned int n, bool want_granted)
{
	const struct zcd_region *r = zf->region;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < n; i++) {
		u32 p = zf->idx[i];

		if (p >= r->nr_pages) {
			ret = -EINVAL;
			break;
		}
		if (test_bit(p, r->granted) != want_granted) {
			ret = want_granted ? -EINVAL : -EBUSY;
			break;
		}
		if (__test_and_set_bit(p, zf->seen)) {
			ret = -EINVAL;
			break;
		}
	}
	/* Entries 0..i-1 set their bits (a duplicate's bit is one of them). */
	while (i--)
		__clear_bit(zf->idx[i], zf->seen);
	return ret;
}

static long zcd_ioctl_grant(struct zcd_file *zf, struct zcd_grant_batch __user *uarg)
{
	struct zcd_region *r = zf->region;
	struct zcd_grant_batch arg;
	unsigned int i;
	long ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!r)
		return -EINVAL;
	/* Granting to ourselves or to a reserved id (DOMID_SELF...) is a bug. */
	if (arg.domid == 0 || arg.domid >= DOMID_FIRST_RESERVED || arg.readonly > 1)
		return -EINVAL;
	ret = zcd_batch_fetch(zf, &arg);
	if (ret)
		return ret;
	ret = zcd_batch_check(zf, arg.count, false);
	if (ret)
		return ret;

	/* A few stores per page into the shared grant table, no hypercall. */
	for (i = 0; i < arg.count; i++) {
		u32 p = zf->idx[i];

		gnttab_grant_foreign_access_ref(r->first_ref + p, arg.domid,
						xen_page_to_gfn(r->pages[p]),
						arg.readonly);
		__set_bit(p, r->granted);
		r->domid[p] = arg.domid;
	}
	r->nr_granted += arg.count;
	atomic_long_add(arg.count, &zcd_nr_granted);

	/* The grants stand even if this fails; STATUS shows them. */
	return put_user(arg.count, &uarg->done) ? -EFAULT : 0;
}

static long zcd_ioctl_end(struct zcd_file *zf, struct zcd_grant_batch __user *uarg)
{
	struct zcd_region *r = zf->region;
	struct zcd_grant_batch arg;
	unsigned int i, ended = 0;
	long ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!r || !arg.results)
		return -EINVAL;
	ret = zcd_batch_fetch(zf, &arg);
	if (ret)
		return ret;
	ret = zcd_batch_check(zf, arg.count, true);
	if (ret)
		return ret;

	for (i = 0; i < arg.count; i++) {
		u32 p = zf->idx[i];

		/* Fails while the guest maps the page: it stays granted. */
		if (gnttab_end_foreign_access_ref(r->first_ref + p)) {
			__clear_bit(p, r->granted);
			zf->res[i] = ZCD_GRANT_ENDED;
			ended++;
		} else {
			zf->res[i] = ZCD_GRANT_STILL_MAPPED;
		}
	}
	r->nr_granted -= ended;
	atomic_long_sub(ended, &zcd_nr_granted);

	/* The state changed even if this fails; STATUS shows what is granted. */
	if (copy_to_user(u64_to_user_ptr(arg.results), zf->res, arg.count) ||
	    put_user(ended, &uarg->done))
		return -EFAULT;
	return 0;
}

static long zcd_ioctl_status(struct zcd_file *zf, struct zcd_grant_status __user *uarg)
{
	struct zcd_grant_status st = { 0 };

	if (zf->region) {
		st.nr_pages = zf->region->nr_pages;
		st.granted = zf->region->nr_granted;
		st.first_ref = zf->region->first_ref;
	}
	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

/* Not a hot path: one buffer per call, one copy out. */
static long zcd_ioctl_query(struct zcd_file *zf, struct zcd_grant_query __user *uarg)
{
	const struct zcd_region *r = zf->region;
	struct zcd_grant_query arg;
	unsigned int i;
	u16 *domids;
	long ret = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!r || arg.count != r->nr_pages || arg.pad)
		return -EINVAL;
	domids = kvcalloc(r->nr_pages, sizeof(*domids), GFP_KERNEL_ACCOUNT);
	if (!domids)
		return -ENOMEM;
	/* r->domid keeps the last grantee after END: only granted pages count. */
	for_each_set_bit(i, r->granted, r->nr_pages)
		domids[i] = r->domid[i];
	if (copy_to_user(u64_to_user_ptr(arg.domids), domids,
			 r->nr_pages * sizeof(*domids)))
		ret = -EFAULT;
	kvfree(domids);
	return ret;
}

static long zcd_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct zcd_file *zf = filp->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	mutex_lock(&zf->lock);
	switch (cmd) {
	case ZCD_GRANT_IOC_REGISTER:
		ret = zcd_ioctl_register(zf, uarg);
		break;
	case ZCD_GRANT_IOC_GRANT:
		ret = zcd_ioctl_grant(zf, uarg);
		break;
	case ZCD_GRANT_IOC_END:
		ret = zcd_ioctl_end(zf, uarg);
		break;
	case ZCD_GRANT_IOC_STATUS:
		ret = zcd_ioctl_status(zf, uarg);
		break;
	case ZCD_GRANT_IOC_ADOPT:
		ret = zcd_ioctl_adopt(zf, uarg);
		break;
	case ZCD_GRANT_IOC_QUERY:
		ret = zcd_ioctl_query(zf, uarg);
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	mutex_unlock(&zf->lock);
	return ret;
}

static int zcd_open(struct inode *inode, struct file *filp)
{
	struct zcd_file *zf;

	zf = kzalloc(sizeof(*zf), GFP_KERNEL_ACCOUNT);
	if (!zf)
		return -ENOMEM;
	mutex_init(&zf->lock);
	filp->private_data = zf;
	return nonseekable_open(inode, filp);
}

/* Last reference to the file: no ioctl can be running. */
static int zcd_release(struct inode *inode, struct file *filp)
{
	struct zcd_file *zf = filp->private_data;

	if (zf->region)
		zcd_region_close(zf->region);
	zcd_scratch_free(zf);
	mutex_destroy(&zf->lock);
	kfree(zf);
	return 0;
}

static const struct file_operations zcd_fops = {
	.owner = THIS_MODULE,
	.open = zcd_open,
	.release = zcd_release,
	.unlocked_ioctl = zcd_ioctl,
	.compat_ioctl = compat_ptr_ioctl,	/* fixed-width structs */
	.llseek = no_llseek,
};

static struct miscdevice zcd_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "zcdemux_grant",
	.fops = &zcd_fops,
	.mode = 0600,
};

static int __init zcd_init(void)
{
	/* The interface counts 4 KiB pages; so does the grant table. */
	BUILD_BUG_ON(PAGE_SIZE != XEN_PAGE_SIZE);
	BUILD_BUG_ON(sizeof(struct zcd_grant_register) != 24);
	BUILD_BUG_ON(sizeof(struct zcd_grant_batch) != 32);
	BUILD_BUG_ON(sizeof(struct zcd_grant_status) != 16);
	BUILD_BUG_ON(sizeof(struct zcd_grant_adopt) != 32);
	BUILD_BUG_ON(sizeof(struct zcd_grant_query) != 16);
	BUILD_BUG_ON((ZCD_MAX_LEN >> PAGE_SHIFT) > INT_MAX);

	if (!xen_domain())
		return -ENODEV;
	return misc_register(&zcd_misc);
}

static void __exit zcd_exit(void)
{
	struct zcd_region *r, *tmp;

	misc_deregister(&zcd_misc);
	cancel_delayed_work_sync(&zcd_zombie_work);

	/*
	 * Zombies hold a module reference, so only a forced unload (rmmod -f)
	 * gets here with some left.  Their pages may still be mapped by a
	 * guest: end what we can, leak the rest (pinned, references reserved)
	 * rather than let a page a guest maps be reused.
	 */
	list_for_each_entry_safe(r, tmp, &zcd_zombies, node) {
		list_del(&r->node);
		if (!zcd_region_reap(r, false)) {
			zcd_region_destroy(r);
			continue;
		}
		pr_err("forced unload: leaking %u pinned pages still mapped by a guest (grant refs %u..%u)\n",
		       r->nr_granted, r->first_ref, r->first_ref + r->nr_pages - 1);
	}
}

module_init(zcd_init);
module_exit(zcd_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("zcdemux: grant pinned dataplane pages to Xen guests in batches");
