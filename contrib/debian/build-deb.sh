#!/bin/sh
# build-deb.sh VERSION ARCH BINDIR MANDIR OUTDIR: builds
# OUTDIR/haproxystats_VERSION_ARCH.deb with dpkg-deb from the binaries in
# BINDIR (haproxystats-pull, -process, -engine), the man pages in MANDIR
# (*.1) and the files of contrib/. `make deb` calls it; so does the
# package test in contrib/.
#
#   /usr/bin/haproxystats-{pull,process,engine}
#   /lib/systemd/system/haproxystats{-pull,-process,}.service
#   /etc/haproxystats.conf                    (conffile; contrib/haproxystats.conf)
#   /usr/lib/nagios/plugins/check_haproxystats_daemons.sh
#   /usr/share/haproxystats/grafana/haproxystats.json
#   /usr/share/man/man1/*.1.gz, /usr/share/doc/haproxystats/
#
# DEB_COMPRESS (default xz) is dpkg-deb's -Z; the package test uses gzip,
# which is ten times faster.
set -eu

[ $# -eq 5 ] || { echo "usage: $0 VERSION ARCH BINDIR MANDIR OUTDIR" >&2; exit 2; }
version=$1 arch=$2 bindir=$3 mandir=$4 outdir=$5
# ARCH may be Go's name (go env GOARCH) or Debian's.
case $arch in
386) arch=i386 ;;
arm) arch=armhf ;;
ppc64le) arch=ppc64el ;;
mips64le) arch=mips64el ;;
mipsle) arch=mipsel ;;
esac
contrib=$(cd "$(dirname "$0")/.." && pwd)
top=$(cd "$contrib/.." && pwd)

mkdir -p "$outdir"
root=$(mktemp -d "${TMPDIR:-/tmp}/haproxystats-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
# dpkg-deb wants the control directory 0755 whatever the umask.
umask 022

install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc" \
	"$root/usr/lib/nagios/plugins" "$root/usr/share/haproxystats/grafana" \
	"$root/usr/share/man/man1" "$root/usr/share/doc/haproxystats"

for p in haproxystats-pull haproxystats-process haproxystats-engine; do
	install -m 0755 "$bindir/$p" "$root/usr/bin/$p"
done
for u in haproxystats-pull.service haproxystats-process.service haproxystats.service; do
	install -m 0644 "$contrib/systemd/$u" "$root/lib/systemd/system/$u"
done
install -m 0644 "$contrib/haproxystats.conf" "$root/etc/haproxystats.conf"
install -m 0755 "$contrib/nagios/check_haproxystats_daemons.sh" "$root/usr/lib/nagios/plugins/"
install -m 0644 "$contrib/grafana/haproxystats.json" "$root/usr/share/haproxystats/grafana/"
for m in "$mandir"/*.1; do
	gzip -9n <"$m" >"$root/usr/share/man/man1/$(basename "$m").gz"
done
install -m 0644 "$top/README.md" "$root/usr/share/doc/haproxystats/"
for f in "$top"/docs/*.md; do
	[ -e "$f" ] && install -m 0644 "$f" "$root/usr/share/doc/haproxystats/"
done
cat >"$root/usr/share/doc/haproxystats/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: haproxystats-go
Source: https://github.com/haproxystats-go/haproxystats
Comment: A Go rewrite of haproxystats by Pavlos Parissis
 (https://github.com/unixsurfer/haproxystats). The source tree states no
 license yet; this file is to be completed when it does.
COPYRIGHT

for s in postinst prerm postrm; do
	install -m 0755 "$contrib/debian/$s" "$root/DEBIAN/$s"
done
install -m 0644 "$contrib/debian/conffiles" "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	"$contrib/debian/control.in" >"$root/DEBIAN/control"

deb="$outdir/haproxystats_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$deb" >/dev/null
echo "$deb"
