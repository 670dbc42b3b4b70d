package contrib_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/publish"
)

var units = []string{"haproxystats-pull.service", "haproxystats-process.service", "haproxystats.service"}

// unitSettings reads the [Service] and [Unit] assignments of a unit file:
// key -> values in order (a key may repeat).
func unitSettings(t *testing.T, name string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, "contrib/systemd/"+name)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == ';' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: line %q", name, l)
		}
		out[k] = append(out[k], v)
	}
	return out
}

// TestContribSystemdVerify runs systemd-analyze verify on each unit, with
// ExecStart pointing at freshly built binaries (verify needs them to
// exist), and fails on any message: verify exits 0 on unknown keys and bad
// values, which it only prints.
func TestContribSystemdVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze", "systemd")
	bin := binaries(t)
	dir := t.TempDir()
	for _, u := range units {
		text := readFile(t, "contrib/systemd/"+u)
		if !strings.Contains(text, "ExecStart=/usr/bin/haproxystats-") {
			t.Fatalf("%s: ExecStart is not /usr/bin/haproxystats-*", u)
		}
		text = strings.ReplaceAll(text, "/usr/bin/", bin+"/")
		if err := os.WriteFile(filepath.Join(dir, u), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runCmd(t, nil, analyze, "verify", "--man=no", filepath.Join(dir, u))
		if code != 0 || strings.TrimSpace(stdout+stderr) != "" {
			t.Errorf("systemd-analyze verify %s: exit %d\n%s%s", u, code, stdout, stderr)
		}
	}
	// The check can fail: a misspelt directive and a missing binary.
	bad := strings.Replace(readFile(t, "contrib/systemd/"+units[0]), "ProtectHome=yes", "ProtectHome=bogus\nProtectHomme=yes", 1)
	os.WriteFile(filepath.Join(dir, "bad.service"), []byte(bad), 0o644)
	if stdout, stderr, code := runCmd(t, nil, analyze, "verify", "--man=no", filepath.Join(dir, "bad.service")); code == 0 &&
		!strings.Contains(stdout+stderr, "ProtectHomme") {
		t.Errorf("systemd-analyze verify accepted a broken unit silently: %s%s", stdout, stderr)
	}
}

// TestContribSystemdSettings checks what the units promise the operator.
func TestContribSystemdSettings(t *testing.T) {
	defaults, err := config.LoadFiles(nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := defaults.ProcessSettings()
	if err != nil {
		t.Fatal(err)
	}
	stop := ps.Process.StopTimeout
	for _, u := range units {
		s := unitSettings(t, u)
		one := func(key string) string {
			t.Helper()
			if len(s[key]) != 1 {
				t.Errorf("%s: %s = %q, want exactly one", u, key, s[key])
				return ""
			}
			return s[key][0]
		}
		want := map[string]string{
			"User": "haproxystats", "Group": "haproxystats",
			"Environment":     "CONFIG=/etc/haproxystats.conf",
			"Restart":         "on-failure",
			"KillSignal":      "SIGTERM",
			"ProtectSystem":   "strict",
			"ReadWritePaths":  "/var/lib/haproxystats",
			"NoNewPrivileges": "yes", "PrivateTmp": "yes", "ProtectHome": "yes",
			"ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
			"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
			"LockPersonality":         "yes",
		}
		for k, v := range want {
			if got := one(k); got != v {
				t.Errorf("%s: %s=%s, want %s", u, k, got, v)
			}
		}
		exec := one("ExecStart")
		if !strings.HasSuffix(exec, " -f ${CONFIG}") {
			t.Errorf("%s: ExecStart=%s does not end in -f ${CONFIG}", u, exec)
		}
		// A stop of process and of the one daemon waits up to
		// [process] stop-timeout for deliveries; pull's cancels its round
		// at once and waits at most publish.StopTimeout for the snapshot
		// record in flight (destination = kafka or both).
		bound := stop
		if u == "haproxystats-pull.service" {
			bound = publish.StopTimeout
		}
		var sec int
		if _, err := fmt.Sscanf(one("TimeoutStopSec"), "%d", &sec); err != nil || time.Duration(sec)*time.Second <= bound ||
			time.Duration(sec)*time.Second > bound+15*time.Second {
			t.Errorf("%s: TimeoutStopSec=%s does not match the graceful stop bound %v (want above it by at most 15 s)", u, one("TimeoutStopSec"), bound)
		}
		pulls := u != "haproxystats-process.service"
		if got := slices.Contains(s["SupplementaryGroups"], "haproxy"); got != pulls {
			t.Errorf("%s: SupplementaryGroups=haproxy is %v, want %v (only the units that read the sockets)", u, got, pulls)
		}
		// wazero compiles WASM stages into executable memory: only the
		// unit that runs no stage may deny it.
		mdwe := len(s["MemoryDenyWriteExecute"]) > 0
		if mdwe != (u == "haproxystats-pull.service") {
			t.Errorf("%s: MemoryDenyWriteExecute set = %v; it must be set only on haproxystats-pull.service", u, mdwe)
		}
	}
	if s := unitSettings(t, "haproxystats.service"); !strings.Contains(strings.Join(s["ExecStart"], ""), "/usr/bin/haproxystats-engine run --pull -f ${CONFIG}") ||
		!strings.Contains(strings.Join(s["Conflicts"], " "), "haproxystats-pull.service") {
		t.Errorf("haproxystats.service: ExecStart %q, Conflicts %q", s["ExecStart"], s["Conflicts"])
	}
}

// TestContribSocketOnReadOnlyMount backs the units' claim that
// ProtectSystem=strict, which mounts /run read-only, leaves the stats
// sockets reachable: a user other than root connects to a UNIX socket
// (mode 660, its group) inside a read-only bind mount, in a private mount
// namespace as systemd sets up. Root only (mount namespaces).
func TestContribSocketOnReadOnlyMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root for a private mount namespace (unshare -m)")
	}
	unshare := need(t, "unshare", "util-linux")
	need(t, "setpriv", "util-linux")
	need(t, "mount", "mount")
	dir, err := os.MkdirTemp("", "hsro")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Owner root, group nogroup, mode 660: reachable through the group only,
	// as HAProxy's socket is through the haproxy group.
	const uid, gid = 65534, 65534
	os.Chown(sock, 0, gid)
	os.Chmod(sock, 0o660)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	// The client is this test binary, copied where uid 65534 can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	client := filepath.Join(dir, "client")
	if err := os.WriteFile(client, data, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`set -e
mount --bind %[1]s %[1]s
mount -o remount,bind,ro %[1]s
if touch %[1]s/probe 2>/dev/null; then echo "mount is not read-only"; exit 9; fi
exec setpriv --reuid=%[2]d --regid=%[3]d --clear-groups %[4]s -test.run='^TestContribSocketClient$'`, dir, uid, gid, client)
	cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "CONTRIB_HELPER=connect", "CONTRIB_SOCKET="+sock)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unshare failed") {
		t.Skipf("SKIPPING: no mount namespace here: %s", out)
	}
	if err != nil || !strings.Contains(string(out), "CONNECTED hello") {
		t.Fatalf("connect as uid %d through a read-only mount: %v\n%s", uid, err, out)
	}
}

// TestContribSocketClient is the client of TestContribSocketOnReadOnlyMount,
// run in its namespace under another user; it does nothing otherwise.
func TestContribSocketClient(t *testing.T) {
	if os.Getenv("CONTRIB_HELPER") != "connect" {
		t.Skip("helper of TestContribSocketOnReadOnlyMount")
	}
	c, err := net.Dial("unix", os.Getenv("CONTRIB_SOCKET"))
	if err != nil {
		t.Fatalf("uid %d: %v", os.Getuid(), err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	fmt.Printf("CONNECTED %s", buf[:n])
}
