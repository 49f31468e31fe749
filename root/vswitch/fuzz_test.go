package vswitch

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
)

// fuzzPorts: three ports without AllowSpoofing and one with it.
var fuzzPorts = []PortConfig{
	{Name: "vm0", MAC: mac(1), QueueLen: 4},
	{Name: "vm1", MAC: mac(2), QueueLen: 4},
	{Name: "vm2", MAC: mac(3), QueueLen: 4},
	{Name: "root", MAC: mac(10), QueueLen: 4, AllowSpoofing: true},
}

// fuzzAddrs are the addresses a selector byte below len(fuzzAddrs) picks,
// so the fuzzer reaches the interesting cases without guessing MACs.
var fuzzAddrs = []MAC{mac(1), mac(2), mac(3), mac(10), Broadcast, {0x01, 0x00, 0x5e, 0, 0, 1}, {0x02, 0, 0, 0, 0, 1}, {0x02, 0, 0, 0, 0, 2}}

// fuzzSizes are the lengths a length byte of 240 and above picks.
var fuzzSizes = []int{MinFrameSize - 1, MinFrameSize, 60, 1514, 1518, MaxFrameSize, MaxFrameSize + 1}

// sent is what the fuzz harness handed a port: the frame is identified
// by the op number it carries in its EtherType field, which the switch
// never reads.
type sent struct {
	from     int
	frame    string
	accepted bool
}

// fuzzChecker is the Endpoint of each fuzz port: it checks every delivery
// against what was sent.
type fuzzChecker struct {
	mu   sync.Mutex
	sent map[uint16]*sent
	errs []string
}

type fuzzEndpoint struct {
	c    *fuzzChecker
	port int
}

func (e fuzzEndpoint) Deliver(frame []byte) {
	c := e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	fail := func(format string, args ...any) {
		c.errs = append(c.errs, fmt.Sprintf("to %s: ", fuzzPorts[e.port].Name)+fmt.Sprintf(format, args...))
	}
	if len(frame) < MinFrameSize || len(frame) > MaxFrameSize {
		fail("%d-byte frame", len(frame))
		return
	}
	op := binary.BigEndian.Uint16(frame[12:14])
	s, ok := c.sent[op]
	switch {
	case !ok:
		fail("frame of op %d never sent", op)
		return
	case s.frame != string(frame):
		fail("op %d changed in transit", op)
	case s.from == e.port:
		fail("op %d delivered back to its sender", op)
	case !s.accepted:
		fail("op %d delivered though Send refused it", op)
	}
	sa, da := src(frame), dst(frame)
	if sa.IsMulticast() {
		fail("op %d: group source %v", op, sa)
	}
	from := fuzzPorts[s.from]
	if !from.AllowSpoofing && sa != from.MAC {
		fail("op %d: spoofed source %v from %s", op, sa, from.Name)
	}
	for i, p := range fuzzPorts {
		if i != s.from && sa == p.MAC {
			fail("op %d: %s sent from %s's address", op, from.Name, p.Name)
		}
		if da == p.MAC && i != e.port {
			fail("op %d: unicast for %s delivered elsewhere", op, p.Name)
		}
	}
}

// FuzzSwitch sends arbitrary frames from arbitrary ports. Each op is
// [port, dst selector, src selector, length, n, n content bytes]: the
// content fills the frame from its start; a selector below len(fuzzAddrs)
// then overwrites the address with a known one; a length of 240 and above
// picks one of fuzzSizes. No frame may panic the switch, reach its sender,
// reach anyone with a spoofed or group source, reach anyone but the owner
// of a connected port's address, or arrive changed; the counters must
// account for every Send.
func FuzzSwitch(f *testing.F) {
	f.Add([]byte{0, 1, 0, 60, 0, 3, 4, 0, 60, 0, 0, 0, 60, 0, 1, 2, 3, 60, 0})
	// The root sends from a learned address, from vm1's and from a group
	// address; vm1 sends raw addresses.
	f.Add([]byte{3, 4, 6, 60, 0, 0, 6, 0, 60, 0, 3, 6, 1, 60, 0, 3, 4, 5, 60, 0, 1, 99, 99, 20, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{2, 4, 2, 245, 0, 2, 4, 2, 246, 0, 2, 0, 9, 240, 0, 3, 3, 3, 241, 0})
	f.Add([]byte{3, 7, 6, 60, 0, 3, 7, 7, 60, 0, 0, 7, 0, 60, 0, 3, 0, 7, 60, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &fuzzChecker{sent: map[uint16]*sent{}}
		s := New("fuzz", nil)
		ports := make([]*Port, len(fuzzPorts))
		for i, cfg := range fuzzPorts {
			p, err := s.Connect(cfg, fuzzEndpoint{c: c, port: i})
			if err != nil {
				t.Fatal(err)
			}
			ports[i] = p
		}
		sends := make([]uint64, len(ports))
		for op := uint16(0); len(data) >= 5 && op < 1000; op++ {
			from := int(data[0]) % len(ports)
			size := int(data[3])
			if size >= 240 {
				size = fuzzSizes[(size-240)%len(fuzzSizes)]
			}
			frame := make([]byte, size)
			content := data[5:]
			content = content[:min(int(data[4]), len(content))]
			copy(frame, content)
			if size >= 12 {
				if sel := int(data[1]); sel < len(fuzzAddrs) {
					copy(frame[0:6], fuzzAddrs[sel][:])
				}
				if sel := int(data[2]); sel < len(fuzzAddrs) {
					copy(frame[6:12], fuzzAddrs[sel][:])
				}
			}
			if size >= 14 {
				binary.BigEndian.PutUint16(frame[12:14], op)
			}
			data = data[5+len(content):]
			rec := &sent{from: from, frame: string(frame), accepted: true}
			c.mu.Lock()
			c.sent[op] = rec
			c.mu.Unlock()
			ok := ports[from].Send(frame)
			c.mu.Lock()
			rec.accepted = ok
			c.mu.Unlock()
			sends[from]++
		}
		quiesce(t, s) // every accepted frame forwarded and delivered or dropped
		s.Close()
		for _, e := range c.errs {
			t.Error(e)
		}
		for i, p := range ports {
			st := p.Stats()
			if got := st.TxFrames + st.TxDropped + st.MalformedDropped + st.SpoofDropped; got < sends[i] {
				t.Errorf("%s: %d sends, counters account for %d: %+v", fuzzPorts[i].Name, sends[i], got, st)
			}
		}
	})
}
