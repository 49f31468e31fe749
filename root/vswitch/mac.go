package vswitch

import (
	"errors"
	"fmt"
)

// MAC is an Ethernet address (IEEE 802-2014 8.2), in transmission order:
// MAC[0] is the first octet on the wire.
type MAC [6]byte

// Broadcast is the all-ones group address.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ErrBadMAC is wrapped by ParseMAC's errors.
var ErrBadMAC = errors.New("vswitch: bad MAC address")

// String formats m as six lower-case hex octets separated by colons,
// "00:15:5d:00:00:01".
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, o := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i] = hex[o>>4]
		b[3*i+1] = hex[o&0xf]
	}
	return string(b[:])
}

// IsMulticast reports the group bit, the least significant bit of the
// first octet (IEEE 802-2014 8.2.2, the I/G bit); broadcast is a group
// address too.
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsBroadcast reports the all-ones address.
func (m MAC) IsBroadcast() bool { return m == Broadcast }

// IsZero reports the all-zero address, which no port may have.
func (m MAC) IsZero() bool { return m == MAC{} }

// ParseMAC reads six hex octets separated by ':' or '-' (one separator
// throughout), either case: "00:15:5d:00:00:01", "00-15-5D-00-00-01".
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return m, fmt.Errorf("%w %q: want 17 characters, have %d", ErrBadMAC, s, len(s))
	}
	sep := s[2]
	if sep != ':' && sep != '-' {
		return m, fmt.Errorf("%w %q: separator %q, want ':' or '-'", ErrBadMAC, s, sep)
	}
	for i := range m {
		if i > 0 && s[3*i-1] != sep {
			return m, fmt.Errorf("%w %q: separator at %d is %q, want %q", ErrBadMAC, s, 3*i-1, s[3*i-1], sep)
		}
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 {
			return m, fmt.Errorf("%w %q: octet %d is not two hex digits", ErrBadMAC, s, i)
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
