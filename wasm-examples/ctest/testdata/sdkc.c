/*
 * sdkc exercises every accessor and output function of sdk/c/hsabi.h; the
 * Go test (sdk_test.go) computes the same metrics from the snapshot with
 * the engine and compares. sdkrs.rs is the same module in Rust.
 *
 * Parameters: alpha (an integer), beta (any text), fail-init (refuse to
 * start), fail-process (fail every call).
 */
#include "../../sdk/c/hsabi.h"

static int64_t alpha = -1;
static double beta_len = -1, param_count = -1;
static int fail_process;
static uint32_t first_frontend_id = UINT32_MAX;

static int init(const hs_params *p) {
	hs_params_iter it = hs_params_begin(p);
	hs_str k, v;
	param_count = p->count;
	while (hs_params_next(&it, &k, &v)) {
		if (hs_str_eq(k, "alpha")) {
			if (!hs_str_to_i64(v, &alpha))
				return hs_init_error("alpha: not an integer");
		} else if (hs_str_eq(k, "fail-init")) {
			return hs_init_error("init refused: fail-init");
		} else if (hs_str_eq(k, "fail-process")) {
			fail_process = 1;
		}
	}
	if (hs_params_get(p, "beta", &v))
		beta_len = v.len;
	hs_log(HS_LOG_INFO, "sdkc: init done");
	return 0;
}

static double or_null(const hs_column *c, uint32_t i) {
	double v;
	return hs_col_get(c, i, &v) ? v : -1;
}

static int process(const hs_snapshot *s, hs_out *out) {
	if (fail_process) {
		hs_out_daemon(out, "Discarded", 1);
		hs_out_error(out, "process refused: fail-process");
		return 1;
	}
	hs_column scur = hs_snap_column(s, "scur"), slim = hs_snap_column(s, "slim");
	hs_column missing = hs_snap_column(s, "nosuchcol");
	hs_out_daemon(out, "Rows", s->rows);
	hs_out_daemon(out, "Columns", s->ncols);
	hs_out_daemon(out, "Time", (double)s->time);
	hs_out_daemon(out, "NameLen", s->name.len);
	hs_out_daemon(out, "Procs", s->nprocs);
	hs_out_daemon(out, "InfoRows", s->info_rows);
	hs_out_daemon(out, "MissingColumn", missing.values == NULL);
	hs_out_daemon(out, "FirstColumnIsScur", s->ncols > 0 && hs_snap_column_at(s, 0).name == scur.name);
	hs_out_daemon(out, "ParamCount", param_count);
	hs_out_daemon(out, "ParamAlpha", (double)alpha);
	hs_out_daemon(out, "ParamBetaLen", beta_len);

	int curr = hs_info_key(s, "CurrConns"), idle = hs_info_key(s, "Idle_pct");
	for (uint32_t r = 0; r < s->info_rows; r++) {
		int64_t v;
		hs_str proc = hs_snap_str(s, s->info_procs[r]);
		if (hs_info_get(s, curr, r, &v))
			hs_out_process(out, proc, "CurrConns", (double)v);
		if (hs_info_get(s, idle, r, &v))
			hs_out_process(out, proc, "Idle_pct", (double)v);
		if (hs_info_get(s, hs_info_key(s, "NoSuchKey"), r, &v))
			hs_out_process(out, proc, "NoSuchKey", (double)v);
	}

	uint32_t frontend = hs_snap_find(s, "FRONTEND");
	if (first_frontend_id == UINT32_MAX)
		first_frontend_id = frontend;
	double find_ok = 1, kinds[4] = {0, 0, 0, 0};
	for (uint32_t i = 0; i < s->rows; i++) {
		hs_str px = hs_snap_str(s, s->px[i]), sv = hs_snap_str(s, s->sv[i]);
		kinds[s->kind[i] & 3]++;
		hs_out_process(out, hs_snap_str(s, s->procs[s->proc[i]]), "StatRows", 1);
		switch (s->kind[i]) {
		case HS_KIND_FRONTEND:
			if (s->sv[i] != frontend)
				find_ok = 0;
			hs_out_frontend(out, px, "scur", or_null(&scur, i));
			hs_out_frontend(out, px, "slim", or_null(&slim, i));
			hs_out_frontend(out, px, "proc", s->proc[i]);
			break;
		case HS_KIND_BACKEND:
			hs_out_backend(out, px, "scur", or_null(&scur, i));
			hs_out_backend(out, px, "slim", or_null(&slim, i));
			hs_out_backend(out, px, "proc", s->proc[i]);
			break;
		case HS_KIND_SERVER:
			hs_out_server(out, px, sv, "scur", or_null(&scur, i));
			hs_out_aggr_server(out, sv, "slim", or_null(&slim, i));
			break;
		}
	}
	hs_out_daemon(out, "FindOK", find_ok);
	hs_out_daemon(out, "StableID", frontend == first_frontend_id);
	hs_out_daemon(out, "SameRows", s->same_rows);
	hs_out_path(out, "sdk.kind.other", kinds[HS_KIND_OTHER]);
	hs_out_path(out, "sdk.kind.frontend", kinds[HS_KIND_FRONTEND]);
	hs_out_path(out, "sdk.kind.backend", kinds[HS_KIND_BACKEND]);
	hs_out_path(out, "sdk.kind.server", kinds[HS_KIND_SERVER]);
	return 0;
}

HSABI_STAGE_WITH_INIT("scur nosuchcol slim", init, process)
