#!/bin/sh
# render.sh OUTDIR VERSION DATE BINDIR: writes the man pages OUTDIR/PROG.1
# from the templates contrib/man/PROG.1.in and the programs built in BINDIR
# (`make man` passes the `make dist` binaries, the git version and the date
# of the last commit). The parts that must follow the code are generated
# from what the programs print, so a page cannot describe a flag or a
# default the program does not have:
#
#   @SYNOPSIS@       the "Usage:" lines of `PROG -h`
#   @OPTIONS@        the option lines of `PROG -h`
#   @OPTIONS CMD@    those of `PROG CMD -h` (haproxystats-engine's commands)
#   @DEFAULTS@       `PROG -p`, the built-in defaults
#   @VERSION@ @DATE@ VERSION and DATE
#
# Everything else (description, signals, files ...) is the template's text.
set -eu
[ $# -eq 4 ] || { echo "usage: $0 OUTDIR VERSION DATE BINDIR" >&2; exit 2; }
out=$1 version=$2 date=$3 bin=$4
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

# synopsis: the lines of the "Usage:" block, one per .br; the command words
# bold, flags bold, <arg> and ARG italic, brackets, bars and dots roman.
synopsis() {
	awk '
	/^Usage:/ { on = 1; next }
	on && /^[ \t]*$/ { exit }
	on {
		sub(/^[ \t]+/, ""); n = split($0, w, / +/); line = ""; cmd = 1
		for (i = 1; i <= n; i++) {
			t = w[i]; lead = ""; trail = ""
			while (t ~ /^[\[(]/) { lead = lead substr(t, 1, 1); t = substr(t, 2) }
			while (t ~ /([\])]|\.\.\.)$/) {
				if (t ~ /\.\.\.$/) { trail = "..." trail; t = substr(t, 1, length(t) - 3) }
				else { trail = substr(t, length(t)) trail; t = substr(t, 1, length(t) - 1) }
			}
			if (t ~ /^-/) { cmd = 0; gsub(/-/, "\\-", t); t = "\\fB" t "\\fR" }
			else if (t ~ /^<.*>$/) { cmd = 0; t = "\\fI" substr(t, 2, length(t) - 2) "\\fR" }
			else if (t ~ /^[A-Z][A-Z_]*$/) { cmd = 0; t = "\\fI" t "\\fR" }
			else if (t != "" && t != "|" && cmd) { gsub(/-/, "\\-", t); t = "\\fB" t "\\fR" }
			else if (t != "" && t != "|") { gsub(/-/, "\\-", t) }
			if (lead != "" || trail != "") cmd = 0
			line = line (line == "" ? "" : " ") lead t trail
		}
		if (count++) print ".br"
		print line
	}
	END { if (!count) { print "render.sh: no Usage: block in -h" > "/dev/stderr"; exit 1 } }'
}

# options: one .TP per option line of a -h screen (docopt style
# "  -f, --file <file>  text" or pflag's "  -f, --file string   text"),
# the indented lines below it continuing the text.
options() {
	awk '
	function flush() {
		if (spec == "") return
		print ".TP"; print spec
		t = desc; gsub(/\\/, "\\e", t); sub(/^[ \t]+/, "", t)
		t = toupper(substr(t, 1, 1)) substr(t, 2)
		# a flag in the text: \-
		while (match(t, /(^|[ (\[])--?[A-Za-z]/)) {
			pre = substr(t, 1, RSTART - 1); m = substr(t, RSTART, RLENGTH); rest = substr(t, RSTART + RLENGTH)
			gsub(/-/, "\\-", m); done = done pre m; t = rest
		}
		t = done t; done = ""
		if (t ~ /^[.\x27]/) t = "\\&" t
		print t
		spec = ""; desc = ""; count++
	}
	/^[ \t]+-/ {
		flush()
		l = $0; sub(/^[ \t]+/, "", l)
		if (match(l, /  +/)) { s = substr(l, 1, RSTART - 1); desc = substr(l, RSTART + RLENGTH) }
		else { s = l; desc = "" }
		gsub(/\[=true\|false\]/, "", s)
		n = split(s, w, / +/); spec = ""; long = ""
		for (i = 1; i <= n; i++) if (w[i] ~ /^--/) { long = w[i]; sub(/^--/, "", long) }
		for (i = 1; i <= n; i++) {
			t = w[i]; comma = ""
			if (t ~ /,$/) { comma = ","; t = substr(t, 1, length(t) - 1) }
			# pflag names the argument by its type; the long name reads better.
			if (t ~ /^(string|int|uint|float64|duration|strings)$/ && long != "") t = long
			if (t ~ /^-/) { gsub(/-/, "\\-", t); t = "\\fB" t "\\fR" }
			else { sub(/^</, "", t); sub(/>$/, "", t); t = "\\fI" t "\\fR" }
			spec = spec (spec == "" ? "" : " ") t comma
		}
		next
	}
	spec != "" && /^[ \t]+[^ \t]/ { l = $0; sub(/^[ \t]+/, "", l); desc = desc " " l; next }
	{ flush() }
	END { flush(); if (!count) { print "render.sh: no option lines in -h" > "/dev/stderr"; exit 1 } }'
}

# defaults: `PROG -p` as a literal block.
defaults() {
	printf '.PP\n.RS\n.nf\n'
	sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\([.']\)/\\\\\&\1/"
	printf '.fi\n.RE\n'
}

found=0
for tpl in "$src"/*.1.in; do
	prog=$(basename "$tpl" .1.in)
	exe=$bin/$prog
	[ -x "$exe" ] || { echo "render.sh: $exe: not an executable (make dist builds it)" >&2; exit 1; }
	page=$out/$prog.1
	while IFS= read -r line; do
		case $line in
		@SYNOPSIS@) "$exe" -h | synopsis ;;
		@OPTIONS@) "$exe" -h | options ;;
		"@OPTIONS "*@)
			cmd=${line#@OPTIONS }
			cmd=${cmd%@}
			# pflag prints a command's -h to stderr and exits 2.
			{ "$exe" "$cmd" -h 2>&1 || true; } | options
			;;
		@DEFAULTS@) "$exe" -p | defaults ;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$tpl" >"$page.tmp"
	sed -e "s|@VERSION@|$version|g" -e "s|@DATE@|$date|g" "$page.tmp" >"$page"
	rm -f "$page.tmp"
	found=$((found + 1))
done
[ "$found" -gt 0 ] || { echo "render.sh: no templates in $src" >&2; exit 1; }
