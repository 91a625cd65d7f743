/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Domain liveness from the hypervisor itself.  xenctrl.h needs GNU C
 * (anonymous unions in its public headers), so it is kept to this file,
 * which the Makefile builds with -std=gnu11.
 */
#include <xenctrl.h>

#include "xen.h"

int xen_domain_open(struct zcd_hv *hv)
{
	hv->xc = xc_interface_open(NULL, NULL, 0);
	return hv->xc != NULL ? 0 : -1;
}

void xen_domain_close(struct zcd_hv *hv)
{
	if (hv->xc != NULL)
		xc_interface_close(hv->xc);
	hv->xc = NULL;
}

bool xen_domain_alive(struct zcd_hv *hv, uint32_t domid)
{
	xc_domaininfo_t info;

	return xc_domain_getinfolist(hv->xc, domid, 1, &info) == 1 && info.domain == domid &&
	       !(info.flags & (XEN_DOMINF_dying | XEN_DOMINF_shutdown));
}
