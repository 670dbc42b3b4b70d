#!/bin/sh
# Builds the C and Rust WASM stage examples: <name>/<name>.c with Debian's
# clang, lld and wasi-libc (a WASI reactor), <name>/<name>.rs with a rustc
# that has the wasm32-unknown-unknown standard library (Debian's
# /usr/bin/rustc with libstd-rust-dev-wasm32; no cargo, no crates), each
# into <name>/<name>.wasm. The .wasm files are build output, not committed.
#
#   build-c-rust.sh [-o OUTDIR] [SOURCE.c|SOURCE.rs ...]
#
# -o writes OUTDIR/<name>/<name>.wasm instead (the Go tests build into a
# temporary directory); SOURCE files given build those instead of the
# examples. A missing toolchain prints a loud SKIP line naming the Debian
# packages, removes that language's modules left from an earlier build (so
# that `make wasm-test` does not test stale ones) and skips it (exit status
# 0), except under CI (CI=true), where .ci/install-deps has installed the
# toolchains and a missing one fails the build (exit 1); a failing build
# exits 1. CC and RUSTC override the compilers.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$here
while getopts o: opt; do
	case $opt in
	o) out=$OPTARG ;;
	*)
		echo "usage: $0 [-o OUTDIR] [SOURCE.c|SOURCE.rs ...]" >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))

c_sources=""
rs_sources=""
if [ $# -eq 0 ]; then
	for dir in "$here"/*/; do
		name=$(basename "$dir")
		if [ -f "$dir$name.c" ]; then c_sources="$c_sources $dir$name.c"; fi
		if [ -f "$dir$name.rs" ]; then rs_sources="$rs_sources $dir$name.rs"; fi
	done
else
	for src in "$@"; do
		case $src in
		*.c) c_sources="$c_sources $src" ;;
		*.rs) rs_sources="$rs_sources $src" ;;
		*)
			echo "build-c-rust.sh: $src is neither .c nor .rs" >&2
			exit 2
			;;
		esac
	done
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

names() {
	for src in "$@"; do printf ' %s' "$(basename "$src" | sed 's/\.[^.]*$//')"; done
}

# skip LANGUAGE REASON SOURCE...: says why loudly, removes stale modules;
# under CI fails instead.
skip() {
	lang=$1 reason=$2
	shift 2
	for src in "$@"; do
		name=$(basename "$src" | sed 's/\.[^.]*$//')
		rm -f "$out/$name/$name.wasm"
	done
	case ${CI:-} in
	true | TRUE | True | 1)
		echo "!!! FAIL $lang examples$(names "$@"): $reason; CI=true, where .ci/install-deps installs it" >&2
		exit 1
		;;
	esac
	echo "!!! SKIP $lang examples$(names "$@"): $reason" >&2
}

# C: one probe build tells whether clang, wasm-ld and wasi-libc are all
# there. -nodefaultlibs -lc: Debian's clang 14 otherwise links compiler-rt's
# wasm32 builtins, which are in libclang-rt-14-dev-wasm32 (not needed here).
# --strip-debug drops the DWARF of Debian's libc.a (100 KB of a 140 KB
# module) and keeps the function names that traps are reported with.
CC=${CC:-clang}
CFLAGS="--target=wasm32-wasi -O2 -Wall -Wextra -mexec-model=reactor -nodefaultlibs -Wl,--strip-debug"
if [ -n "$c_sources" ]; then
	echo 'int probe;' >"$tmp/probe.c"
	# shellcheck disable=SC2086
	if ! command -v "$CC" >/dev/null 2>&1; then
		skip C "$CC not found (apt-get install -y clang lld wasi-libc)" $c_sources
	elif ! $CC $CFLAGS -o "$tmp/probe.wasm" "$tmp/probe.c" -lc >"$tmp/probe.log" 2>&1; then
		skip C "$CC cannot build a wasm32-wasi reactor (apt-get install -y clang lld wasi-libc): $(grep -m1 error "$tmp/probe.log" || head -1 "$tmp/probe.log")" $c_sources
	else
		for src in $c_sources; do
			name=$(basename "$src" .c)
			mkdir -p "$out/$name"
			echo "$CC $CFLAGS -o $out/$name/$name.wasm $src -lc"
			# shellcheck disable=SC2086
			$CC $CFLAGS -o "$out/$name/$name.wasm" "$src" -lc
		done
	fi
fi

# Rust: $RUSTC, or the first of /usr/bin/rustc (Debian's, with
# libstd-rust-dev-wasm32) and rustc that really builds a wasm32 module
# using std: a tiny probe is compiled with the flags below (rustup's rustc,
# often first in PATH, usually lacks the wasm32 std). strip=debuginfo: Debian's std carries DWARF (a
# 110 KB module is 5 MB without it); +bulk-memory: copies are one
# memory.copy instead of a byte loop, which the host's timeout checks make
# slow (a third of rsavail's time).
RUSTFLAGS="--target wasm32-unknown-unknown --crate-type cdylib -O -C panic=abort -C strip=debuginfo -C target-feature=+bulk-memory --edition 2021"
if [ -n "$rs_sources" ]; then
	rustc=""
	echo '#[no_mangle] pub extern "C" fn probe(n: usize) -> usize { std::vec::Vec::<u8>::with_capacity(n).capacity() }' >"$tmp/probe.rs"
	for candidate in ${RUSTC:-/usr/bin/rustc rustc}; do
		command -v "$candidate" >/dev/null 2>&1 || continue
		# shellcheck disable=SC2086
		if "$candidate" $RUSTFLAGS -o "$tmp/probe-rs.wasm" "$tmp/probe.rs" >"$tmp/probe-rs.log" 2>&1; then
			rustc=$candidate
			break
		fi
	done
	if [ -z "$rustc" ]; then
		# shellcheck disable=SC2086
		skip Rust "no ${RUSTC:-/usr/bin/rustc or rustc} builds a wasm32-unknown-unknown module with std (apt-get install -y rustc libstd-rust-dev-wasm32)$(grep -m1 error "$tmp/probe-rs.log" 2>/dev/null | sed 's/^/: /')" $rs_sources
	else
		for src in $rs_sources; do
			name=$(basename "$src" .rs)
			mkdir -p "$out/$name"
			echo "$rustc $RUSTFLAGS -o $out/$name/$name.wasm $src"
			# shellcheck disable=SC2086
			"$rustc" $RUSTFLAGS -o "$out/$name/$name.wasm" "$src"
		done
	fi
fi
