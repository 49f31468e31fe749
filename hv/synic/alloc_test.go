package synic

import (
	"testing"

	"gohv/hv/tlfs"
)

// countIntr is an Interrupter that does not allocate.
type countIntr struct{ n [256]int }

func (c *countIntr) Interrupt(v uint8)          { c.n[v]++ }
func (c *countIntr) SetAutoEOI(v uint8, o bool) {}

type nopMessage struct{}

func (nopMessage) Message(uint32, tlfs.MessageType, []byte) tlfs.Status { return tlfs.StatusSuccess }

type nopEvent struct{}

func (nopEvent) Event(uint32, uint16) tlfs.Status { return tlfs.StatusSuccess }

// TestHotPathsDoNotAllocate: what runs on the VM-exit path or on another
// goroutine's behalf — Post (delivered, queued, refused), Signal, EOI,
// EOM and the other MSRs, the timer callbacks, the ports — allocates
// nothing.
func TestHotPathsDoNotAllocate(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Interrupter = &countIntr{}; c.QueueDepth = 2 })
	r.enable(t)
	r.wr(t, tlfs.MsrSINT0+3, tlfs.SINTAutoEOI|0x40)
	s := r.s
	var ports Ports
	mustNil(t, ports.AddMessagePort(1, nopMessage{}))
	mustNil(t, ports.AddEventPort(2, nopEvent{}))
	mustNil(t, ports.AddSynICMessagePort(3, s, 4))
	mustNil(t, ports.AddSynICEventPort(4, s, 2, 0, 16))
	payload := make([]byte, 240)
	slot2 := uint64(simpGPA + 2*tlfs.MessageSize)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Post into a free slot", func() {
			s.Post(2, 1, 0, payload)
			r.ram.setU32(slot2, 0)
		}},
		{"Post queued, EOM delivers", func() {
			s.Post(2, 1, 0, payload)
			s.Post(2, 1, 0, payload)
			r.ram.setU32(slot2, 0)
			s.WriteMSR(tlfs.MsrEOM, 0)
			r.ram.setU32(slot2, 0)
		}},
		{"Post to a full queue", func() { s.Post(5, 1, 0, payload) }},
		{"Post refused", func() { s.Post(99, 1, 0, nil) }},
		{"EOI", func() { s.EOI(sintVector) }},
		{"Signal", func() {
			s.Signal(2, 77)
			s.Signal(2, 77)
			r.ram.setU32(siefGPA+2*tlfs.EventFlagsSize+8, 0)
		}},
		{"Signal refused", func() { s.Signal(7, 1) }},
		{"ReadMSR", func() { s.ReadMSR(tlfs.MsrSINT0 + 2); s.ReadMSR(0x4000_0085) }},
		{"WriteMSR SINT, SCONTROL, #GP", func() {
			s.WriteMSR(tlfs.MsrSINT0+3, tlfs.SINTAutoEOI|0x40)
			s.WriteMSR(tlfs.MsrSControl, 1)
			s.WriteMSR(tlfs.MsrSVersion, 0)
			s.WriteMSR(tlfs.MsrSINT0+3, 1)
		}},
		{"timer program and expiry", func() {
			s.WriteMSR(tlfs.MsrSTimer0Count, 1000)
			s.WriteMSR(tlfs.MsrSTimer0Config, directED|tlfs.STimerPeriodic|tlfs.STimerEnable)
			r.clock.Advance(5000)
		}},
		{"ports", func() {
			ports.PostMessage(0, tlfs.PostMessageInput{ConnectionID: 1, Type: 1, Payload: payload})
			ports.PostMessage(0, tlfs.PostMessageInput{ConnectionID: 9, Type: 1})
			ports.SignalEvent(0, tlfs.SignalEventInput{ConnectionID: 2})
			ports.SignalEvent(0, tlfs.SignalEventInput{ConnectionID: 4, FlagNumber: 3})
		}},
	} {
		// Fill SINT 5's queue for the full-queue case.
		for s.Queued(5) < 2 {
			s.WriteMSR(tlfs.MsrSINT0+5, 0x50)
			s.Post(5, 1, 0, nil)
		}
		if n := testing.AllocsPerRun(100, c.f); n != 0 {
			t.Errorf("%s: %v allocations", c.name, n)
		}
	}
}
