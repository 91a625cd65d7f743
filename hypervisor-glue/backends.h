/* SPDX-License-Identifier: BSD-3-Clause */
/* Private to hypervisor-glue: the ops tables of the built-in backends. */
#ifndef ZCDEMUX_HV_BACKENDS_H
#define ZCDEMUX_HV_BACKENDS_H

#include "zcdemux/hv.h"

extern const struct zcd_hv_ops zcd_hv_sim_ops;
extern const struct zcd_hv_ops zcd_hv_xen_ops;

#endif /* ZCDEMUX_HV_BACKENDS_H */
