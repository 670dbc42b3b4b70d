package contrib_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

const (
	debPackage = "haproxystats"
	spoolBase  = "/var/lib/haproxystats"
)

// TestContribDebPackage builds the Debian package with the script `make
// deb` uses, installs it on this machine with dpkg -i, checks what the
// package promises (binaries, units, conffile, the haproxystats system
// user, the spool, the units enabled), runs the installed
// haproxystats-pull and haproxystats-process with the installed example
// configuration as their units would (user haproxystats, group haproxy
// added for pull; only the socket directory and the Graphite port
// changed) against a real HAProxy and a Graphite recorder, then removes
// and purges the package and checks that nothing is left.
//
// It changes the machine, so it runs only as root with dpkg, and skips
// when haproxystats is already installed or its user or spool exist.
func TestContribDebPackage(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: the package test installs a .deb and needs root")
	}
	dpkg := need(t, "dpkg", "dpkg")
	need(t, "dpkg-deb", "dpkg")
	need(t, "adduser", "adduser")
	sh := need(t, "sh", "dash")
	if out, _, _ := runCmd(t, nil, "dpkg-query", "-W", "-f", "${Status}", "haproxy"); out != "install ok installed" {
		t.Skip("SKIPPING: the package depends on haproxy, which is not installed (apt-get install haproxy; .ci/install-deps does)")
	}
	if out, _, _ := runCmd(t, nil, "dpkg-query", "-W", "-f", "${Status}", debPackage); strings.Contains(out, "installed") || strings.Contains(out, "config-files") {
		t.Skipf("SKIPPING: package %s is already on this machine (%s); the test would replace it", debPackage, out)
	}
	if _, err := user.Lookup("haproxystats"); err == nil {
		t.Skip("SKIPPING: user haproxystats exists; the test would delete it on purge")
	}
	if _, err := os.Lstat(spoolBase); err == nil {
		// Without the package and its user this is debris (e.g. a default
		// stage-cache-dir some test created as root): move it aside for
		// the test, which ends with a purge, and put it back after.
		aside := fmt.Sprintf("%s.contrib-test-%d", spoolBase, os.Getpid())
		if err := os.Rename(spoolBase, aside); err != nil {
			t.Skipf("SKIPPING: %s exists and cannot be moved aside: %v", spoolBase, err)
		}
		t.Logf("%s existed without the package: moved to %s for the test", spoolBase, aside)
		t.Cleanup(func() {
			if err := os.Rename(aside, spoolBase); err != nil {
				t.Errorf("put %s back: %v", spoolBase, err)
			}
		})
	}
	start := time.Now()

	// Build with `make deb` (gzip instead of xz: ten times faster).
	mk := need(t, "make", "make")
	need(t, "git", "git")
	bin := binaries(t) // the same sources, to compare -p with
	work := t.TempDir()
	if o, e, code := runCmd(t, append(os.Environ(), "DEB_COMPRESS=gzip"), mk, "-C", root, "deb",
		"DIST="+work, "MANOUT="+filepath.Join(work, "man")); code != 0 {
		t.Fatalf("make deb: exit %d\n%s%s", code, o, e)
	}
	debs, _ := filepath.Glob(filepath.Join(work, debPackage+"_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %q", debs)
	}
	deb := debs[0]
	arch, _, _ := runCmd(t, nil, dpkg, "--print-architecture")
	version, _, _ := runCmd(t, nil, "dpkg-deb", "-f", deb, "Version")
	distVersion, _, _ := runCmd(t, nil, filepath.Join(work, "haproxystats-pull"), "-v")
	wantVersion, _, _ := runCmd(t, nil, sh, filepath.Join(root, "contrib/debian/version.sh"), strings.TrimSpace(distVersion))
	if filepath.Base(deb) != fmt.Sprintf("%s_%s_%s.deb", debPackage, strings.TrimSpace(wantVersion), strings.TrimSpace(arch)) ||
		strings.TrimSpace(version) != strings.TrimSpace(wantVersion) {
		t.Errorf("make deb made %s, version %q; want version %q (from -v %q) and architecture %q",
			filepath.Base(deb), version, wantVersion, distVersion, arch)
	}
	listing, _, _ := runCmd(t, nil, "dpkg-deb", "-c", deb)
	for _, f := range []string{"./usr/bin/haproxystats-pull", "./usr/bin/haproxystats-process", "./usr/bin/haproxystats-engine",
		"./lib/systemd/system/haproxystats-pull.service", "./lib/systemd/system/haproxystats-process.service",
		"./lib/systemd/system/haproxystats.service", "./etc/haproxystats.conf",
		"./usr/share/man/man1/haproxystats-pull.1.gz", "./usr/lib/nagios/plugins/check_haproxystats_daemons.sh",
		"./usr/share/haproxystats/grafana/haproxystats.json", "./usr/share/doc/haproxystats/copyright"} {
		if !strings.Contains(listing, " "+f+"\n") {
			t.Errorf("%s lacks %s:\n%s", filepath.Base(deb), f, listing)
		}
	}
	if !strings.Contains(listing, "root/root") {
		t.Errorf("files are not owned by root:\n%s", listing)
	}

	t.Logf("built at %v", time.Since(start))
	// Install; from here on, leave the machine as it was whatever happens.
	t.Cleanup(func() {
		dpkgLocked(t, dpkg, "--purge", debPackage)
		runCmd(t, nil, "userdel", "haproxystats")
		runCmd(t, nil, "groupdel", "haproxystats")
		os.RemoveAll(spoolBase)
	})
	if o, e, code := dpkgLocked(t, dpkg, "-i", deb); code != 0 {
		t.Fatalf("dpkg -i: exit %d\n%s%s", code, o, e)
	}

	// The binaries, from /usr/bin.
	got, _, code := runCmd(t, nil, "/usr/bin/haproxystats-process", "-p")
	want, _, _ := runCmd(t, nil, filepath.Join(bin, "haproxystats-process"), "-p")
	if code != 0 || got != want || !strings.Contains(got, "[graphite]") {
		t.Errorf("/usr/bin/haproxystats-process -p = %d:\n%s\nwant:\n%s", code, got, want)
	}
	if v, _, _ := runCmd(t, nil, "/usr/bin/haproxystats-pull", "-v"); v != distVersion {
		t.Errorf("/usr/bin/haproxystats-pull -v = %q, want %q", v, distVersion)
	}
	if o, e, code := runCmd(t, nil, "/usr/bin/haproxystats-engine", "check", "-f", "/etc/haproxystats.conf"); code != 0 {
		t.Errorf("haproxystats-engine check -f /etc/haproxystats.conf (the installed example): exit %d\n%s%s", code, o, e)
	}

	// The user, the group and the spool.
	idOut, _, code := runCmd(t, nil, "id", "haproxystats")
	if code != 0 {
		t.Fatalf("id haproxystats: exit %d after dpkg -i", code)
	}
	u, err := user.Lookup("haproxystats")
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup("haproxystats")
	if err != nil || u.Gid != g.Gid {
		t.Errorf("id haproxystats = %s; want primary group haproxystats (%v)", idOut, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if uid >= 1000 || uid == 0 {
		t.Errorf("haproxystats has uid %d, want a system uid", uid)
	}
	for _, d := range []string{spoolBase, spoolBase + "/incoming", spoolBase + "/incoming.tmp"} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || strconv.Itoa(int(st.Uid)) != u.Uid || strconv.Itoa(int(st.Gid)) != g.Gid {
			t.Errorf("%s: dir %v, owner %d:%d; want a directory owned by haproxystats", d, fi.IsDir(), st.Uid, st.Gid)
		}
	}
	if cf, _, _ := runCmd(t, nil, "dpkg-query", "-W", "-f", "${Conffiles}", debPackage); !strings.Contains(cf, "/etc/haproxystats.conf ") {
		t.Errorf("conffiles: %q, want /etc/haproxystats.conf", cf)
	}
	// Enabled, as deb-systemd-helper does with or without a running systemd.
	const wants = "/etc/systemd/system/multi-user.target.wants/"
	if _, err := exec.LookPath("deb-systemd-helper"); err == nil {
		for u, enabled := range map[string]bool{"haproxystats-pull.service": true, "haproxystats-process.service": true, "haproxystats.service": false} {
			_, err := os.Lstat(wants + u)
			if (err == nil) != enabled {
				t.Errorf("%s enabled = %v, want %v", u, err == nil, enabled)
			}
		}
	}
	// The installed units, with the installed binaries.
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		for _, u := range units {
			if o, e, code := runCmd(t, nil, analyze, "verify", "--man=no", "/lib/systemd/system/"+u); code != 0 || o+e != "" {
				t.Errorf("systemd-analyze verify /lib/systemd/system/%s: exit %d\n%s%s", u, code, o, e)
			}
		}
	}

	t.Logf("installed and checked at %v", time.Since(start))
	// The pair, running.
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		checkUnitsActive(t)
	} else {
		runPair(t)
	}

	t.Logf("pair done at %v", time.Since(start))
	// Remove: the user, the spool and the configuration stay.
	if o, e, code := dpkgLocked(t, dpkg, "-r", debPackage); code != 0 {
		t.Fatalf("dpkg -r: exit %d\n%s%s", code, o, e)
	}
	for _, p := range []string{"/usr/bin/haproxystats-pull", "/lib/systemd/system/haproxystats-pull.service"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there after dpkg -r", p)
		}
	}
	if _, _, code := runCmd(t, nil, "id", "haproxystats"); code != 0 {
		t.Error("dpkg -r deleted the haproxystats user; only purge may")
	}
	for _, p := range []string{"/etc/haproxystats.conf", spoolBase} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("dpkg -r removed %s: %v", p, err)
		}
	}

	// Purge: nothing left.
	if o, e, code := dpkgLocked(t, dpkg, "--purge", debPackage); code != 0 {
		t.Fatalf("dpkg --purge: exit %d\n%s%s", code, o, e)
	}
	if _, _, code := runCmd(t, nil, "id", "haproxystats"); code == 0 {
		t.Error("the haproxystats user is still there after dpkg --purge")
	}
	if _, err := user.LookupGroup("haproxystats"); err == nil {
		t.Error("the haproxystats group is still there after dpkg --purge")
	}
	for _, p := range []string{"/etc/haproxystats.conf", spoolBase, wants + "haproxystats-pull.service",
		"/etc/systemd/system/haproxystats-pull.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after dpkg --purge", p)
		}
	}
	if st, _, _ := runCmd(t, nil, "dpkg-query", "-W", "-f", "${Status}", debPackage); strings.Contains(st, "installed") || strings.Contains(st, "config-files") {
		t.Errorf("dpkg status after purge: %q", st)
	}
	t.Logf("built, installed, ran, removed and purged %s in %v", filepath.Base(deb), time.Since(start).Round(time.Millisecond))
}

// runPair runs the installed haproxystats-pull and haproxystats-process
// with the installed configuration, as their systemd units would: user
// and group haproxystats, pull with the supplementary group haproxy, the
// stats socket mode 660 group haproxy as Debian's haproxy.cfg has it. It
// waits for the snapshot to reach the Graphite recorder and leave the
// spool, then stops both with SIGTERM and expects exit 0.
func runPair(t *testing.T) {
	t.Helper()
	sockDir := testenv.ShortDir(t)
	os.Chmod(sockDir, 0o755)
	sock := filepath.Join(sockDir, "admin.sock")
	testenv.StartHAProxy(t, testenv.HAProxyConfig{
		StatsSockets: []string{filepath.Join(sockDir, "probe.sock")},
		Global:       "    stats socket " + sock + " mode 660 group haproxy level admin",
		Body:         testenv.Proxies(testenv.FreePort(t), 2, 2, testenv.FreePort(t)),
	})
	// probe.sock (mode 600, root) is the helper's own; pull lists every
	// socket of socket-dir and would fail on it, so it goes.
	os.Remove(filepath.Join(sockDir, "probe.sock"))
	rec := testenv.NewRecorder(t, 0)

	conf, err := os.ReadFile("/etc/haproxystats.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := string(conf)
	for old, repl := range map[string]string{
		"\nsocket-dir = /run/haproxy\n": "\nsocket-dir = " + sockDir + "\n",
		"\n;port = 3002\n":              "\nport = " + strconv.Itoa(rec.Port()) + "\n",
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("/etc/haproxystats.conf has no %q", strings.TrimSpace(old))
		}
		text = strings.Replace(text, old, repl, 1)
	}
	confPath := filepath.Join(sockDir, "haproxystats.conf")
	if err := os.WriteFile(confPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	start := func(name string, groups string) (*exec.Cmd, *bytes.Buffer, chan error) {
		args := []string{"--reuid=haproxystats", "--regid=haproxystats"}
		if groups != "" {
			args = append(args, "--groups="+groups)
		} else {
			args = append(args, "--clear-groups")
		}
		args = append(args, "--", "/usr/bin/"+name, "-f", confPath)
		cmd := exec.Command("setpriv", args...)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.Dir = "/"
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() }) // os.ErrProcessDone once it exited
		return cmd, &log, done
	}
	need(t, "setpriv", "util-linux")
	pull, pullLog, pullDone := start("haproxystats-pull", "haproxy")
	proc, procLog, procDone := start("haproxystats-process", "")

	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := rec.Bytes()
		n, _ := spool.Count(spoolBase + "/incoming")
		if bytes.Contains(data, []byte(".haproxy.daemon.CurrConns ")) && bytes.Contains(data, []byte(".haproxystats.TotalWallClockTime ")) && n == 0 {
			t.Logf("pull + process as user haproxystats: %d lines delivered, spool empty", bytes.Count(data, []byte("\n")))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot delivered within 15 s (%d bytes at the recorder, %d snapshots in the spool)\npull:\n%s\nprocess:\n%s",
				len(data), n, pullLog, procLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Each must stop within its unit's TimeoutStopSec (read from the
	// installed unit), or systemd would SIGKILL it.
	for _, p := range []struct {
		name string
		cmd  *exec.Cmd
		done chan error
		log  *bytes.Buffer
	}{{"haproxystats-pull", pull, pullDone, pullLog}, {"haproxystats-process", proc, procDone, procLog}} {
		limit := unitStopTimeout(t, "/lib/systemd/system/"+p.name+".service")
		sent := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s after SIGTERM: %v\n%s", p.name, err, p.log)
			}
			t.Logf("%s stopped %v after SIGTERM (TimeoutStopSec %v)", p.name, time.Since(sent).Round(time.Millisecond), limit)
		case <-time.After(limit):
			p.cmd.Process.Kill()
			t.Errorf("%s did not stop within TimeoutStopSec=%v of SIGTERM\n%s", p.name, limit, p.log)
		}
	}
	if out, _, code := runCmd(t, nil, "setpriv", "--reuid=haproxystats", "--regid=haproxystats", "--clear-groups",
		"/usr/bin/haproxystats-engine", "check-queue", "-f", confPath); code != 0 || !strings.HasPrefix(out, "OK: queue size 0: ") {
		t.Errorf("haproxystats-engine check-queue as haproxystats = %d, %q", code, out)
	}
}

// unitStopTimeout reads TimeoutStopSec (whole seconds) of a unit file.
func unitStopTimeout(t *testing.T, path string) time.Duration {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "TimeoutStopSec="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return time.Duration(n) * time.Second
			}
		}
	}
	t.Fatalf("%s: no TimeoutStopSec in whole seconds", path)
	return 0
}

// checkUnitsActive is the check under a running systemd, where dpkg -i
// started the units: both must become active.
func checkUnitsActive(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _, code := runCmd(t, nil, "systemctl", "is-active", "haproxystats-pull", "haproxystats-process")
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("systemctl is-active haproxystats-pull haproxystats-process = %d, %q after dpkg -i", code, out)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dpkgLocked runs dpkg, waiting up to a minute while another dpkg or apt
// holds its lock (an apt-get of .ci/install-deps, say).
func dpkgLocked(t *testing.T, dpkg string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		stdout, stderr, code = runCmd(t, nil, dpkg, args...)
		if code == 0 || !strings.Contains(stderr, "lock") || time.Now().After(deadline) {
			return stdout, stderr, code
		}
		time.Sleep(time.Second)
	}
}
