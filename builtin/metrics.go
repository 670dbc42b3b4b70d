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

// ValidFrontendMetrics reports the names accepted by frontend-metrics.
func ValidFrontendMetrics() []string { return FrontendSummed }

// ValidBackendMetrics reports the names accepted by backend-metrics.
func ValidBackendMetrics() []string { return concat(BackendSummed, BackendAveraged, BackendTimes) }

// ValidServerMetrics reports the names accepted by server-metrics.
func ValidServerMetrics() []string { return concat(ServerSummed, ServerAveraged, ServerTimes) }

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
