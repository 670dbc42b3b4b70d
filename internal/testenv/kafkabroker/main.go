// Command kafkabroker runs franz-go's kfake, an in-process implementation
// of the Kafka wire protocol, as a broker of its own for the tests
// (testenv.StartKafka builds and starts it). It is a test tool: no
// production binary imports kfake.
//
// Usage:
//
//	kafkabroker -port N [-data-dir DIR] [-topic NAME]... [-partitions N]
//	    [-auto-create-topics] [-tls-cert FILE -tls-key FILE [-tls-client-ca FILE]]
//	    [-sasl MECHANISM:USER:PASSWORD]... [-broker-config KEY=VALUE]...
//
// It listens on 127.0.0.1:N, prints "listening 127.0.0.1:N" on stdout
// once it accepts connections, and runs until SIGTERM or SIGINT, when it
// closes the cluster (writing its state to -data-dir) and exits 0. With
// -data-dir the records, topics and producer state survive a restart.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("kafkabroker", flag.ContinueOnError)
	port := fs.Int("port", 0, "loopback port to listen on (0: any)")
	dataDir := fs.String("data-dir", "", "directory keeping records, topics and producer state across restarts")
	partitions := fs.Int("partitions", 1, "partitions of each -topic")
	autoCreate := fs.Bool("auto-create-topics", false, "create a topic a client asks for (auto.create.topics.enable)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate (PEM) of the listener; with -tls-key")
	tlsKey := fs.String("tls-key", "", "TLS private key (PEM)")
	clientCA := fs.String("tls-client-ca", "", "require client certificates signed by this CA (PEM)")
	var topics, sasls, brokerConfigs list
	fs.Var(&topics, "topic", "topic to create at start (repeatable)")
	fs.Var(&brokerConfigs, "broker-config", "KEY=VALUE: a broker configuration, e.g. message.max.bytes=2000000 (repeatable)")
	fs.Var(&sasls, "sasl", "MECHANISM:USER:PASSWORD: require SASL, with this user (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*port)}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), topics...))
	}
	if len(brokerConfigs) > 0 {
		bc := map[string]string{}
		for _, kv := range brokerConfigs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintf(os.Stderr, "kafkabroker: -broker-config %q: want KEY=VALUE\n", kv)
				return 2
			}
			bc[k] = v
		}
		opts = append(opts, kfake.BrokerConfigs(bc))
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(*partitions))
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kafkabroker: load TLS key pair: %v\n", err)
			return 1
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if *clientCA != "" {
			pem, err := os.ReadFile(*clientCA)
			if err != nil {
				fmt.Fprintf(os.Stderr, "kafkabroker: %v\n", err)
				return 1
			}
			tc.ClientCAs = x509.NewCertPool()
			if !tc.ClientCAs.AppendCertsFromPEM(pem) {
				fmt.Fprintf(os.Stderr, "kafkabroker: no certificate in %s\n", *clientCA)
				return 1
			}
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
		opts = append(opts, kfake.TLS(tc))
	}
	if len(sasls) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, s := range sasls {
			parts := strings.SplitN(s, ":", 3)
			if len(parts) != 3 {
				fmt.Fprintf(os.Stderr, "kafkabroker: -sasl %q: want MECHANISM:USER:PASSWORD\n", s)
				return 2
			}
			opts = append(opts, kfake.Superuser(parts[0], parts[1], parts[2]))
		}
	}
	// Signals are caught before the cluster starts, so that a SIGTERM
	// sent as soon as the address is printed still closes it cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafkabroker: start cluster: %v\n", err)
		return 1
	}
	for _, a := range c.ListenAddrs() {
		fmt.Printf("listening %s\n", a)
	}
	<-sig
	c.Close()
	return 0
}
