package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
)

// Bounds used by the Kafka helpers.
const (
	// KafkaBuildTimeout bounds `go build` of the broker.
	KafkaBuildTimeout = 5 * time.Minute
	// KafkaStartTimeout bounds the wait for the broker to accept
	// connections.
	KafkaStartTimeout = 20 * time.Second
	// KafkaStopTimeout is how long Stop waits after SIGTERM (the broker
	// writes its data directory) before SIGKILL.
	KafkaStopTimeout = 10 * time.Second
	// KcatTimeout bounds one kcat run.
	KcatTimeout = 60 * time.Second
)

// kafkaBrokerPkg is the broker's main: franz-go's kfake in a process.
const kafkaBrokerPkg = "github.com/haproxystats-go/haproxystats/internal/testenv/kafkabroker"

// KafkaConfig describes a broker to start.
type KafkaConfig struct {
	// Topics are created at the first start, each with Partitions
	// partitions (0 means 1).
	Topics     []string
	Partitions int
	// AutoCreateTopics lets a client create a topic by asking for it.
	AutoCreateTopics bool
	// TLS makes the listener speak TLS with a certificate for 127.0.0.1
	// signed by a CA of the test (Kafka.TLS); with ClientCert the broker
	// also requires a client certificate signed by that CA.
	TLS, ClientCert bool
	// SASL requires authentication by one of these users.
	SASL []KafkaUser
	// BrokerConfigs are broker configurations, e.g. message.max.bytes
	// (Kafka's default 1048588 applies without it, as in kfake).
	BrokerConfigs map[string]string
}

// KafkaUser is a SASL user of the broker.
type KafkaUser struct {
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	User      string
	Password  string
}

// TLSFiles are PEM files made for a test: a CA, a server certificate for
// 127.0.0.1 and localhost, and a client certificate, all signed by the CA.
type TLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// Kafka is a Kafka wire-protocol broker (kfake) running as its own process
// on 127.0.0.1, under the test's user, with a data directory that keeps
// records, topics and producer state across Stop and Start.
type Kafka struct {
	t       testing.TB
	bin     string
	dir     string
	dataDir string
	port    int
	conf    KafkaConfig
	tls     TLSFiles

	mu sync.Mutex
	p  *process
}

// StartKafka starts a broker with one topic, "haproxystats-metrics", of one
// partition. See StartKafkaWith.
func StartKafka(t testing.TB) *Kafka {
	t.Helper()
	return StartKafkaWith(t, KafkaConfig{Topics: []string{"haproxystats-metrics"}})
}

// StartKafkaWith builds the broker (go build into t.TempDir()), starts it
// on a free loopback port and waits (at most KafkaStartTimeout) until it
// accepts connections. It is stopped by PID when the test ends. It skips
// the test when the Go tool is not available.
func StartKafkaWith(t testing.TB, cfg KafkaConfig) *Kafka {
	t.Helper()
	k := NewKafka(t, cfg)
	if err := startOnFreePorts(t, "kafka broker", func() error {
		k.port = FreePort(t)
		return k.start()
	}); err != nil {
		t.Fatalf("kafka broker did not start: %v; output:\n%s", err, k.Log())
	}
	return k
}

// NewKafka builds the broker and chooses its port without starting it
// (Start does), for tests where the broker is down at first.
func NewKafka(t testing.TB, cfg KafkaConfig) *Kafka {
	t.Helper()
	k := &Kafka{t: t, bin: KafkaBrokerBinary(t), dir: t.TempDir(), conf: cfg, port: FreePort(t)}
	k.dataDir = filepath.Join(k.dir, "data")
	if cfg.TLS {
		k.tls = WriteTLSFiles(t, k.dir)
	}
	t.Cleanup(k.Stop)
	return k
}

// KafkaBrokerBinary builds the broker into t.TempDir() and returns its
// path; the Go build cache makes the builds after the first one quick. It
// skips the test when the go command cannot be found (fails it under CI).
func KafkaBrokerBinary(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		Missing(t, "SKIPPING INTEGRATION TEST: the go command is not in PATH; it builds the Kafka test broker (kfake)")
	}
	out := filepath.Join(t.TempDir(), "kafkabroker")
	ctx, cancel := context.WithTimeout(context.Background(), KafkaBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, kafkaBrokerPkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", kafkaBrokerPkg, err, msg)
	}
	return out
}

func (k *Kafka) args() []string {
	args := []string{"-port", strconv.Itoa(k.port), "-data-dir", k.dataDir,
		"-partitions", strconv.Itoa(max(k.conf.Partitions, 1))}
	for _, topic := range k.conf.Topics {
		args = append(args, "-topic", topic)
	}
	if k.conf.AutoCreateTopics {
		args = append(args, "-auto-create-topics")
	}
	if k.conf.TLS {
		args = append(args, "-tls-cert", k.tls.ServerCert, "-tls-key", k.tls.ServerKey)
		if k.conf.ClientCert {
			args = append(args, "-tls-client-ca", k.tls.CA)
		}
	}
	for _, u := range k.conf.SASL {
		args = append(args, "-sasl", u.Mechanism+":"+u.User+":"+u.Password)
	}
	for key, v := range k.conf.BrokerConfigs {
		args = append(args, "-broker-config", key+"="+v)
	}
	return args
}

func (k *Kafka) start() error {
	p, err := startProcess(k.dir, k.bin, k.args()...)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.p = p
	k.mu.Unlock()
	want := fmt.Sprintf("listening 127.0.0.1:%d\n", k.port)
	err = p.waitReady(KafkaStartTimeout, func() error {
		if !strings.Contains(p.output(), want) {
			return fmt.Errorf("no %q line yet", strings.TrimSpace(want))
		}
		c, err := net.DialTimeout("tcp", k.Addr(), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		p.stop(k.t, KafkaStopTimeout)
		return err
	}
	return nil
}

// Start starts the broker again after Stop or Kill (or first, after
// NewKafka), on the same port and data directory.
func (k *Kafka) Start() {
	k.t.Helper()
	if k.PID() != 0 {
		k.t.Fatalf("kafka broker pid %d is already running", k.PID())
	}
	if err := k.start(); err != nil {
		k.t.Fatalf("kafka broker did not start on port %d: %v; output:\n%s", k.port, err, k.Log())
	}
}

// Stop stops the broker by PID: SIGTERM (it writes its data directory),
// then SIGKILL if it has not exited within KafkaStopTimeout. Safe to call
// more than once; called at cleanup.
func (k *Kafka) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.p != nil {
		k.p.stop(k.t, KafkaStopTimeout)
	}
}

// Kill kills the broker by PID with SIGKILL and waits for it to exit.
// What it had not written to its data directory is lost.
func (k *Kafka) Kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.p != nil {
		k.p.kill(k.t, KafkaStopTimeout)
	}
}

// Restart is Stop then Start: same port, same data directory.
func (k *Kafka) Restart() {
	k.t.Helper()
	k.Stop()
	k.Start()
}

// RestartWith stops the broker and starts it with another configuration on
// the same port and data directory (records and topics kept; Topics of cfg
// are created if missing). TLS files are kept, made if needed. librdkafka
// 2.0 (kcat) cannot authenticate to kfake, whose SaslHandshake starts at
// version 1: a test reads what it produced with SASL after restarting the
// broker without SASL.
func (k *Kafka) RestartWith(cfg KafkaConfig) {
	k.t.Helper()
	k.Stop()
	if cfg.TLS && k.tls.CA == "" {
		k.tls = WriteTLSFiles(k.t, k.dir)
	}
	k.conf = cfg
	k.Start()
}

// Addr is the broker's address, 127.0.0.1:PORT.
func (k *Kafka) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port)) }

// Port is the broker's loopback TCP port.
func (k *Kafka) Port() int { return k.port }

// TLS returns the PEM files of a broker started with KafkaConfig.TLS.
func (k *Kafka) TLS() TLSFiles { return k.tls }

// PID returns the broker's process id, or 0 when it is not running.
func (k *Kafka) PID() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.p.pid()
}

// Log returns what the broker wrote on stdout and stderr since its last
// start.
func (k *Kafka) Log() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.p.output()
}

// KcatArgs are the librdkafka settings (-X ...) kcat needs to reach this
// broker: TLS with the test's CA (and client certificate), SASL as the
// first user.
func (k *Kafka) KcatArgs() []string {
	var args []string
	proto := "plaintext"
	if k.conf.TLS {
		proto = "ssl"
		args = append(args, "-X", "ssl.ca.location="+k.tls.CA)
		if k.conf.ClientCert {
			args = append(args, "-X", "ssl.certificate.location="+k.tls.ClientCert, "-X", "ssl.key.location="+k.tls.ClientKey)
		}
	}
	if len(k.conf.SASL) > 0 {
		u := k.conf.SASL[0]
		proto = "sasl_" + proto
		args = append(args, "-X", "sasl.mechanisms="+u.Mechanism, "-X", "sasl.username="+u.User, "-X", "sasl.password="+u.Password)
	}
	return append(args, "-X", "security.protocol="+proto)
}

// ConfigSection returns a [kafka] section of haproxystats.conf that reaches
// this broker and produces to topic, with the broker's TLS files and its
// first SASL user, for tests of the daemons.
func (k *Kafka) ConfigSection(topic string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[kafka]\nbrokers = %s\ntopic = %s\nretry-backoff = 0.05\nretry-backoff-max = 0.5\n", k.Addr(), topic)
	if k.conf.TLS {
		fmt.Fprintf(&b, "tls-ca-file = %s\n", k.tls.CA)
		if k.conf.ClientCert {
			fmt.Fprintf(&b, "tls-cert-file = %s\ntls-key-file = %s\n", k.tls.ClientCert, k.tls.ClientKey)
		}
	}
	if len(k.conf.SASL) > 0 {
		u := k.conf.SASL[0]
		fmt.Fprintf(&b, "sasl-mechanism = %s\nsasl-user = %s\nsasl-password = %s\n", u.Mechanism, u.User, u.Password)
	}
	return b.String()
}

// KafkaLines joins the values of records: the lines they carry.
func KafkaLines(recs []KafkaRecord) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		b.WriteString(r.Value)
	}
	return b.Bytes()
}

// KafkaRecord is one record read back by KcatConsume.
type KafkaRecord struct {
	Partition int32
	Offset    int64
	Key       string // "" when the record has no key
	Value     string
}

// KcatBinary returns the path of kcat, or skips the test with a loud
// message when it is not installed (fails it under CI: see Missing).
func KcatBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		Missing(t, "SKIPPING INTEGRATION TEST: kcat not found in PATH; "+
			"install it with `apt-get install kcat` (or run .ci/install-deps as root) to run this test")
	}
	return path
}

// KcatConsume reads every record of topic, from the beginning of each
// partition to its end at the time of the call, with kcat (librdkafka: a
// client independent of the producer under test), in JSON mode. extra are
// more kcat arguments, e.g. Kafka.KcatArgs(). It fails the test if kcat
// fails or runs longer than KcatTimeout.
func KcatConsume(t testing.TB, addr, topic string, extra ...string) []KafkaRecord {
	t.Helper()
	bin := KcatBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), KcatTimeout)
	defer cancel()
	args := append([]string{"-C", "-J", "-q", "-e", "-o", "beginning", "-b", addr, "-t", topic}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var recs []KafkaRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var m struct {
			Partition int32   `json:"partition"`
			Offset    int64   `json:"offset"`
			Key       *string `json:"key"`
			Payload   *string `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("kcat output line %q: %v", sc.Text(), err)
		}
		r := KafkaRecord{Partition: m.Partition, Offset: m.Offset}
		if m.Key != nil {
			r.Key = *m.Key
		}
		if m.Payload != nil {
			r.Value = *m.Payload
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read kcat output: %v", err)
	}
	return recs
}

// WriteTLSFiles writes, into dir, a new CA and a server and a client
// certificate signed by it (ECDSA P-256, valid for an hour; the server's
// for 127.0.0.1, ::1 and localhost), as PEM files.
func WriteTLSFiles(t testing.TB, dir string) TLSFiles {
	t.Helper()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "haproxystats test CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	files := TLSFiles{CA: write("ca.pem", "CERTIFICATE", caDER)}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (cert, key string) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	files.ServerCert, files.ServerKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	files.ClientCert, files.ClientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return files
}

// CompareAtLeastOnce compares produced lines with expected ones by the
// corpus rules (enginetest.Compare), allowing duplicates: a (path,
// timestamp) key produced more often than expected with the same value as
// its first occurrence (equal numbers, relative 1e-9) is counted in dups
// instead of reported as extra, as a replay after a failure sends it again. It returns the mismatches that
// count and the number of duplicates.
func CompareAtLeastOnce(expected, produced []byte) (mismatches []enginetest.Mismatch, dups int) {
	want := map[string]int{}
	for _, l := range bytes.Split(expected, []byte{'\n'}) {
		if f := strings.Split(string(l), " "); len(f) == 3 {
			want[f[0]+" "+f[2]]++
		}
	}
	seen := map[string]int{}
	first := map[string]string{}
	var uniq bytes.Buffer
	for _, l := range bytes.Split(produced, []byte{'\n'}) {
		if len(l) == 0 {
			continue
		}
		if f := strings.Split(string(l), " "); len(f) == 3 {
			key := f[0] + " " + f[2]
			if seen[key] >= max(want[key], 1) && sameValue(first[key], f[1]) {
				dups++
				continue
			}
			if seen[key] == 0 {
				first[key] = f[1]
			}
			seen[key]++
		}
		uniq.Write(l)
		uniq.WriteByte('\n')
	}
	for _, m := range enginetest.Compare(expected, uniq.Bytes(), false) {
		if m.Counted {
			mismatches = append(mismatches, m)
		}
	}
	return mismatches, dups
}

// sameValue reports whether two values of a metric line are the same
// number (within a relative 1e-9, NaN equal to NaN) or the same text.
func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	if math.IsNaN(x) || math.IsNaN(y) {
		return math.IsNaN(x) && math.IsNaN(y)
	}
	return math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
}

// KafkaRecords reads every record of topic with a franz-go client, from
// the start of each partition to its end at the time of the call (the
// high watermarks are listed first), in partition then offset order. It
// keeps values byte for byte (kcat's JSON output does not, for binary
// values such as snapshot records). opts are more client options (TLS,
// SASL). It fails the test on any error or after KcatTimeout.
func KafkaRecords(t testing.TB, addr, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), KcatTimeout)
	defer cancel()
	base := append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DisableClientMetrics()}, opts...)
	admin, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := partitionEnds(ctx, admin, topic)
	admin.Close()
	if err != nil {
		t.Fatalf("list the ends of topic %s: %v", topic, err)
	}
	from := map[int32]kgo.Offset{}
	left := 0
	for p, end := range ends {
		if end > 0 {
			from[p] = kgo.NewOffset().AtStart()
			left++
		}
	}
	if left == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(base, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxBytes(256<<20), kgo.BrokerMaxReadBytes(512<<20))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	byPartition := map[int32][]*kgo.Record{}
	for left > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read topic %s: %d partitions not read to their end within %v", topic, left, KcatTimeout)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("read topic %s partition %d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			byPartition[r.Partition] = append(byPartition[r.Partition], r)
			if r.Offset == ends[r.Partition]-1 {
				left--
			}
		})
	}
	var out []*kgo.Record
	for p := range int32(len(ends)) {
		out = append(out, byPartition[p]...)
	}
	return out
}

// partitionEnds returns the high watermark of every partition of topic.
func partitionEnds(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if len(mresp.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %d topics", len(mresp.Topics))
	}
	if err := kerr.ErrorForCode(mresp.Topics[0].ErrorCode); err != nil {
		return nil, err
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range mresp.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition = p.Partition
		lp.Timestamp = -1 // the end
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	lresp, err := lo.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	for _, rt := range lresp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, fmt.Errorf("partition %d: %w", rp.Partition, err)
			}
			ends[rp.Partition] = rp.Offset
		}
	}
	return ends, nil
}
