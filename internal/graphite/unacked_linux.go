//go:build linux

package graphite

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unacked returns the number of bytes written to conn that the peer's TCP
// stack has not acknowledged yet: ioctl(SIOCOUTQ), which Linux computes as
// write_seq - snd_una. A connection that exposes no file descriptor counts
// as fully acknowledged.
//
// The count is trusted only while the connection is established (or the
// peer has only shut down its sending side): once it ended (a reset, say)
// what is outstanding will never be acknowledged, whatever the count
// says. The state is read after the queue, and a connection that is no
// longer established is an error: its waiters fail at that check, whether
// or not the connection's reader has noticed the end yet.
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
	var state uint8
	var ioctlErr error
	if err := raw.Control(func(fd uintptr) {
		if n, ioctlErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); ioctlErr != nil {
			return
		}
		var info *unix.TCPInfo
		if info, ioctlErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); ioctlErr == nil {
			state = info.State
		}
	}); err != nil {
		return 0, err
	}
	if ioctlErr != nil {
		return 0, ioctlErr
	}
	if state != tcpEstablished && state != tcpCloseWait {
		return 0, fmt.Errorf("%w: the connection is in TCP state %d", errNotEstablished, state)
	}
	return n, nil
}

// TCP states of Linux's include/net/tcp_states.h.
const (
	tcpEstablished = 1
	tcpCloseWait   = 8
)

// errNotEstablished is returned by unacked for a connection that ended.
var errNotEstablished = errors.New("connection no longer established")
