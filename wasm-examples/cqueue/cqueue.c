/*
 * cqueue is a haproxystats WASM stage in C (SDK sdk/c/hsabi.h): which
 * backends have requests waiting in a queue, and how many.
 *
 * HAProxy queues a request when no server of the backend can take it (all
 * at maxconn): in the backend's queue (qcur of the BACKEND row), or in a
 * server's own queue when the request must go to that server (persistence;
 * qcur of the server row). For every backend whose queued requests, backend
 * and servers together, number at least `min-queue` (an option, default 1),
 * it sends
 *
 *     P.backend.<backend>.QueueTotal     qcur of the BACKEND row + qcur of its servers
 *     P.backend.<backend>.QueueMaxPct    100 * backend qcur / backend qmax, when qmax > 0
 *     P.backend.<backend>.server.<server>.QueueSharePct
 *                                        100 * server qcur / QueueTotal, servers with qcur > 0
 *
 * and for every snapshot the free paths
 *
 *     P.queue.backends_queued   backends reported above
 *     P.queue.requests          queued requests of all backends (no threshold)
 *
 * Values are summed over the HAProxy processes; null cells count as 0.
 * It keeps no state between snapshots.
 *
 * Build (from wasm-examples/; Debian: apt-get install -y clang lld wasi-libc):
 *
 *     clang --target=wasm32-wasi -O2 -Wall -Wextra -mexec-model=reactor -nodefaultlibs \
 *         -Wl,--strip-debug -o cqueue/cqueue.wasm cqueue/cqueue.c -lc
 */
#include <stdio.h>

#include "../sdk/c/hsabi.h"

static int64_t min_queue = 1;

static int init(const hs_params *params) {
	hs_params_iter it = hs_params_begin(params);
	hs_str key, value;
	char msg[256];
	while (hs_params_next(&it, &key, &value)) {
		if (!hs_str_eq(key, "min-queue")) {
			snprintf(msg, sizeof msg, "unknown option \"%.*s\" (known: min-queue)", (int)key.len, key.ptr);
			return hs_init_error(msg);
		}
		if (!hs_str_to_i64(value, &min_queue) || min_queue < 1 || min_queue > 1000000) {
			snprintf(msg, sizeof msg, "min-queue = \"%.*s\": want a number of requests from 1 to 1000000",
				 (int)value.len, value.ptr);
			return hs_init_error(msg);
		}
	}
	snprintf(msg, sizeof msg, "cqueue: reporting backends with at least %lld queued requests", (long long)min_queue);
	hs_log(HS_LOG_INFO, msg);
	return 0;
}

/* A backend over all processes. */
typedef struct {
	uint32_t px;   /* string id of its name */
	double queue;  /* qcur of the BACKEND rows */
	double qmax;   /* qmax of the BACKEND rows */
	double queued; /* queue + qcur of the server rows */
} backend;

/* A server with queued requests, over all processes. */
typedef struct {
	int32_t backend; /* slot in backends */
	uint32_t sv;     /* string id of its name */
	double queue;    /* qcur */
} server;

/* Reused from snapshot to snapshot (memory, not state). */
static hs_index backend_index, server_index;
static backend *backends;
static server *servers;
static uint32_t backends_cap, servers_cap;

/* grow makes room for n+1 elements of size bytes in *p (capacity *cap). */
static int grow(void **p, uint32_t *cap, uint32_t n, size_t size) {
	if (n < *cap)
		return 1;
	uint32_t c = *cap ? 2 * *cap : 256;
	void *q = realloc(*p, c * size);
	if (q == NULL)
		return 0;
	*p = q;
	*cap = c;
	return 1;
}

static int process(const hs_snapshot *s, hs_out *out) {
	hs_column qcur = hs_snap_column(s, "qcur"), qmax = hs_snap_column(s, "qmax");
	hs_index_reset(&backend_index);
	hs_index_reset(&server_index);

	/* One pass over the rows: backends by proxy id, queued servers by
	 * (proxy id, server id). Unrolled: with a timeout, the host checks for
	 * cancellation at every loop iteration; four rows per iteration halve
	 * the stage's time on a large snapshot. */
#pragma clang loop unroll_count(4)
	for (uint32_t i = 0; i < s->rows; i++) {
		uint8_t kind = s->kind[i];
		if (kind != HS_KIND_BACKEND && kind != HS_KIND_SERVER)
			continue;
		int added;
		int32_t b = hs_index_slot(&backend_index, s->px[i], &added);
		if (b < 0 || !grow((void **)&backends, &backends_cap, (uint32_t)b, sizeof *backends)) {
			hs_out_error(out, "cqueue: out of memory");
			return 1;
		}
		if (added) {
			backend zero = {s->px[i], 0, 0, 0};
			backends[b] = zero;
		}
		double q = hs_col_value(&qcur, i);
		backends[b].queued += q;
		if (kind == HS_KIND_BACKEND) {
			backends[b].queue += q;
			backends[b].qmax += hs_col_value(&qmax, i);
			continue;
		}
		if (q <= 0)
			continue;
		int32_t v = hs_index_slot(&server_index, hs_pair(s->px[i], s->sv[i]), &added);
		if (v < 0 || !grow((void **)&servers, &servers_cap, (uint32_t)v, sizeof *servers)) {
			hs_out_error(out, "cqueue: out of memory");
			return 1;
		}
		if (added) {
			server zero = {b, s->sv[i], 0};
			servers[v] = zero;
		}
		servers[v].queue += q;
	}

	double requests = 0, reported = 0;
	for (uint32_t b = 0; b < backend_index.n; b++) {
		const backend *be = &backends[b];
		requests += be->queued;
		if (be->queued < (double)min_queue)
			continue;
		reported++;
		hs_str name = hs_snap_str(s, be->px);
		hs_out_backend(out, name, "QueueTotal", be->queued);
		if (be->qmax > 0)
			hs_out_backend(out, name, "QueueMaxPct", 100 * be->queue / be->qmax);
	}
	for (uint32_t v = 0; v < server_index.n; v++) {
		const server *sv = &servers[v];
		const backend *be = &backends[sv->backend];
		if (be->queued < (double)min_queue)
			continue;
		hs_out_server(out, hs_snap_str(s, be->px), hs_snap_str(s, sv->sv), "QueueSharePct",
			      100 * sv->queue / be->queued);
	}
	hs_out_path(out, "queue.backends_queued", reported);
	hs_out_path(out, "queue.requests", requests);
	return 0;
}

HSABI_STAGE_WITH_INIT("qcur qmax", init, process)
