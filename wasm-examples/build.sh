#!/bin/sh
# Builds every example into wasm-examples/<name>/<name>.wasm: the Go ones
# with the standard toolchain (GOOS=wasip1 GOARCH=wasm, WASI reactor), the
# WAT ones with wat2wasm (Debian package wabt). Run from anywhere; the lead
# Makefile calls it from `make wasm-examples`. The .wasm files are build
# output and are not committed. A missing wat2wasm skips the WAT examples
# loudly, except under CI (CI=true), where .ci/install-deps installs it and
# its absence fails the build.
set -eu
cd "$(dirname "$0")"
GO=${GO:-go}
for dir in */; do
	name=${dir%/}
	if [ -f "$name/$name.wat" ]; then
		if ! command -v wat2wasm >/dev/null 2>&1; then
			rm -f "$name/$name.wasm"
			case ${CI:-} in
			true | TRUE | True | 1)
				echo "!!! FAIL $name: wat2wasm not found (apt-get install -y wabt); CI=true, where .ci/install-deps installs it" >&2
				exit 1
				;;
			esac
			echo "!!! SKIP $name: wat2wasm not found (apt-get install -y wabt)" >&2
			continue
		fi
		echo "wat2wasm $name/$name.wat -o $name/$name.wasm"
		wat2wasm "$name/$name.wat" -o "$name/$name.wasm"
	elif [ -f "$name/main.go" ]; then
		echo "GOOS=wasip1 GOARCH=wasm $GO build -buildmode=c-shared -trimpath -o $name/$name.wasm ./$name"
		GOOS=wasip1 GOARCH=wasm $GO build -buildmode=c-shared -trimpath -o "$name/$name.wasm" "./$name"
	fi
done
