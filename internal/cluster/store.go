package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// Store keeps the files of the buckets under one directory, the
// aggregator's own ([kafka] consumer-dir/_cluster):
//
//	<dir>/<cluster>/<bucket>/hosts/<host>/<file>            the files of the member that counts for host
//	<dir>/<cluster>/<bucket>/view/<bucket>/<host>.<file>    the snapshot of one emission, which the pipeline reads
//
// Every file is a hard link to the host snapshot's file (a copy across
// file systems), so a bucket costs no disk space while its hosts'
// snapshots are on disk, and keeps its files when the source removes
// them (a late host recomputes the bucket from them). A view is made anew
// for each emission, so a host added or replaced while the previous one
// is being read changes nothing under the reader. A Store is not safe for
// concurrent use; its caller serialises it with the Aggregator.
type Store struct {
	dir string
}

// OpenStore removes what an earlier run left in dir (its buckets are
// built again from the snapshots, which were not reported delivered) and
// creates it.
func OpenStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("cluster: empty store directory")
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("cluster: remove what an earlier run left in %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: create %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) bucketDir(k Key) string {
	return filepath.Join(s.dir, k.Cluster, strconv.FormatInt(k.Bucket, 10))
}

// AddHost makes the snapshot files of the directory src (<socket>_info and
// <socket>_stat regular files) the files of host in bucket k, replacing
// what host had there.
func (s *Store) AddHost(k Key, host, src string) error {
	hd := filepath.Join(s.bucketDir(k), "hosts", host)
	if err := os.RemoveAll(hd); err != nil {
		return fmt.Errorf("cluster: bucket %v: replace the files of %s: %w", k, host, err)
	}
	if err := os.MkdirAll(hd, 0o755); err != nil {
		return fmt.Errorf("cluster: bucket %v: %w", k, err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("cluster: bucket %v: host %s: %w", k, host, err)
	}
	for _, e := range entries {
		if spool.CheckFileName(e.Name()) != nil || !e.Type().IsRegular() {
			continue
		}
		if err := spool.LinkOrCopy(filepath.Join(src, e.Name()), filepath.Join(hd, e.Name())); err != nil {
			return fmt.Errorf("cluster: bucket %v: host %s: %w", k, host, err)
		}
	}
	return nil
}

// View makes the snapshot directory of emission e, named by its bucket:
// every file of every host of e, as <host>.<file> (the pipeline then
// aggregates across host x process as it does across processes), and
// returns its path. A file name that two hosts would share (host "a" with
// "b.x_stat" and host "a.b" with "x_stat") fails the view.
func (s *Store) View(e Emission) (string, error) {
	views := filepath.Join(s.bucketDir(e.Key), "view")
	if err := os.RemoveAll(views); err != nil {
		return "", fmt.Errorf("cluster: bucket %v: remove the previous view: %w", e.Key, err)
	}
	dir := filepath.Join(views, strconv.FormatInt(e.Bucket, 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cluster: bucket %v: %w", e.Key, err)
	}
	for _, h := range e.Hosts {
		hd := filepath.Join(s.bucketDir(e.Key), "hosts", h.Name)
		files, err := os.ReadDir(hd)
		if err != nil {
			return "", fmt.Errorf("cluster: bucket %v: host %s: %w", e.Key, h.Name, err)
		}
		for _, f := range files {
			err := spool.LinkOrCopy(filepath.Join(hd, f.Name()), filepath.Join(dir, h.Name+"."+f.Name()))
			if errors.Is(err, fs.ErrExist) {
				err = fmt.Errorf("file %s.%s: another host has a file of that name", h.Name, f.Name())
			}
			if err != nil {
				return "", fmt.Errorf("cluster: bucket %v: view of host %s: %w", e.Key, h.Name, err)
			}
		}
	}
	return dir, nil
}

// Remove removes bucket k's files (and its cluster's directory once
// empty).
func (s *Store) Remove(k Key) error {
	if err := os.RemoveAll(s.bucketDir(k)); err != nil {
		return fmt.Errorf("cluster: remove bucket %v: %w", k, err)
	}
	os.Remove(filepath.Join(s.dir, k.Cluster)) // fails while another bucket is there
	return nil
}
