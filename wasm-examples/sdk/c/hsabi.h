/*
 * hsabi.h - C SDK for haproxystats WASM stages, ABI version 1 (docs/ABI.md).
 *
 * A single header. It decodes the input buffer the host writes (accessors
 * over the columns, used in place, nothing copied), builds the output
 * buffer (hs_out_*), and defines the exports the host calls, through one
 * macro at file scope:
 *
 *     #include "../sdk/c/hsabi.h"
 *
 *     static int process(const hs_snapshot *s, hs_out *out) {
 *         hs_column scur = hs_snap_column(s, "scur");
 *         for (uint32_t i = 0; i < s->rows; i++)
 *             if (s->kind[i] == HS_KIND_FRONTEND)
 *                 hs_out_frontend(out, hs_snap_str(s, s->px[i]), "scur_copy",
 *                                 hs_col_value(&scur, i));
 *         return 0;
 *     }
 *
 *     HSABI_STAGE("scur", process)
 *
 * built as a WASI reactor with Debian's clang, lld and wasi-libc:
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor \
 *         -nodefaultlibs -Wl,--strip-debug -o stage.wasm stage.c -lc
 *
 * (-nodefaultlibs -lc: Debian's clang 14 otherwise links compiler-rt's
 * libclang_rt.builtins-wasm32.a, which is in another package,
 * libclang-rt-14-dev-wasm32; with it installed, both flags may go.
 * -Wl,--strip-debug: Debian's libc.a carries DWARF, most of the module
 * otherwise.)
 *
 * EXPORTS. HSABI_STAGE(columns, process) or HSABI_STAGE_WITH_INIT(columns,
 * init, process) defines every export of docs/ABI.md section 1:
 *
 *     hs_abi_version  () -> i32           returns HSABI_VERSION (1)
 *     hs_alloc        (size) -> ptr       one reused, 8-byte aligned input buffer
 *     hs_process      (ptr, len) -> i64   decodes, calls process, returns the output
 *     hs_columns      () -> i64           the columns string, e.g. "qcur qmax"
 *     hs_init         (ptr, len) -> i32   only with HSABI_STAGE_WITH_INIT
 *
 * and wasi-libc's crt1-reactor.o adds _initialize (C constructors), which
 * the host calls first. Use HSABI_STAGE_WITH_INIT only when the stage takes
 * parameters: the host refuses to start a stage whose configuration section
 * has parameters when the module does not export hs_init, which catches
 * options given to the wrong module.
 *
 * The functions the stage defines:
 *
 *     int process(const hs_snapshot *s, hs_out *out);
 *         Called once per snapshot, in timestamp order, never concurrently.
 *         Returns 0; anything else (or hs_out_error) fails the call: the
 *         host discards every metric of the call, logs the message, counts
 *         the error and re-creates the instance (state lost).
 *     int init(const hs_params *params);
 *         Called each time the host creates an instance, with the options
 *         of the stage's section other than module, timeout, memory-limit
 *         and max-metrics (lower-case names, sorted). Returns 0 to start;
 *         return hs_init_error("why") to refuse: the reason is written to
 *         stderr, which the host quotes in its start-up error.
 *
 * STATE. Globals and the heap persist from one snapshot to the next (that
 * is how a stage computes deltas) until the host re-creates the instance:
 * after a failed call, after the string table outgrew its bounds, and on
 * restart. The module then starts from its initial state.
 *
 * INPUT (docs/ABI.md section 3). hs_snapshot holds the header fields and
 * pointers into the input buffer: the per-row arrays (proc, px, sv, kind),
 * the columns the stage asked for (hs_snap_column, hs_snap_column_at) with
 * their null bitmaps, the `show info` rows (hs_info_*). Everything points
 * into the input buffer, which the next call overwrites: copy what must
 * outlive the call.
 *
 * STRINGS. Names are string ids (uint32_t): socket, `show info` key,
 * proxy, server and column names. hs_snap_str(s, id) gives the bytes
 * (hs_str, not NUL-terminated). Ids are dense (0 .. s->nstrings-1) and
 * stable for the life of the instance: the same name has the same id in
 * every snapshot, so state kept between snapshots can be an array indexed
 * by id, and two rows have the same proxy exactly when their px ids are
 * equal. Proxy and server names are already in metric form ('.' replaced
 * by '_'). To group by a pair (proxy, server), use hs_index with
 * hs_pair(px, sv).
 *
 * OUTPUT (docs/ABI.md section 5). hs_out_daemon, _process, _frontend,
 * _backend, _server, _aggr_server and _path add one record; hs_out_emit is
 * the general form. The host builds the path (prefix, '.' -> '_' in object,
 * server and name except for free paths, group rules) and rejects the whole
 * output when a name is empty or holds a space, a control character or
 * invalid UTF-8. NaN and infinite values are counted by the host but not
 * sent.
 *
 * LOGGING. hs_log(level, msg) calls the host import hs.log: the line is
 * logged with the stage name and snapshot. The host keeps at most 20 lines
 * per call, cut at 1 KiB: log what matters, not every row.
 *
 * SPEED. With a timeout (the default) the host checks for cancellation at
 * every iteration of every loop of the module, some 30 ns each: on a
 * snapshot of 90,000 rows a plain loop over the rows costs 3 ms in checks
 * alone. Unroll the row loop (`#pragma clang loop unroll_count(4)` before
 * it) and group rows by string id (arrays indexed by id, or hs_index).
 *
 * MEMORY. The SDK allocates with malloc, realloc and free (wasi-libc);
 * define HSABI_MALLOC, HSABI_REALLOC and HSABI_FREE before including this
 * header to use another allocator (a freestanding build). A failed
 * allocation fails the call cleanly ("out of memory"). The host's
 * memory-limit (default 64 MiB) bounds the whole linear memory, input
 * buffer included.
 *
 * The header may be included in several files of one module; HSABI_STAGE
 * must appear in exactly one.
 */
#ifndef HSABI_H
#define HSABI_H

#include <stddef.h>
#include <stdint.h>

#if !defined(HSABI_MALLOC) || !defined(HSABI_REALLOC) || !defined(HSABI_FREE)
#include <stdlib.h>
#define HSABI_MALLOC malloc
#define HSABI_REALLOC realloc
#define HSABI_FREE free
#endif

#define HSABI_VERSION 1

#define HSABI_INPUT_MAGIC 0x31495348u  /* "HSI1" */
#define HSABI_OUTPUT_MAGIC 0x314F5348u /* "HSO1" */
#define HSABI_INPUT_HEADER 64u
#define HSABI_OUTPUT_HEADER 16u
#define HSABI_MAX_ERROR 512u /* bytes of an error message the host keeps */

#if defined(__wasm__)
#define HSABI_EXPORT(name) __attribute__((export_name(name), visibility("default")))
#define HSABI_IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))
#else
#define HSABI_EXPORT(name)
#define HSABI_IMPORT(mod, name)
#endif

#define HSABI_UNUSED __attribute__((unused))

/* Row kinds (the kind array of the statistics section). */
enum {
	HS_KIND_OTHER = 0,    /* listeners and rows without a usable type */
	HS_KIND_FRONTEND = 1, /* svname FRONTEND */
	HS_KIND_BACKEND = 2,  /* svname BACKEND */
	HS_KIND_SERVER = 3    /* type 2 */
};

/* Output scopes. P is `namespace[.host].haproxy`, G.g a group namespace
 * and group when the [*-groups] rules apply. */
typedef enum {
	HS_SCOPE_DAEMON = 1,      /* P.daemon.<name> */
	HS_SCOPE_PROCESS = 2,     /* P.daemon.process.<object>.<name> */
	HS_SCOPE_FRONTEND = 3,    /* P[.G.g].frontend.<object>.<name> */
	HS_SCOPE_BACKEND = 4,     /* P[.G.g].backend.<object>.<name> */
	HS_SCOPE_SERVER = 5,      /* P[.G.g].backend.<object>.server.<server>.<name> */
	HS_SCOPE_AGGR_SERVER = 6, /* P[.G.g].server.<server>.<name> */
	HS_SCOPE_PATH = 7         /* P.<name>, name a dotted path kept as is */
} hs_scope;

/* Log levels of hs.log. */
enum { HS_LOG_DEBUG = 0, HS_LOG_INFO = 1, HS_LOG_WARN = 2, HS_LOG_ERROR = 3 };

/* hs_str is a string that is not NUL-terminated: a pointer and a length. */
typedef struct {
	const char *ptr;
	uint32_t len;
} hs_str;

/* One `show stat` column: values[i] is row i's value, 0 where the cell is
 * null (bit i%64 of nulls[i/64] set: empty, missing in that file, not a
 * number). values is NULL when the snapshot has no such column. */
typedef struct {
	uint32_t name; /* string id of the column name */
	const double *values;
	const uint64_t *nulls;
	uint32_t rows;
} hs_column;

/* A decoded input buffer. Every pointer points into the input buffer. */
typedef struct {
	const uint8_t *buf; /* the input buffer */
	uint32_t len;       /* its length */
	int64_t time;       /* snapshot name as seconds since the epoch, -1 if not a number */
	hs_str name;        /* snapshot name, the timestamp of every metric */
	int same_rows;      /* 1: the rows (procs, kinds, px, sv) are those of the previous
	                       input of this instance, so what was derived from them holds
	                       (docs/ABI.md 3.1); only values may differ */
	uint32_t nstrings;  /* number of strings; ids are 0 .. nstrings-1 */
	const uint32_t *strtab; /* [2*nstrings] offset and length of each string */

	/* Daemon section (`show info`): info_rows processes, info_nkeys keys. */
	uint32_t info_rows;
	uint32_t info_nkeys;
	const uint32_t *info_procs; /* [info_rows] string id of each process (socket name) */
	const uint32_t *info_keys;  /* [info_nkeys] string id of each key */
	const uint8_t *info_data;   /* per key: values, then null bitmap */

	/* Statistics section (`show stat`, every process's rows). */
	uint32_t nprocs;       /* processes that sent rows */
	const uint32_t *procs; /* [nprocs] string id of each process (socket name) */
	uint32_t rows;         /* statistics rows */
	const uint32_t *proc;  /* [rows] index into procs */
	const uint32_t *px;    /* [rows] string id of pxname ('.' -> '_') */
	const uint32_t *sv;    /* [rows] string id of svname ('.' -> '_') */
	const uint8_t *kind;   /* [rows] HS_KIND_* */
	uint32_t ncols;        /* columns present, in the order of the column list */
	const uint8_t *cols;   /* first column block */
} hs_snapshot;

/* The parameters handed to init: count entries of key and value. */
typedef struct {
	const uint8_t *buf;
	uint32_t len;
	uint32_t count;
} hs_params;

/* Iterates over parameters: hs_params_iter it = hs_params_begin(p);
 * while (hs_params_next(&it, &key, &value)) ... */
typedef struct {
	const hs_params *params;
	uint32_t off, index;
} hs_params_iter;

/* The output being built for one call. */
typedef struct {
	uint8_t *buf;
	uint32_t len, cap;
	uint32_t count;
	int failed;
	uint32_t errlen;
	char err[HSABI_MAX_ERROR];
} hs_out;

/* ---- strings -------------------------------------------------------- */

static inline size_t hsabi__strlen(const char *s) {
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* hs_cstr makes an hs_str of a NUL-terminated string. */
static inline hs_str hs_cstr(const char *s) {
	hs_str r = {s, (uint32_t)hsabi__strlen(s)};
	return r;
}

/* hs_str_eq reports whether a holds exactly the NUL-terminated string b. */
static inline int hs_str_eq(hs_str a, const char *b) {
	uint32_t i = 0;
	for (; i < a.len; i++)
		if (b[i] == 0 || a.ptr[i] != b[i])
			return 0;
	return b[i] == 0;
}

/* hs_str_to_i64 parses a decimal integer (optional sign, digits only);
 * it returns 1 and sets *v, or 0 when a is not such a number. */
static inline int hs_str_to_i64(hs_str a, int64_t *v) {
	uint32_t i = 0;
	int neg = 0;
	uint64_t n = 0;
	if (a.len > 0 && (a.ptr[0] == '-' || a.ptr[0] == '+')) {
		neg = a.ptr[0] == '-';
		i = 1;
	}
	if (i == a.len || a.len - i > 18)
		return 0;
	for (; i < a.len; i++) {
		if (a.ptr[i] < '0' || a.ptr[i] > '9')
			return 0;
		n = n * 10 + (uint64_t)(a.ptr[i] - '0');
	}
	*v = neg ? -(int64_t)n : (int64_t)n;
	return 1;
}

/* hs_snap_str returns the string of an id (empty for an id out of range). */
static inline hs_str hs_snap_str(const hs_snapshot *s, uint32_t id) {
	hs_str r = {"", 0};
	if (id < s->nstrings) {
		r.ptr = (const char *)s->buf + s->strtab[2 * id];
		r.len = s->strtab[2 * id + 1];
	}
	return r;
}

/* hs_snap_find returns the id of a string, or UINT32_MAX when this
 * snapshot's table does not hold it (a linear search: call it once per
 * snapshot, not per row). */
static inline uint32_t hs_snap_find(const hs_snapshot *s, const char *str) {
	for (uint32_t id = 0; id < s->nstrings; id++)
		if (hs_str_eq(hs_snap_str(s, id), str))
			return id;
	return UINT32_MAX;
}

/* ---- columns -------------------------------------------------------- */

static inline uint32_t hsabi__words(uint32_t rows) { return (rows + 63) / 64; }

static inline int hs_isnull(const uint64_t *nulls, uint32_t i) { return (int)((nulls[i >> 6] >> (i & 63)) & 1); }

/* hs_snap_column_at returns column c (0 <= c < ncols). */
static inline hs_column hs_snap_column_at(const hs_snapshot *s, uint32_t c) {
	uint64_t size = 8 + 8 * (uint64_t)s->rows + 8 * (uint64_t)hsabi__words(s->rows);
	const uint8_t *b = s->cols + size * c;
	hs_column col;
	col.name = *(const uint32_t *)b;
	col.values = (const double *)(b + 8);
	col.nulls = (const uint64_t *)(b + 8 + 8 * (uint64_t)s->rows);
	col.rows = s->rows;
	return col;
}

/* hs_snap_column returns the named column; its values are NULL when the
 * snapshot does not have it (no file had it, or the stage did not list
 * it in its columns). */
static inline hs_column hs_snap_column(const hs_snapshot *s, const char *name) {
	for (uint32_t c = 0; c < s->ncols; c++) {
		hs_column col = hs_snap_column_at(s, c);
		if (hs_str_eq(hs_snap_str(s, col.name), name))
			return col;
	}
	hs_column none = {UINT32_MAX, NULL, NULL, 0};
	return none;
}

/* hs_col_get sets *v to row i's value and returns 1, or returns 0 when
 * the cell is null or the column absent. */
static inline int hs_col_get(const hs_column *c, uint32_t i, double *v) {
	if (c->values == NULL || i >= c->rows || hs_isnull(c->nulls, i))
		return 0;
	*v = c->values[i];
	return 1;
}

/* hs_col_value returns row i's value, 0 for a null cell or an absent
 * column. */
static inline double hs_col_value(const hs_column *c, uint32_t i) {
	return c->values != NULL && i < c->rows ? c->values[i] : 0;
}

/* ---- `show info` ---------------------------------------------------- */

/* hs_info_key returns the index of a `show info` key, or -1. */
static inline int hs_info_key(const hs_snapshot *s, const char *key) {
	for (uint32_t k = 0; k < s->info_nkeys; k++)
		if (hs_str_eq(hs_snap_str(s, s->info_keys[k]), key))
			return (int)k;
	return -1;
}

/* hs_info_get sets *v to key k's value for process row r and returns 1,
 * or returns 0 when that process did not report the key. */
static inline int hs_info_get(const hs_snapshot *s, int k, uint32_t r, int64_t *v) {
	if (k < 0 || (uint32_t)k >= s->info_nkeys || r >= s->info_rows)
		return 0;
	const uint8_t *b = s->info_data + (uint64_t)k * (8 * (uint64_t)s->info_rows + 8 * hsabi__words(s->info_rows));
	const uint64_t *nulls = (const uint64_t *)(b + 8 * (uint64_t)s->info_rows);
	if (hs_isnull(nulls, r))
		return 0;
	*v = ((const int64_t *)b)[r];
	return 1;
}

/* ---- index: dense slots for 64-bit keys ----------------------------- */

/* hs_index numbers the distinct keys it is shown 0, 1, 2, ... in order of
 * first appearance (open addressing, no allocation per look-up), to group
 * rows by object: hs_index_slot(&ix, hs_pair(s->px[i], s->sv[i]), &added).
 * Zero-initialise it; hs_index_reset empties it and keeps its memory. */
typedef struct {
	uint64_t *keys; /* key+1 per bucket, 0 = empty */
	int32_t *slots;
	uint32_t size; /* buckets, a power of two */
	uint32_t n;
} hs_index;

static inline uint64_t hs_pair(uint32_t a, uint32_t b) { return (uint64_t)a << 32 | b; }

static inline void hs_index_reset(hs_index *x) {
	for (uint32_t i = 0; i < x->size; i++)
		x->keys[i] = 0;
	x->n = 0;
}

static inline void hs_index_free(hs_index *x) {
	HSABI_FREE(x->keys);
	HSABI_FREE(x->slots);
	x->keys = NULL;
	x->slots = NULL;
	x->size = x->n = 0;
}

static inline uint32_t hsabi__bucket(uint64_t key, uint32_t size) {
	return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (size - 1);
}

static inline int hsabi__index_grow(hs_index *x) {
	uint32_t size = x->size ? 2 * x->size : 64;
	uint64_t *keys = (uint64_t *)HSABI_MALLOC(sizeof(uint64_t) * size);
	int32_t *slots = (int32_t *)HSABI_MALLOC(sizeof(int32_t) * size);
	if (keys == NULL || slots == NULL) {
		HSABI_FREE(keys);
		HSABI_FREE(slots);
		return 0;
	}
	for (uint32_t i = 0; i < size; i++)
		keys[i] = 0;
	for (uint32_t i = 0; i < x->size; i++) {
		if (x->keys[i] == 0)
			continue;
		uint32_t h = hsabi__bucket(x->keys[i] - 1, size);
		while (keys[h] != 0)
			h = (h + 1) & (size - 1);
		keys[h] = x->keys[i];
		slots[h] = x->slots[i];
	}
	HSABI_FREE(x->keys);
	HSABI_FREE(x->slots);
	x->keys = keys;
	x->slots = slots;
	x->size = size;
	return 1;
}

/* hs_index_slot returns the slot of key (key < UINT64_MAX), adding it with
 * the next free slot (and *added = 1) when it is new; -1 when out of
 * memory. added may be NULL. */
static inline int32_t hs_index_slot(hs_index *x, uint64_t key, int *added) {
	if (added)
		*added = 0;
	if (2 * (x->n + 1) > x->size && !hsabi__index_grow(x))
		return -1;
	for (uint32_t h = hsabi__bucket(key, x->size);; h = (h + 1) & (x->size - 1)) {
		if (x->keys[h] == key + 1)
			return x->slots[h];
		if (x->keys[h] == 0) {
			x->keys[h] = key + 1;
			x->slots[h] = (int32_t)x->n++;
			if (added)
				*added = 1;
			return x->slots[h];
		}
	}
}

/* hs_index_lookup returns the slot of key, or -1. */
static inline int32_t hs_index_lookup(const hs_index *x, uint64_t key) {
	if (x->size == 0)
		return -1;
	for (uint32_t h = hsabi__bucket(key, x->size);; h = (h + 1) & (x->size - 1)) {
		if (x->keys[h] == key + 1)
			return x->slots[h];
		if (x->keys[h] == 0)
			return -1;
	}
}

/* ---- logging -------------------------------------------------------- */

#if defined(__wasm__)
HSABI_IMPORT("hs", "log") void hsabi__host_log(int32_t level, const char *ptr, uint32_t len);
HSABI_IMPORT("wasi_snapshot_preview1", "fd_write")
int32_t hsabi__fd_write(int32_t fd, const void *iovs, uint32_t iovs_len, uint32_t *nwritten);
#else
static inline void hsabi__host_log(int32_t level, const char *ptr, uint32_t len) {
	(void)level, (void)ptr, (void)len;
}
static inline int32_t hsabi__fd_write(int32_t fd, const void *iovs, uint32_t n, uint32_t *w) {
	(void)fd, (void)iovs, (void)n, (void)w;
	return 0;
}
#endif

/* hs_log logs a NUL-terminated message at level HS_LOG_*. */
static inline void hs_log(int level, const char *msg) {
	hs_str m = hs_cstr(msg);
	if (m.len > 0)
		hsabi__host_log(level, m.ptr, m.len);
}

/* hs_log_str logs an hs_str. */
static inline void hs_log_str(int level, hs_str msg) {
	if (msg.len > 0)
		hsabi__host_log(level, msg.ptr, msg.len);
}

/* hs_init_error logs msg at error level and writes it to stderr (the host
 * quotes it in the start-up error); it returns 1, so that an init function
 * can `return hs_init_error("...")`. */
static inline int hs_init_error(const char *msg) {
	hs_str m = hs_cstr(msg);
	struct {
		const void *ptr;
		uint32_t len;
	} iov[2] = {{m.ptr, m.len}, {"\n", 1}};
	uint32_t written;
	hs_log(HS_LOG_ERROR, msg);
	hsabi__fd_write(2, iov, 2, &written);
	return 1;
}

/* ---- output --------------------------------------------------------- */

static inline void hsabi__put32(uint8_t *b, uint32_t v) {
	b[0] = (uint8_t)v, b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)(v >> 16), b[3] = (uint8_t)(v >> 24);
}

/* hs_out_error makes the call fail with msg (the first error wins; the
 * host keeps HSABI_MAX_ERROR bytes, so a longer message is cut there, at
 * the start of a UTF-8 sequence). */
static inline void hs_out_error(hs_out *o, const char *msg) {
	if (o->failed)
		return;
	o->failed = 1;
	uint32_t n = 0;
	while (msg[n] && n < HSABI_MAX_ERROR) {
		o->err[n] = msg[n];
		n++;
	}
	if (msg[n])
		while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
			n--;
	o->errlen = n;
}

static inline int hsabi__out_reserve(hs_out *o, uint32_t more) {
	if (more <= o->cap - o->len)
		return 1;
	uint64_t need = (uint64_t)o->len + more;
	uint64_t cap = o->cap ? o->cap : 4096;
	while (cap < need)
		cap *= 2;
	if (cap > 0x7fffffffu) {
		hs_out_error(o, "output buffer larger than 2 GiB");
		return 0;
	}
	uint8_t *b = (uint8_t *)HSABI_REALLOC(o->buf, (size_t)cap);
	if (b == NULL) {
		hs_out_error(o, "out of memory for the output buffer");
		return 0;
	}
	o->buf = b;
	o->cap = (uint32_t)cap;
	return 1;
}

/* hs_out_emit adds one metric. Fields a scope does not use must be empty
 * ({NULL, 0} or hs_cstr("")); names longer than 65535 bytes fail the
 * call. */
static inline void hs_out_emit(hs_out *o, hs_scope scope, hs_str object, hs_str server, hs_str name, double value) {
	if (o->failed)
		return;
	if (object.len > 0xffff || server.len > 0xffff || name.len > 0xffff) {
		hs_out_error(o, "metric name longer than 65535 bytes");
		return;
	}
	if (!hsabi__out_reserve(o, 16 + object.len + server.len + name.len))
		return;
	uint8_t *h = o->buf + o->len;
	h[0] = (uint8_t)scope;
	h[1] = 0;
	h[2] = (uint8_t)object.len, h[3] = (uint8_t)(object.len >> 8);
	h[4] = (uint8_t)server.len, h[5] = (uint8_t)(server.len >> 8);
	h[6] = (uint8_t)name.len, h[7] = (uint8_t)(name.len >> 8);
	__builtin_memcpy(h + 8, &value, 8); /* WebAssembly is little-endian */
	uint8_t *p = h + 16;
	if (object.len)
		__builtin_memcpy(p, object.ptr, object.len);
	p += object.len;
	if (server.len)
		__builtin_memcpy(p, server.ptr, server.len);
	p += server.len;
	__builtin_memcpy(p, name.ptr, name.len);
	o->len += 16 + object.len + server.len + name.len;
	o->count++;
}

static const hs_str hsabi__none = {"", 0};

/* P.daemon.<name> */
static inline void hs_out_daemon(hs_out *o, const char *name, double v) {
	hs_out_emit(o, HS_SCOPE_DAEMON, hsabi__none, hsabi__none, hs_cstr(name), v);
}

/* P.daemon.process.<proc>.<name> */
static inline void hs_out_process(hs_out *o, hs_str proc, const char *name, double v) {
	hs_out_emit(o, HS_SCOPE_PROCESS, proc, hsabi__none, hs_cstr(name), v);
}

/* P.frontend.<frontend>.<name> */
static inline void hs_out_frontend(hs_out *o, hs_str frontend, const char *name, double v) {
	hs_out_emit(o, HS_SCOPE_FRONTEND, frontend, hsabi__none, hs_cstr(name), v);
}

/* P.backend.<backend>.<name> */
static inline void hs_out_backend(hs_out *o, hs_str backend, const char *name, double v) {
	hs_out_emit(o, HS_SCOPE_BACKEND, backend, hsabi__none, hs_cstr(name), v);
}

/* P.backend.<backend>.server.<server>.<name> */
static inline void hs_out_server(hs_out *o, hs_str backend, hs_str server, const char *name, double v) {
	hs_out_emit(o, HS_SCOPE_SERVER, backend, server, hs_cstr(name), v);
}

/* P.server.<server>.<name> */
static inline void hs_out_aggr_server(hs_out *o, hs_str server, const char *name, double v) {
	hs_out_emit(o, HS_SCOPE_AGGR_SERVER, hsabi__none, server, hs_cstr(name), v);
}

/* P.<path>: a dotted path, kept as is (no empty segment). */
static inline void hs_out_path(hs_out *o, const char *path, double v) {
	hs_out_emit(o, HS_SCOPE_PATH, hsabi__none, hsabi__none, hs_cstr(path), v);
}

/* ---- parameters ----------------------------------------------------- */

static inline hs_params_iter hs_params_begin(const hs_params *p) {
	hs_params_iter it = {p, 4, 0};
	return it;
}

/* hs_params_next sets *key and *value to the next parameter and returns
 * 1, or returns 0 at the end. They point into the input buffer: copy what
 * must be kept. */
static inline int hs_params_next(hs_params_iter *it, hs_str *key, hs_str *value) {
	const hs_params *p = it->params;
	hs_str *out[2] = {key, value};
	if (it->index >= p->count)
		return 0;
	for (int i = 0; i < 2; i++) {
		if (p->len - it->off < 4)
			return 0;
		uint32_t n;
		__builtin_memcpy(&n, p->buf + it->off, 4);
		it->off += 4;
		if (n > p->len - it->off)
			return 0;
		out[i]->ptr = (const char *)p->buf + it->off;
		out[i]->len = n;
		it->off += n;
	}
	it->index++;
	return 1;
}

/* hs_params_get finds a parameter by name: 1 and *value, or 0. */
static inline int hs_params_get(const hs_params *p, const char *name, hs_str *value) {
	hs_params_iter it = hs_params_begin(p);
	hs_str k, v;
	while (hs_params_next(&it, &k, &v)) {
		if (hs_str_eq(k, name)) {
			*value = v;
			return 1;
		}
	}
	return 0;
}

/* ---- the exports' implementation ------------------------------------ */

static inline uint32_t hsabi__get32(const uint8_t *b, uint32_t off) {
	uint32_t v;
	__builtin_memcpy(&v, b + off, 4);
	return v;
}

static inline uint64_t hsabi__align8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

/* hs_decode decodes the input buffer b (len bytes, 8-byte aligned) into
 * s. It returns NULL, or a message saying what is malformed. The SDK's
 * hs_process calls it; a stage has no need to. */
static inline const char *hs_decode(hs_snapshot *s, const uint8_t *b, uint32_t len) {
	if (len < HSABI_INPUT_HEADER)
		return "input shorter than its header";
	if (((uintptr_t)b & 7) != 0)
		return "input not 8-byte aligned";
	if (hsabi__get32(b, 0) != HSABI_INPUT_MAGIC)
		return "input magic is not HSI1";
	if (hsabi__get32(b, 4) != HSABI_VERSION)
		return "input of another ABI version";
	if (hsabi__get32(b, 8) != len)
		return "input length does not match its header";
	s->buf = b;
	s->len = len;
	s->nstrings = hsabi__get32(b, 12);
	__builtin_memcpy(&s->time, b + 16, 8);
	s->same_rows = (hsabi__get32(b, 60) & 1) != 0;
	s->name.len = hsabi__get32(b, 24);
	s->name.ptr = (const char *)b + HSABI_INPUT_HEADER;
	s->info_rows = hsabi__get32(b, 28);
	s->info_nkeys = hsabi__get32(b, 32);
	s->nprocs = hsabi__get32(b, 36);
	s->rows = hsabi__get32(b, 40);
	s->ncols = hsabi__get32(b, 44);
	uint32_t str_off = hsabi__get32(b, 48), info_off = hsabi__get32(b, 52), stat_off = hsabi__get32(b, 56);
	if (s->name.len > len - HSABI_INPUT_HEADER)
		return "snapshot name outside the input";
	if ((str_off | info_off | stat_off) & 7)
		return "section offset not a multiple of 8";
	if (str_off > len || 8 * (uint64_t)s->nstrings > len - str_off)
		return "string table outside the input";
	/* Every string inside the buffer, so that hs_snap_str needs no check
	 * but the id. */
	const uint32_t *tab = (const uint32_t *)(b + str_off);
	s->strtab = tab;
	for (uint32_t i = 0; i < s->nstrings; i++)
		if (tab[2 * i] > len || tab[2 * i + 1] > len - tab[2 * i])
			return "string outside the input";

	uint64_t r = s->info_rows, iw = hsabi__words(s->info_rows);
	uint64_t need = hsabi__align8(4 * r) + hsabi__align8(4 * (uint64_t)s->info_nkeys) + s->info_nkeys * (8 * r + 8 * iw);
	if (info_off > len || need > len - info_off)
		return "daemon section outside the input";
	s->info_procs = (const uint32_t *)(b + info_off);
	s->info_keys = (const uint32_t *)(b + info_off + hsabi__align8(4 * r));
	s->info_data = b + info_off + hsabi__align8(4 * r) + hsabi__align8(4 * (uint64_t)s->info_nkeys);

	uint64_t n = s->rows, w = hsabi__words(s->rows), p = s->nprocs;
	need = hsabi__align8(4 * p) + 3 * hsabi__align8(4 * n) + hsabi__align8(n) + s->ncols * (8 + 8 * n + 8 * w);
	if (stat_off > len || need > len - stat_off)
		return "statistics section outside the input";
	uint64_t off = stat_off;
	s->procs = (const uint32_t *)(b + off);
	off += hsabi__align8(4 * p);
	s->proc = (const uint32_t *)(b + off);
	off += hsabi__align8(4 * n);
	s->px = (const uint32_t *)(b + off);
	off += hsabi__align8(4 * n);
	s->sv = (const uint32_t *)(b + off);
	off += hsabi__align8(4 * n);
	s->kind = b + off;
	off += hsabi__align8(n);
	s->cols = b + off;
	/* Row ids and process indexes are not checked row by row (a pass over
	 * every row): the host writes them correctly; hs_snap_str tolerates a
	 * wrong id. */
	return NULL;
}

static uint64_t *hsabi__in;     /* the input buffer handed out by hs_alloc */
static uint32_t hsabi__in_cap;  /* its size in bytes */
static hs_out hsabi__out;       /* the output of the last call */
static hs_snapshot hsabi__snap; /* the decoded input */
static uint8_t hsabi__errbuf[HSABI_OUTPUT_HEADER + HSABI_MAX_ERROR];

static HSABI_UNUSED int32_t hsabi__alloc(int32_t size) {
	if (size < 0)
		return 0;
	uint64_t want = hsabi__align8((uint64_t)(uint32_t)size);
	if (want == 0)
		want = 8;
	if (want > hsabi__in_cap) {
		/* Let the old buffer go first, then take some room to spare: the
		 * input grows a little from one snapshot to the next. */
		HSABI_FREE(hsabi__in);
		hsabi__in_cap = 0;
		uint64_t cap = hsabi__align8(want + want / 8 + 4096);
		if (cap > 0xffffffffu)
			cap = want;
		hsabi__in = (uint64_t *)HSABI_MALLOC((size_t)cap);
		if (hsabi__in == NULL)
			return 0;
		hsabi__in_cap = (uint32_t)cap;
	}
	return (int32_t)(uintptr_t)hsabi__in;
}

static inline int64_t hsabi__pack(const void *p, uint32_t len) {
	return (int64_t)((uint64_t)(uint32_t)(uintptr_t)p << 32 | len);
}

static inline const uint8_t *hsabi__input(int32_t ptr, int32_t len) {
	if (hsabi__in == NULL || (uint32_t)ptr != (uint32_t)(uintptr_t)hsabi__in || (uint32_t)len > hsabi__in_cap)
		return NULL;
	return (const uint8_t *)hsabi__in;
}

static HSABI_UNUSED int32_t hsabi__init(int32_t ptr, int32_t len, int (*init)(const hs_params *)) {
	const uint8_t *b = hsabi__input(ptr, len);
	if (b == NULL || len < 4)
		return hs_init_error("hsabi: parameters not in the buffer hs_alloc returned");
	hs_params p = {b, (uint32_t)len, hsabi__get32(b, 0)};
	/* Check the layout once, so that init may stop early. */
	hs_params_iter it = hs_params_begin(&p);
	hs_str k, v;
	while (hs_params_next(&it, &k, &v))
		;
	if (it.index != p.count)
		return hs_init_error("hsabi: malformed parameter buffer");
	return init(&p) == 0 ? 0 : 1;
}

static HSABI_UNUSED int64_t hsabi__process(int32_t ptr, int32_t len, int (*process)(const hs_snapshot *, hs_out *)) {
	hs_out *o = &hsabi__out;
	o->len = o->count = 0;
	o->failed = 0;
	o->errlen = 0;
	const uint8_t *b = hsabi__input(ptr, len);
	const char *err = b == NULL ? "hsabi: input not in the buffer hs_alloc returned"
				    : hs_decode(&hsabi__snap, b, (uint32_t)len);
	if (err != NULL)
		hs_out_error(o, err);
	else if (hsabi__out_reserve(o, HSABI_OUTPUT_HEADER)) {
		o->len = HSABI_OUTPUT_HEADER;
		if (process(&hsabi__snap, o) != 0)
			hs_out_error(o, "process failed");
	}
	if (o->failed) {
		hsabi__put32(hsabi__errbuf, HSABI_OUTPUT_MAGIC);
		hsabi__put32(hsabi__errbuf + 4, 1);
		hsabi__put32(hsabi__errbuf + 8, o->errlen);
		hsabi__put32(hsabi__errbuf + 12, 0);
		__builtin_memcpy(hsabi__errbuf + HSABI_OUTPUT_HEADER, o->err, o->errlen);
		return hsabi__pack(hsabi__errbuf, HSABI_OUTPUT_HEADER + o->errlen);
	}
	hsabi__put32(o->buf, HSABI_OUTPUT_MAGIC);
	hsabi__put32(o->buf + 4, 0);
	hsabi__put32(o->buf + 8, o->count);
	hsabi__put32(o->buf + 12, 0);
	return hsabi__pack(o->buf, o->len);
}

static HSABI_UNUSED int64_t hsabi__columns(const char *columns) {
	uint32_t n = (uint32_t)hsabi__strlen(columns);
	return n == 0 ? 0 : hsabi__pack(columns, n);
}

#define HSABI__COMMON_EXPORTS(columns, process)                                                  \
	HSABI_EXPORT("hs_abi_version") int32_t hs_abi_version(void) { return HSABI_VERSION; }    \
	HSABI_EXPORT("hs_alloc") int32_t hs_alloc(int32_t size) { return hsabi__alloc(size); }   \
	HSABI_EXPORT("hs_columns") int64_t hs_columns(void) { return hsabi__columns(columns); } \
	HSABI_EXPORT("hs_process") int64_t hs_process(int32_t ptr, int32_t len) {                \
		return hsabi__process(ptr, len, process);                                          \
	}

/* HSABI_STAGE(columns, process): the exports of a stage without
 * parameters. columns is a string literal of space-separated `show stat`
 * column names ("" for none). */
#define HSABI_STAGE(columns, process) HSABI__COMMON_EXPORTS(columns, process)

/* HSABI_STAGE_WITH_INIT(columns, init, process): the same, plus hs_init. */
#define HSABI_STAGE_WITH_INIT(columns, init, process)                                \
	HSABI__COMMON_EXPORTS(columns, process)                                      \
	HSABI_EXPORT("hs_init") int32_t hs_init(int32_t ptr, int32_t len) {          \
		return hsabi__init(ptr, len, init);                                  \
	}

#endif /* HSABI_H */
