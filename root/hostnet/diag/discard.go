package diag

import (
	"io"
	"net"
)

// DiscardPort is the TCP port of the discard service (RFC 863).
const DiscardPort = 9

// MaxDiscardConns bounds the discard service's connections at once; one
// more is closed at once.
const MaxDiscardConns = 8

// ServeDiscard serves the discard protocol (RFC 863) on l until it is
// closed: every connection's bytes are read and thrown away, and once the
// peer has closed its side the service closes too, so a sender that
// half-closes and waits for EOF knows every byte arrived. It is what a
// guest measures its throughput to the root against.
func ServeDiscard(l net.Listener) error {
	slots := make(chan struct{}, MaxDiscardConns)
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		go func() {
			defer func() { <-slots }()
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}
