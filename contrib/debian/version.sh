#!/bin/sh
# version.sh [DESCRIBE]: the Debian package version for a `git describe
# --tags --always --dirty` string (read from git when not given):
#   v1.2.0                  -> 1.2.0
#   v1.2.0-3-gabc1234       -> 1.2.0+3.gabc1234
#   v1.2.0-3-gabc1234-dirty -> 1.2.0+3.gabc1234.dirty
#   abc1234[-dirty]         -> 0.0.0+gabc1234[.dirty]   (no tag yet: a bare
#                              commit, which may start with a digit)
# dpkg needs a leading digit and allows no '-' in an upstream version of a
# native package; '+' sorts after the release it follows.
set -eu
d=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
d=${d#v}
first=${d%%-*}
case $first in
[0-9]*.*)
	rest=${d#"$first"}
	if [ -n "$rest" ]; then
		rest=$(printf '%s' "${rest#-}" | tr -- - .)
		echo "$first+$rest"
	else
		echo "$first"
	fi
	;;
*)
	echo "0.0.0+g$(printf '%s' "$d" | tr -- - .)"
	;;
esac
