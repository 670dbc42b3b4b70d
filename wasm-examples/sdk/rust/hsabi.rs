//! hsabi: the Rust SDK for haproxystats WASM stages, ABI version 1
//! (docs/ABI.md). One source file, no crates, `std` only: include it at
//! the root of the stage's crate and implement [`Stage`]:
//!
//! ```ignore
//! #[path = "../sdk/rust/hsabi.rs"]
//! mod hsabi;
//!
//! struct Copy;
//!
//! impl hsabi::Stage for Copy {
//!     const COLUMNS: &'static str = "scur";
//!     fn process(&mut self, snap: &hsabi::Snapshot, out: &mut hsabi::Out) -> Result<(), String> {
//!         let scur = snap.column("scur").ok_or("no scur column")?;
//!         for i in 0..snap.rows() {
//!             if snap.kind[i] == hsabi::KIND_FRONTEND {
//!                 out.frontend(snap.bytes(snap.px[i]), "scur_copy", scur.value(i));
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! hsabi_stage!(Copy, Copy);
//! ```
//!
//! built with Debian's rustc and its wasm32 standard library (`apt-get
//! install -y rustc libstd-rust-dev-wasm32`), no cargo:
//!
//! ```text
//! /usr/bin/rustc --target wasm32-unknown-unknown --crate-type cdylib -O -C panic=abort \
//!     -C strip=debuginfo -C target-feature=+bulk-memory --edition 2021 -o stage.wasm stage.rs
//! ```
//!
//! (`-C strip=debuginfo`: Debian's wasm32 std carries DWARF; without it
//! a 110 KB module is 5 MB. `+bulk-memory`: a copy is one `memory.copy`
//! instead of a loop, see Speed. `/usr/bin/rustc`: a rustup `rustc`
//! earlier in PATH usually has no wasm32 std.)
//!
//! # Exports
//!
//! `hsabi_stage!(Type, constructor)` defines the exports of docs/ABI.md
//! section 1: `hs_abi_version`, `hs_alloc`, `hs_columns` (from
//! `Stage::COLUMNS`) and `hs_process`; `hsabi_stage_with_init!` adds
//! `hs_init`, which calls `Stage::init`. Use the latter only when the stage
//! takes parameters: the host refuses to start a stage whose section has
//! parameters when the module has no `hs_init`, which catches options given
//! to the wrong module. The constructor expression runs at the first call
//! into a new instance. The module must be a `cdylib` at the crate root
//! named `hsabi` (the macros refer to `crate::hsabi`).
//!
//! # Lifecycle and state
//!
//! The host creates an instance, calls `init` with the options of the
//! stage's section (other than module, timeout, memory-limit and
//! max-metrics; lower-case names, sorted), then `process` once per
//! snapshot, in timestamp order, never concurrently. The stage value keeps
//! its fields from one snapshot to the next: that is how a stage computes
//! deltas. When a call fails (an `Err`, a panic, a timeout, running out of
//! memory) the host discards the instance and creates a new one for the
//! next snapshot: the state starts again from the constructor, as it does
//! when the daemon restarts.
//!
//! A panic aborts (`-C panic=abort`, a trap): the SDK's panic hook first
//! writes the message to stderr, which the host quotes in its error, and to
//! the host log.
//!
//! # Data
//!
//! A [`Snapshot`] borrows the input buffer, which the next call overwrites:
//! copy what must outlive the call. Names are string ids (`u32`): socket,
//! `show info` key, proxy, server and column names; `Snapshot::bytes(id)`
//! gives the name. Ids are dense (`0..snap.strings()`) and stable for the
//! life of the instance, so state kept between snapshots can be a `Vec`
//! indexed by id, and two rows have the same proxy exactly when their `px`
//! ids are equal. Proxy and server names are in metric form ('.' already
//! replaced by '_').
//!
//! # Output
//!
//! [`Out`] builds the output buffer. The host builds the path (prefix, '.'
//! -> '_' in object, server and name except for free paths, group rules)
//! and rejects the whole output of a call when a name is empty or holds a
//! space, a control character or invalid UTF-8. NaN and infinite values
//! are counted by the host but not sent.
//!
//! # Logging
//!
//! [`log`] calls the host import `hs.log`: the line is logged with the
//! stage name and snapshot. The host keeps at most 20 lines per call, cut
//! at 1 KiB: log what matters, not every row.
//!
//! # Speed
//!
//! With a `timeout` (the default) the host checks for cancellation at
//! every iteration of every loop of the module, some 30 ns each: on a
//! snapshot of 90,000 rows a plain `for i in 0..snap.rows()` costs 3 ms in
//! checks alone. Loop over the rows with [`for_each_row`] (four rows per
//! iteration), group rows in a `Vec` indexed by string id rather than a
//! `HashMap`, and build with `+bulk-memory`.
#![allow(dead_code)]

/// The ABI version this SDK implements.
pub const VERSION: i32 = 1;

const INPUT_MAGIC: u32 = 0x3149_5348; // "HSI1"
const OUTPUT_MAGIC: u32 = 0x314F_5348; // "HSO1"
const INPUT_HEADER: usize = 64;
const OUTPUT_HEADER: usize = 16;
const MAX_ERROR: usize = 512;

/// Row kinds (`Snapshot::kind`).
pub const KIND_OTHER: u8 = 0; // listeners and rows without a usable type
pub const KIND_FRONTEND: u8 = 1; // svname FRONTEND
pub const KIND_BACKEND: u8 = 2; // svname BACKEND
pub const KIND_SERVER: u8 = 3; // type 2

/// Output scopes. P is `namespace[.host].haproxy`, G.g a group namespace
/// and group when the `[*-groups]` rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Scope {
    Daemon = 1,     // P.daemon.<name>
    Process = 2,    // P.daemon.process.<object>.<name>
    Frontend = 3,   // P[.G.g].frontend.<object>.<name>
    Backend = 4,    // P[.G.g].backend.<object>.<name>
    Server = 5,     // P[.G.g].backend.<object>.server.<server>.<name>
    AggrServer = 6, // P[.G.g].server.<server>.<name>
    Path = 7,       // P.<name>, name a dotted path kept as is
}

/// Log levels of `hs.log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

// ---- input ------------------------------------------------------------

/// One `show stat` column over all rows.
#[derive(Clone, Copy)]
pub struct Column<'a> {
    /// String id of the column name.
    pub name: u32,
    /// One value per row, 0 where the cell is null.
    pub values: &'a [f64],
    /// Null bitmap: bit i%64 of word i/64 is set when row i's cell was
    /// empty, missing in that file, or not a number.
    pub nulls: &'a [u64],
}

impl<'a> Column<'a> {
    /// Reports whether row i's cell is null.
    pub fn is_null(&self, i: usize) -> bool {
        self.nulls[i >> 6] >> (i & 63) & 1 != 0
    }

    /// Row i's value, None when the cell is null.
    pub fn get(&self, i: usize) -> Option<f64> {
        if i >= self.values.len() || self.is_null(i) {
            None
        } else {
            Some(self.values[i])
        }
    }

    /// Row i's value, 0 when the cell is null.
    pub fn value(&self, i: usize) -> f64 {
        self.values[i]
    }
}

/// A decoded input buffer; every slice borrows it.
pub struct Snapshot<'a> {
    buf: &'a [u8],
    strtab: &'a [u32],
    /// Snapshot name as seconds since the epoch, -1 when it is not a number.
    pub time: i64,
    /// Snapshot name, the timestamp of every metric.
    pub name: &'a [u8],
    /// The rows (processes, kinds, proxy and server ids) are those of the
    /// previous input of this instance: what was derived from them alone
    /// still holds (docs/ABI.md 3.1); only values may differ.
    pub same_rows: bool,

    /// `show info`: string id of each process (socket name), one row each.
    pub info_procs: &'a [u32],
    /// `show info`: string id of each key with an integer value.
    pub info_keys: &'a [u32],
    info_data: &'a [u64],

    /// `show stat`: string id of each process that sent rows.
    pub procs: &'a [u32],
    /// Per row: index into `procs`.
    pub proc_: &'a [u32],
    /// Per row: string id of pxname ('.' replaced by '_').
    pub px: &'a [u32],
    /// Per row: string id of svname ('.' replaced by '_').
    pub sv: &'a [u32],
    /// Per row: `KIND_*`.
    pub kind: &'a [u8],
    /// The columns the stage asked for that the snapshot has, in the order
    /// of `Stage::COLUMNS`.
    pub columns: Vec<Column<'a>>,
}

impl<'a> Snapshot<'a> {
    /// Number of statistics rows.
    pub fn rows(&self) -> usize {
        self.kind.len()
    }

    /// Number of strings: ids are `0..strings()`.
    pub fn strings(&self) -> usize {
        self.strtab.len() / 2
    }

    /// The bytes of string `id` (empty for an id out of range).
    pub fn bytes(&self, id: u32) -> &'a [u8] {
        let i = id as usize;
        if i >= self.strings() {
            return &[];
        }
        let (off, n) = (self.strtab[2 * i] as usize, self.strtab[2 * i + 1] as usize);
        &self.buf[off..off + n]
    }

    /// String `id` as text, None when it is not valid UTF-8.
    pub fn str(&self, id: u32) -> Option<&'a str> {
        std::str::from_utf8(self.bytes(id)).ok()
    }

    /// The id of a string, None when this snapshot's table does not hold
    /// it. A linear search: once per snapshot, not per row.
    pub fn find(&self, s: &str) -> Option<u32> {
        (0..self.strings() as u32).find(|&id| self.bytes(id) == s.as_bytes())
    }

    /// The named column, None when the snapshot does not have it (no file
    /// had it, or the stage did not list it).
    pub fn column(&self, name: &str) -> Option<Column<'a>> {
        self.columns.iter().copied().find(|c| self.bytes(c.name) == name.as_bytes())
    }

    /// Index of a `show info` key, None when no process reported it.
    pub fn info_key(&self, key: &str) -> Option<usize> {
        self.info_keys.iter().position(|&id| self.bytes(id) == key.as_bytes())
    }

    /// Value of `show info` key k for process row r, None when that
    /// process did not report it.
    pub fn info_value(&self, k: usize, r: usize) -> Option<i64> {
        let rows = self.info_procs.len();
        if k >= self.info_keys.len() || r >= rows {
            return None;
        }
        let block = &self.info_data[k * (rows + words(rows))..];
        if block[rows + (r >> 6)] >> (r & 63) & 1 != 0 {
            None
        } else {
            Some(block[r] as i64)
        }
    }
}

/// Calls `f(i)` for every `i` in `0..n`, four at a time: the loop over the
/// rows of a stage, unrolled. With a `timeout` the host checks for
/// cancellation at every iteration of every loop of the module (wazero's
/// `WithCloseOnContextDone`, some 30 ns each), which is most of the cost of
/// a tight row loop; four rows per iteration divide it by four. `f` is
/// inlined: keep it small.
#[inline(always)]
pub fn for_each_row(n: usize, mut f: impl FnMut(usize)) {
    let mut i = 0;
    while i + 4 <= n {
        f(i);
        f(i + 1);
        f(i + 2);
        f(i + 3);
        i += 4;
    }
    while i < n {
        f(i);
        i += 1;
    }
}

fn words(rows: usize) -> usize {
    (rows + 63) / 64
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Reinterprets n items of T at byte offset off of b (bounds and alignment
/// checked by the caller through `need`).
fn slice_at<T>(b: &[u8], off: usize, n: usize) -> &[T] {
    if n == 0 {
        return &[];
    }
    debug_assert!(off + n * std::mem::size_of::<T>() <= b.len());
    unsafe { std::slice::from_raw_parts(b.as_ptr().add(off) as *const T, n) }
}

/// Decodes an input buffer (docs/ABI.md section 3). The buffer must be
/// 8-byte aligned; the SDK's `hs_process` calls this, a stage need not.
pub fn decode(b: &[u8]) -> Result<Snapshot<'_>, String> {
    let len = b.len();
    if len < INPUT_HEADER {
        return Err("input shorter than its header".into());
    }
    if b.as_ptr() as usize % 8 != 0 {
        return Err("input not 8-byte aligned".into());
    }
    if u32_at(b, 0) != INPUT_MAGIC {
        return Err("input magic is not HSI1".into());
    }
    if u32_at(b, 4) != VERSION as u32 {
        return Err(format!("input of ABI version {}, this SDK implements {}", u32_at(b, 4), VERSION));
    }
    if u32_at(b, 8) as usize != len {
        return Err("input length does not match its header".into());
    }
    let nstr = u32_at(b, 12) as usize;
    let time = i64::from_le_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]);
    let name_len = u32_at(b, 24) as usize;
    let (irows, ikeys) = (u32_at(b, 28) as usize, u32_at(b, 32) as usize);
    let (nprocs, rows, ncols) = (u32_at(b, 36) as usize, u32_at(b, 40) as usize, u32_at(b, 44) as usize);
    let (str_off, info_off, stat_off) = (u32_at(b, 48) as usize, u32_at(b, 52) as usize, u32_at(b, 56) as usize);
    if name_len > len - INPUT_HEADER {
        return Err("snapshot name outside the input".into());
    }
    if (str_off | info_off | stat_off) & 7 != 0 {
        return Err("section offset not a multiple of 8".into());
    }
    // Sizes in u64 arithmetic: a wrong count cannot wrap around.
    let fits = |off: usize, need: u64| off <= len && need <= (len - off) as u64;
    if !fits(str_off, 8 * nstr as u64) {
        return Err("string table outside the input".into());
    }
    let strtab: &[u32] = slice_at(b, str_off, 2 * nstr);
    for i in 0..nstr {
        let (off, n) = (strtab[2 * i] as usize, strtab[2 * i + 1] as usize);
        if off > len || n > len - off {
            return Err("string outside the input".into());
        }
    }

    let (r, iw) = (irows as u64, words(irows) as u64);
    let (a_procs, a_keys) = (align8(4 * irows), align8(4 * ikeys));
    let need = a_procs as u64 + a_keys as u64 + ikeys as u64 * (8 * r + 8 * iw);
    if !fits(info_off, need) {
        return Err("daemon section outside the input".into());
    }
    let info_procs = slice_at(b, info_off, irows);
    let info_keys = slice_at(b, info_off + a_procs, ikeys);
    let info_data = slice_at(b, info_off + a_procs + a_keys, ikeys * (irows + words(irows)));

    let (n, w) = (rows as u64, words(rows) as u64);
    let need = align8(4 * nprocs) as u64 + 3 * align8(4 * rows) as u64 + align8(rows) as u64 + ncols as u64 * (8 + 8 * n + 8 * w);
    if !fits(stat_off, need) {
        return Err("statistics section outside the input".into());
    }
    let mut off = stat_off;
    let procs = slice_at(b, off, nprocs);
    off += align8(4 * nprocs);
    let proc_ = slice_at(b, off, rows);
    off += align8(4 * rows);
    let px = slice_at(b, off, rows);
    off += align8(4 * rows);
    let sv = slice_at(b, off, rows);
    off += align8(4 * rows);
    let kind = &b[off..off + rows];
    off += align8(rows);
    let mut columns = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        let name = u32_at(b, off);
        off += 8;
        let values = slice_at(b, off, rows);
        off += 8 * rows;
        let nulls = slice_at(b, off, words(rows));
        off += 8 * words(rows);
        columns.push(Column { name, values, nulls });
    }
    // Row ids and process indexes are not checked row by row (a pass over
    // every row): the host writes them correctly; `bytes` tolerates a
    // wrong id, and indexing `procs` with a wrong one panics.
    Ok(Snapshot {
        buf: b,
        strtab,
        time,
        name: &b[INPUT_HEADER..INPUT_HEADER + name_len],
        same_rows: u32_at(b, 60) & 1 != 0,
        info_procs,
        info_keys,
        info_data,
        procs,
        proc_,
        px,
        sv,
        kind,
        columns,
    })
}

/// The parameters handed to `Stage::init`.
pub struct Params<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    /// Decodes the hs_init parameter buffer (docs/ABI.md section 4).
    pub fn decode(b: &'a [u8]) -> Result<Params<'a>, String> {
        if b.len() < 4 {
            return Err("parameter buffer shorter than 4 bytes".into());
        }
        let count = u32_at(b, 0) as usize;
        let mut off = 4;
        let next = |off: &mut usize| -> Option<&'a str> {
            if b.len() - *off < 4 {
                return None;
            }
            let n = u32_at(b, *off) as usize;
            *off += 4;
            if n > b.len() - *off {
                return None;
            }
            let s = std::str::from_utf8(&b[*off..*off + n]).ok();
            *off += n;
            s
        };
        let mut pairs = Vec::with_capacity(count.min(1024));
        for i in 0..count {
            match (next(&mut off), next(&mut off)) {
                (Some(k), Some(v)) => pairs.push((k, v)),
                _ => return Err(format!("parameter {} truncated or not UTF-8", i)),
            }
        }
        Ok(Params { pairs })
    }

    /// The parameters as (name, value), sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.pairs.iter().copied()
    }

    /// The value of a parameter.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

// ---- output -----------------------------------------------------------

/// The output of one call.
pub struct Out {
    buf: Vec<u8>,
    count: u32,
    err: Option<String>,
}

impl Out {
    const fn new() -> Out {
        Out { buf: Vec::new(), count: 0, err: None }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.buf.resize(OUTPUT_HEADER, 0);
        self.count = 0;
        self.err = None;
    }

    /// Number of metrics emitted so far in this call.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Makes the call fail with msg (the first error wins); the stage may
    /// also return Err from process.
    pub fn fail(&mut self, msg: impl Into<String>) {
        if self.err.is_none() {
            self.err = Some(msg.into());
        }
    }

    /// Adds one metric. Fields a scope does not use must be empty; names
    /// longer than 65535 bytes fail the call.
    pub fn emit(&mut self, scope: Scope, object: &[u8], server: &[u8], name: &[u8], value: f64) {
        if self.err.is_some() {
            return;
        }
        if object.len() > 0xffff || server.len() > 0xffff || name.len() > 0xffff {
            self.fail("metric name longer than 65535 bytes");
            return;
        }
        let b = &mut self.buf;
        b.push(scope as u8);
        b.push(0);
        b.extend_from_slice(&(object.len() as u16).to_le_bytes());
        b.extend_from_slice(&(server.len() as u16).to_le_bytes());
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(&value.to_le_bytes());
        b.extend_from_slice(object);
        b.extend_from_slice(server);
        b.extend_from_slice(name);
        self.count += 1;
    }

    /// P.daemon.<name>
    pub fn daemon(&mut self, name: &str, v: f64) {
        self.emit(Scope::Daemon, b"", b"", name.as_bytes(), v)
    }

    /// P.daemon.process.<proc>.<name>
    pub fn process(&mut self, proc_: &[u8], name: &str, v: f64) {
        self.emit(Scope::Process, proc_, b"", name.as_bytes(), v)
    }

    /// P.frontend.<frontend>.<name>
    pub fn frontend(&mut self, frontend: &[u8], name: &str, v: f64) {
        self.emit(Scope::Frontend, frontend, b"", name.as_bytes(), v)
    }

    /// P.backend.<backend>.<name>
    pub fn backend(&mut self, backend: &[u8], name: &str, v: f64) {
        self.emit(Scope::Backend, backend, b"", name.as_bytes(), v)
    }

    /// P.backend.<backend>.server.<server>.<name>
    pub fn server(&mut self, backend: &[u8], server: &[u8], name: &str, v: f64) {
        self.emit(Scope::Server, backend, server, name.as_bytes(), v)
    }

    /// P.server.<server>.<name>
    pub fn aggr_server(&mut self, server: &[u8], name: &str, v: f64) {
        self.emit(Scope::AggrServer, b"", server, name.as_bytes(), v)
    }

    /// P.<path>: a dotted path kept as is (no empty segment).
    pub fn path(&mut self, path: &str, v: f64) {
        self.emit(Scope::Path, b"", b"", path.as_bytes(), v)
    }

    /// Writes the header, or turns the buffer into an error buffer.
    fn finish(&mut self, result: Result<(), String>) {
        if let Err(e) = result {
            self.fail(e);
        }
        if let Some(e) = self.err.take() {
            let mut n = e.len().min(MAX_ERROR);
            while !e.is_char_boundary(n) {
                n -= 1;
            }
            self.buf.clear();
            self.buf.extend_from_slice(&OUTPUT_MAGIC.to_le_bytes());
            self.buf.extend_from_slice(&1u32.to_le_bytes());
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
            self.buf.extend_from_slice(&0u32.to_le_bytes());
            self.buf.extend_from_slice(&e.as_bytes()[..n]);
            return;
        }
        let count = self.count;
        let h = &mut self.buf[..OUTPUT_HEADER];
        h[0..4].copy_from_slice(&OUTPUT_MAGIC.to_le_bytes());
        h[4..8].copy_from_slice(&0u32.to_le_bytes());
        h[8..12].copy_from_slice(&count.to_le_bytes());
        h[12..16].copy_from_slice(&0u32.to_le_bytes());
    }
}

// ---- the stage --------------------------------------------------------

/// What a stage implements.
pub trait Stage {
    /// The `show stat` columns process reads, separated by spaces ("" for
    /// none); only those are copied into the module's memory.
    const COLUMNS: &'static str;

    /// Receives the options of the stage's section; Err refuses to start
    /// (the message is written to stderr, which the host quotes). Called
    /// only with `hsabi_stage_with_init!`.
    fn init(&mut self, _params: &Params) -> Result<(), String> {
        Ok(())
    }

    /// Computes the metrics of one snapshot. Err (or a panic) discards its
    /// metrics for this snapshot.
    fn process(&mut self, snap: &Snapshot, out: &mut Out) -> Result<(), String>;
}

// ---- host imports -----------------------------------------------------

#[cfg(target_arch = "wasm32")]
mod host {
    #[link(wasm_import_module = "hs")]
    extern "C" {
        pub fn log(level: i32, ptr: *const u8, len: usize);
    }

    #[repr(C)]
    pub struct Iovec {
        pub ptr: *const u8,
        pub len: usize,
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        pub fn fd_write(fd: i32, iovs: *const Iovec, n: usize, written: *mut usize) -> i32;
    }
}

/// Logs msg with the stage name and snapshot (host import hs.log).
pub fn log(level: Level, msg: &str) {
    #[cfg(target_arch = "wasm32")]
    if !msg.is_empty() {
        unsafe { host::log(level as i32, msg.as_ptr(), msg.len()) }
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("hsabi log {:?}: {}", level, msg);
}

/// Writes one line to stderr, which the host quotes when the call fails.
fn stderr_line(msg: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        let iov = [host::Iovec { ptr: msg.as_ptr(), len: msg.len() }, host::Iovec { ptr: b"\n".as_ptr(), len: 1 }];
        let mut written = 0usize;
        unsafe { host::fd_write(2, iov.as_ptr(), 2, &mut written) };
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{}", msg);
}

// ---- the exports' implementation (called by the macros) ---------------

static mut INPUT: Vec<u64> = Vec::new();
static mut OUTPUT: Out = Out::new();
static mut HOOKED: bool = false;

/// Installs the panic hook once per instance.
#[doc(hidden)]
pub fn setup() {
    unsafe {
        if HOOKED {
            return;
        }
        HOOKED = true;
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("panic: {}", info);
        stderr_line(&msg);
        log(Level::Error, &msg);
    }));
}

#[doc(hidden)]
pub fn alloc(size: i32) -> i32 {
    if size < 0 {
        return 0;
    }
    let n = ((size as usize + 7) / 8).max(1);
    unsafe {
        if INPUT.len() < n {
            // Let the old buffer go first, then take some room to spare:
            // the input grows a little from one snapshot to the next. The
            // buffer is zeroed only when it grows (fresh memory, which the
            // allocator knows to be zero): the host overwrites what a call
            // reads, and zeroing 5 MB on every call would be a loop that
            // wazero's timeout checks make cost 30 ms.
            INPUT = Vec::new();
            let mut v: Vec<u64> = Vec::new();
            if v.try_reserve_exact(n + n / 8 + 512).is_err() {
                return 0;
            }
            v.resize(v.capacity(), 0);
            INPUT = v;
        }
        INPUT.as_ptr() as usize as i32
    }
}

/// The bytes of the input buffer the host wrote, if (ptr, len) is it.
fn input(ptr: i32, len: i32) -> Option<&'static [u8]> {
    unsafe {
        if INPUT.is_empty() || ptr as u32 as usize != INPUT.as_ptr() as usize || len < 0 || len as usize > 8 * INPUT.len() {
            return None;
        }
        Some(std::slice::from_raw_parts(INPUT.as_ptr() as *const u8, len as usize))
    }
}

fn pack(b: &[u8]) -> i64 {
    if b.is_empty() {
        return 0;
    }
    ((b.as_ptr() as usize as u64) << 32 | b.len() as u64) as i64
}

#[doc(hidden)]
pub fn columns(cols: &'static str) -> i64 {
    pack(cols.as_bytes())
}

#[doc(hidden)]
pub fn init<S: Stage>(stage: &mut S, ptr: i32, len: i32) -> i32 {
    let result = match input(ptr, len) {
        None => Err("hsabi: parameters not in the buffer hs_alloc returned".to_string()),
        Some(b) => Params::decode(b).and_then(|p| stage.init(&p)),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            log(Level::Error, &e);
            stderr_line(&e);
            1
        }
    }
}

#[doc(hidden)]
pub fn process<S: Stage>(stage: &mut S, ptr: i32, len: i32) -> i64 {
    let out = unsafe { &mut OUTPUT };
    out.reset();
    let result = match input(ptr, len) {
        None => Err("hsabi: input not in the buffer hs_alloc returned".to_string()),
        Some(b) => decode(b).and_then(|snap| stage.process(&snap, out)),
    };
    out.finish(result);
    pack(&out.buf)
}

/// Defines the exports of a stage without parameters:
/// `hsabi_stage!(Type, constructor expression)`.
#[macro_export]
macro_rules! hsabi_stage {
    ($ty:ty, $ctor:expr) => {
        static mut HSABI_STAGE: Option<$ty> = None;

        fn hsabi_stage() -> &'static mut $ty {
            $crate::hsabi::setup();
            unsafe { HSABI_STAGE.get_or_insert_with(|| $ctor) }
        }

        #[no_mangle]
        pub extern "C" fn hs_abi_version() -> i32 {
            $crate::hsabi::VERSION
        }

        #[no_mangle]
        pub extern "C" fn hs_alloc(size: i32) -> i32 {
            $crate::hsabi::setup();
            $crate::hsabi::alloc(size)
        }

        #[no_mangle]
        pub extern "C" fn hs_columns() -> i64 {
            $crate::hsabi::columns(<$ty as $crate::hsabi::Stage>::COLUMNS)
        }

        #[no_mangle]
        pub extern "C" fn hs_process(ptr: i32, len: i32) -> i64 {
            $crate::hsabi::process(hsabi_stage(), ptr, len)
        }
    };
}

/// Defines the exports of a stage with parameters (adds hs_init):
/// `hsabi_stage_with_init!(Type, constructor expression)`.
#[macro_export]
macro_rules! hsabi_stage_with_init {
    ($ty:ty, $ctor:expr) => {
        $crate::hsabi_stage!($ty, $ctor);

        #[no_mangle]
        pub extern "C" fn hs_init(ptr: i32, len: i32) -> i32 {
            $crate::hsabi::init(hsabi_stage(), ptr, len)
        }
    };
}
