/* SPDX-License-Identifier: Apache-2.0 */
/* Counters: podnet_metrics holds packets and bytes per hook (enum podnet_dir)
 * and reason. Counting happens in one place, pn_finish (exit.h), so every
 * packet a program sees is counted exactly once. */
#ifndef PODNET_METRICS_H
#define PODNET_METRICS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PODNET_METRICS_ENTRIES);
	__type(key, __u32);
	__type(value, struct podnet_metric);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} podnet_metrics SEC(".maps");

#endif
