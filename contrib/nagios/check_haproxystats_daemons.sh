#!/bin/sh
# check_haproxystats_daemons.sh: Nagios liveness check of the haproxystats
# systemd units, a wrapper around `systemctl is-active`.
#
# Usage: check_haproxystats_daemons.sh [UNIT...]
#   UNIT defaults to haproxystats-pull haproxystats-process (the two-program
#   setup); for the one-daemon setup pass haproxystats.
#
# Exit status and first line, as Nagios reads them:
#   0 OK        every unit is active
#   1 WARNING   none failed or stopped, but some is activating, reloading or
#               deactivating (e.g. restarting after a crash)
#   2 CRITICAL  some unit is inactive, failed or unknown
#   3 UNKNOWN   systemctl is missing or its answer cannot be read
# The backlog is a separate check: haproxystats-engine check-queue.
set -u

[ $# -gt 0 ] || set -- haproxystats-pull haproxystats-process

if ! command -v systemctl >/dev/null 2>&1; then
	echo "UNKNOWN: systemctl not found"
	exit 3
fi

# One state per unit, in order; the exit status only says "all active".
states=$(systemctl is-active "$@" 2>/dev/null)
n=$(printf '%s\n' "$states" | grep -c .)
if [ "$n" -ne $# ]; then
	why=$(systemctl is-active "$@" 2>&1 >/dev/null | head -n 1)
	echo "UNKNOWN: systemctl is-active $* answered $n states for $# units${why:+: $why}"
	exit 3
fi

code=0 report="" i=0
for unit in "$@"; do
	i=$((i + 1))
	state=$(printf '%s\n' "$states" | sed -n "${i}p")
	case $state in
	active) ;;
	activating | reloading | deactivating | refreshing)
		[ $code -ge 1 ] || code=1 ;;
	*)
		code=2 ;;
	esac
	report="${report:+$report, }$unit $state"
done

case $code in
0) echo "OK: $report" ;;
1) echo "WARNING: $report" ;;
*) echo "CRITICAL: $report" ;;
esac
exit $code
