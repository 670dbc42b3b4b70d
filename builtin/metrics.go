package builtin

// The metric lists of the original (haproxystats 0.5.2, metrics.py), SPEC §5.1 and §5.3.
// They are exported so that configuration validation can check the
// frontend-metrics, backend-metrics and server-metrics options against them.
var (
	// DaemonSummed are the `show info` keys summed over processes.
	DaemonSummed = []string{
		"CompressBpsIn", "CompressBpsOut", "CompressBpsRateLim", "ConnRate",
		"ConnRateLimit", "CumConns", "CumReq", "CumSslConns", "CurrConns",
		"CurrSslConns", "Hard_maxconn", "MaxConnRate", "MaxSessRate",
		"MaxSslConns", "MaxSslRate", "MaxZlibMemUsage", "Maxconn", "Maxpipes",
		"Maxsock", "Memmax_MB", "PipesFree", "PipesUsed", "Run_queue",
		"SessRate", "SessRateLimit", "SslBackendKeyRate",
		"SslBackendMaxKeyRate", "SslCacheLookups", "SslCacheMisses",
		"SslFrontendKeyRate", "SslFrontendMaxKeyRate",
		"SslFrontendSessionReuse_pct", "SslRate", "SslRateLimit", "Tasks",
		"Ulimit-n", "ZlibMemUsage",
	}
	// DaemonAveraged are the `show info` keys averaged over processes.
	DaemonAveraged = []string{"Idle_pct", "Uptime_sec"}

	// FrontendSummed is the default frontend list; it is also the list of
	// names valid in frontend-metrics.
	FrontendSummed = []string{
		"bin", "bout", "comp_byp", "comp_in", "comp_out", "comp_rsp",
		"conn_rate", "conn_rate_max", "conn_tot", "dcon", "dreq", "dresp",
		"dses", "ereq", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx",
		"hrsp_5xx", "hrsp_other", "intercepted", "rate", "rate_lim",
		"rate_max", "req_rate", "req_rate_max", "req_tot", "scur", "slim",
		"smax", "stot",
	}

	// BackendSummed is the default backend list.
	BackendSummed = []string{
		"bin", "bout", "chkdown", "cli_abrt", "comp_byp", "comp_in",
		"comp_out", "comp_rsp", "downtime", "dreq", "dresp", "econ", "eresp",
		"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
		"hrsp_other", "intercepted", "lbtot", "qcur", "qmax", "rate",
		"rate_max", "req_tot", "scur", "slim", "smax", "srv_abrt", "stot",
		"wredis", "wretr",
	}
	// BackendAveraged are averaged over all rows of a backend.
	BackendAveraged = []string{"act", "bck", "weight"}
	// BackendTimes are averaged over the rows of a backend whose lbtot is above 0.
	BackendTimes = []string{"rtime", "ctime", "qtime", "ttime"}

	// ServerSummed is the default server list.
	ServerSummed = []string{
		"bin", "bout", "chkdown", "chkfail", "cli_abrt", "dresp", "econ",
		"eresp", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
		"hrsp_other", "lbtot", "qcur", "qmax", "rate", "rate_max", "scur",
		"slim", "smax", "srv_abrt", "stot", "wredis", "wretr",
	}
	// ServerAveraged are averaged over all rows of a server.
	ServerAveraged = []string{"throttle", "weight"}
	// ServerTimes are averaged over the rows of a server whose lbtot is above 0.
	ServerTimes = []string{"ctime", "qtime", "rtime", "ttime"}
)

// Columns of HAProxy 2.6 to 3.5 that the original did not know (it was
// written for HAProxy 1.6), valid in the custom lists besides the defaults
// above and summed over processes like them. None is in a default list,
// so the defaults, and the output of a configuration written for the
// original, do not change.
//
// All are cumulative counters (internal/counters.IsStatCounter), whose
// sum over processes is the instance's total, except:
//   - sess_other (frontends, 2.8+): a counter HAProxy computes as a
//     difference, which may go down by a few; summed, but not made
//     monotonic (internal/counters.WronglyCounters);
//   - srv_icur, idle_conn_cur, safe_conn_cur, used_conn_cur,
//     need_conn_est, priv_idle_cur (servers): gauges of connections; their
//     sum is the total over the processes, as for scur.
//
// Maxima (qtime_max, ctime_max, rtime_max, ttime_max) are not offered: the
// original's rule, the sum, of per-process maxima is no maximum. The lists
// already hold maxima it summed (smax, qmax, rate_max, conn_rate_max,
// req_rate_max): their sum is an upper bound of the instance's maximum,
// kept for compatibility. Not offered either: agg_server_status,
// agg_check_status, agg_server_check_status (codes of the servers' states,
// whose sum means nothing), srid (an identifier), proto (text).
var (
	// FrontendExtra are the frontend columns added to FrontendSummed in
	// frontend-metrics.
	FrontendExtra = []string{
		// 2.6
		"wrew", "eint", "cache_lookups", "cache_hits",
		// 2.8
		"sess_other", "h1sess", "h2sess", "h3sess", "req_other", "h1req",
		"h2req", "h3req",
		// 3.3
		"reqbin", "reqbout", "resbin", "resbout",
		// 3.5
		"cache_hint_hits",
	}
	// BackendExtra are the backend columns valid in backend-metrics
	// besides BackendSummed, BackendAveraged and BackendTimes.
	BackendExtra = []string{
		// 2.6
		"wrew", "eint", "connect", "reuse", "cache_lookups", "cache_hits",
		// 3.3
		"reqbin", "reqbout", "resbin", "resbout",
		// 3.5
		"cache_hint_hits",
	}
	// ServerExtra are the server columns valid in server-metrics besides
	// ServerSummed, ServerAveraged and ServerTimes.
	ServerExtra = []string{
		// 2.6
		"wrew", "eint", "connect", "reuse", "hanafail", "downtime", "req_tot",
		"srv_icur", "idle_conn_cur", "safe_conn_cur", "used_conn_cur",
		"need_conn_est",
		// 3.3
		"priv_idle_cur", "reqbin", "reqbout", "resbin", "resbout",
	}
)

// ValidFrontendMetrics reports the names accepted by frontend-metrics.
func ValidFrontendMetrics() []string { return concat(FrontendSummed, FrontendExtra) }

// ValidBackendMetrics reports the names accepted by backend-metrics.
func ValidBackendMetrics() []string {
	return concat(BackendSummed, BackendAveraged, BackendTimes, BackendExtra)
}

// ValidServerMetrics reports the names accepted by server-metrics.
func ValidServerMetrics() []string {
	return concat(ServerSummed, ServerAveraged, ServerTimes, ServerExtra)
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
