package hostnet

import (
	"encoding/binary"
	"testing"
)

// frame builds an Ethernet frame to macA from macB.
func frame(ethertype uint16, payload ...byte) []byte {
	f := append(append(append([]byte{}, macA[:]...), macB[:]...), byte(ethertype>>8), byte(ethertype))
	return append(f, payload...)
}

// ipHeader is a minimal IPv4 header (checksum filled) from addrB to addrA.
func ipHeader(proto byte, payload ...byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1}
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(payload)))
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	return append(h, payload...)
}

// FuzzDeliver feeds arbitrary frames to an attached stack listening on a
// TCP port: nothing may panic, and every frame is counted.
func FuzzDeliver(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 13))
	f.Add(frame(0x0806, 0, 1, 8, 0, 6, 4, 0, 1, // ARP request who-has 10.0.0.1
		0x00, 0x15, 0x5d, 0, 0, 2, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1))
	f.Add(frame(0x0800, ipHeader(1, 8, 0, 0xf7, 0xfe, 0, 1, 0, 0)...))                                                       // ICMP echo
	f.Add(frame(0x0800, ipHeader(6, 0x30, 0x39, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0)...)) // SYN to 8080
	f.Add(frame(0x0800, ipHeader(17, 0x30, 0x39, 0, 53, 0, 8, 0, 0)...))                                                     // UDP
	f.Add(frame(0x0800, 0x4f, 0xff))                                                                                         // truncated header
	f.Add(frame(0x86dd, make([]byte, 40)...))                                                                                // IPv6: no such protocol
	s := newStack(f, macA, addrA)
	s.Attach(UplinkFunc(func([]byte) bool { return true }))
	l, err := s.Listen(8080)
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		before := s.Stats().FramesIn
		s.Deliver(data)
		if got := s.Stats().FramesIn; got != before+1 {
			t.Fatalf("frames in %d after %d", got, before)
		}
	})
}
