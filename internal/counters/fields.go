package counters

import "slices"

// The cumulative counters: the fields of `show stat` and `show info` that
// count since the worker process started and never go down while it lives.
// They are the fields HAProxy's `show stat typed` and `show info typed` tag
// with nature C (FN_COUNTER in HAProxy's source: src/stats.c up to 2.9,
// src/stats-proxy.c and src/stats.c from 3.0, and the stats modules of
// src/ssl_sock.c, src/mux_h2.c, src/mux_h1.c, src/quic_stats.c and
// src/h3_stats.c) in any of HAProxy 2.6 to 3.5, minus [WronglyCounters],
// plus [WronglyNotCounters]. testdata/haproxy-headers/<version>.counters
// holds, per version, the fields HAProxy tags C; the tests check this table
// against them and against the typed output of the installed HAProxy.
//
// A field counts only while its worker lives: a new worker (a reload), a
// restarted HAProxy and `clear counters all` start it again from 0, which
// is what Store undoes where it can (see the package documentation).
var (
	statCounters = sorted(
		// The static columns (before the "-" column).
		"stot", "bin", "bout", "dreq", "dresp", "ereq", "econ", "eresp",
		"wretr", "wredis", "chkfail", "chkdown", "downtime", "lbtot",
		"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
		"hrsp_other", "hanafail", "req_tot", "cli_abrt", "srv_abrt",
		"comp_in", "comp_out", "comp_byp", "comp_rsp", "conn_tot",
		"intercepted", "dcon", "dses", "wrew", "connect", "reuse",
		"cache_lookups", "cache_hits", "eint",
		// 2.8 and later (sess_other: see WronglyCounters).
		"h1sess", "h2sess", "h3sess", "req_other", "h1req",
		"h2req", "h3req",
		// 3.3 and later.
		"reqbin", "reqbout", "resbin", "resbout",
		// 3.5 and later.
		"cache_hint_hits",

		// Module columns (after the "-" column). SSL (builds with OpenSSL);
		// the OCSP stapling counters from 3.2.
		"ssl_sess", "ssl_reused_sess", "ssl_failed_handshake",
		"ssl_ocsp_staple", "ssl_failed_ocsp_staple",
		// HTTP/2.
		"h2_headers_rcvd", "h2_data_rcvd", "h2_settings_rcvd",
		"h2_rst_stream_rcvd", "h2_goaway_rcvd",
		"h2_detected_conn_protocol_errors", "h2_detected_strm_protocol_errors",
		"h2_rst_stream_resp", "h2_goaway_resp", "h2_total_connections",
		"h2_backend_total_streams",
		// HTTP/1 (the spliced byte counters only where splicing is built).
		"h1_total_connections", "h1_total_streams", "h1_bytes_in",
		"h1_bytes_out", "h1_spliced_bytes_in", "h1_spliced_bytes_out",
		// HTTP/3 and QPACK (builds with QUIC).
		"h3_data", "h3_headers", "h3_cancel_push", "h3_push_promise",
		"h3_max_push_id", "h3_goaway", "h3_settings", "h3_no_error",
		"h3_general_protocol_error", "h3_internal_error",
		"h3_stream_creation_error", "h3_closed_critical_stream",
		"h3_frame_unexpected", "h3_frame_error", "h3_excessive_load",
		"h3_id_error", "h3_settings_error", "h3_missing_settings",
		"h3_request_rejected", "h3_request_cancelled",
		"h3_request_incomplete", "h3_message_error", "h3_connect_error",
		"h3_version_fallback", "pack_decompression_failed",
		"qpack_encoder_stream_error", "qpack_decoder_stream_error",
		// QUIC (builds with QUIC, 2.8 and later; 2.6's experimental QUIC
		// module, with its quic_streams_data_blocked_bidi, is not covered).
		"quic_dropped_pkt", "quic_dropped_pkt_bufoverrun",
		"quic_dropped_parsing_pkt", "quic_socket_full", "quic_sendto_err",
		"quic_sendto_err_unknwn", "quic_sent_pkt", "quic_lost_pkt",
		"quic_too_short_dgram", "quic_retry_sent", "quic_retry_validated",
		"quic_retry_error", "quic_hdshk_fail", "quic_stless_rst_sent",
		"quic_conn_migration_done", "quic_rxbuf_full",
		"quic_transp_err_no_error", "quic_transp_err_internal_error",
		"quic_transp_err_connection_refused",
		"quic_transp_err_flow_control_error",
		"quic_transp_err_stream_limit_error",
		"quic_transp_err_stream_state_error",
		"quic_transp_err_final_size_error",
		"quic_transp_err_frame_encoding_error",
		"quic_transp_err_transport_parameter_error",
		"quic_transp_err_connection_id_limit",
		"quic_transp_err_protocol_violation_error",
		"quic_transp_err_invalid_token", "quic_transp_err_application_error",
		"quic_transp_err_crypto_buffer_exceeded",
		"quic_transp_err_key_update_error",
		"quic_transp_err_aead_limit_reached",
		"quic_transp_err_no_viable_path", "quic_transp_err_crypto_error",
		"quic_transp_err_unknown_error", "quic_data_blocked",
		"quic_stream_data_blocked", "quic_streams_blocked_bidi",
		"quic_streams_blocked_uni", "quic_ncbuf_gap_limit",
	)

	infoCounters = sorted(
		"CumConns", "CumReq", "CumSslConns", "CumRecvLogs", "PoolFailed",
		"SslCacheLookups", "SslCacheMisses",
		// 2.8 and later.
		"TotalWarnings", "MaxconnReached",
		// Tagged as gauges by HAProxy: see WronglyNotCounters.
		"DroppedLogs", "FailedResolutions", "TotalBytesOut",
		"TotalSplicdedBytesOut", "TotalSplicedBytesOut",
		"DebugCommandsIssued", "CumStreams", "BlockedTrafficWarnings",
		"PatternsAdded", "PatternsFreed",
	)
)

// Mistag is a field HAProxy's typed output tags wrongly, for this table.
type Mistag struct {
	// Info is true for a `show info` field, false for a `show stat` one.
	Info bool
	Name string
	// Reason says why HAProxy's tag is wrong.
	Reason string
}

// WronglyCounters are fields HAProxy tags C that are not cumulative
// counters: they are not in the table.
var WronglyCounters = []Mistag{
	{Name: "srid", Reason: "the server's id revision (2.8+): an identifier that tells a server re-created with a reused id apart, not a count of anything; it does not restart at 0 with a new worker"},
	{Name: "sess_other", Reason: "(2.8+, frontends) computed as cum_sess minus the per-HTTP-version session counters, each read at its own instant and the difference clamped at 0: it can go down by a few between two snapshots, which would read as counters cleared and reset the instance"},
}

// WronglyNotCounters are fields HAProxy tags as gauges (nature 0, the
// default of mkf_u32/mkf_u64) although they count since the worker
// started: they are in the table.
var WronglyNotCounters = []Mistag{
	{Info: true, Name: "DroppedLogs", Reason: `"Total number of dropped logs for current worker process since started"`},
	{Info: true, Name: "FailedResolutions", Reason: `"Total number of failed DNS resolutions in current worker process since started"`},
	{Info: true, Name: "TotalBytesOut", Reason: `"Total number of bytes emitted by current worker process since started"`},
	{Info: true, Name: "TotalSplicdedBytesOut", Reason: `2.6 and 2.7 spelling of TotalSplicedBytesOut`},
	{Info: true, Name: "TotalSplicedBytesOut", Reason: `"Total number of bytes emitted by current worker process through a kernel pipe since started"`},
	{Info: true, Name: "DebugCommandsIssued", Reason: `"Number of debug commands issued on this process": only ever incremented`},
	{Info: true, Name: "CumStreams", Reason: `(3.2+) "Total number of streams created on this worker process since started"`},
	{Info: true, Name: "BlockedTrafficWarnings", Reason: `(3.2+) "Total number of warnings issued about traffic being blocked by too slow a task"`},
	{Info: true, Name: "PatternsAdded", Reason: `(3.3+) "Total number of patterns added (acl/map entries)"`},
	{Info: true, Name: "PatternsFreed", Reason: `(3.3+) "Total number of patterns freed (acl/map entries)"`},
}

// IsStatCounter reports whether the `show stat` field name is a cumulative
// counter.
func IsStatCounter(name string) bool {
	_, ok := slices.BinarySearch(statCounters, name)
	return ok
}

// IsInfoCounter reports whether the `show info` field name is a cumulative
// counter.
func IsInfoCounter(name string) bool {
	_, ok := slices.BinarySearch(infoCounters, name)
	return ok
}

// StatCounters returns the `show stat` cumulative counters, sorted. The
// caller owns the slice.
func StatCounters() []string { return slices.Clone(statCounters) }

// InfoCounters returns the `show info` cumulative counters, sorted. The
// caller owns the slice.
func InfoCounters() []string { return slices.Clone(infoCounters) }

func sorted(names ...string) []string {
	slices.Sort(names)
	return slices.Compact(names)
}
