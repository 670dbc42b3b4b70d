//go:build linux

package graphite

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unacked returns the number of bytes written to conn that the peer's TCP
// stack has not acknowledged yet: ioctl(SIOCOUTQ), which Linux computes as
// write_seq - snd_una. A connection that exposes no file descriptor counts
// as fully acknowledged.
func unacked(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ioctlErr error
	if err := raw.Control(func(fd uintptr) {
		n, ioctlErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	}); err != nil {
		return 0, err
	}
	if ioctlErr != nil {
		return 0, ioctlErr
	}
	return n, nil
}
