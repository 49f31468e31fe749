package synic

import (
	"errors"
	"testing"

	"gohv/hv/tlfs"
)

// echoPort is a root message port with a bounded queue: the VMBus
// server's shape. It answers INSUFFICIENT_BUFFERS when full.
type echoPort struct {
	got   [][]byte
	vps   []uint32
	limit int
}

func (e *echoPort) Message(vp uint32, typ tlfs.MessageType, payload []byte) tlfs.Status {
	if len(e.got) == e.limit {
		return tlfs.StatusInsufficientBuffers
	}
	e.got = append(e.got, append([]byte{byte(typ)}, payload...)) // copy: payload is the guest's page
	e.vps = append(e.vps, vp)
	return tlfs.StatusSuccess
}

type eventPort struct {
	flags  []uint16
	status tlfs.Status
}

func (e *eventPort) Event(vp uint32, flag uint16) tlfs.Status {
	e.flags = append(e.flags, flag)
	return e.status
}

func post(conn uint32, typ tlfs.MessageType, payload string) tlfs.PostMessageInput {
	return tlfs.PostMessageInput{ConnectionID: conn, Type: typ, Payload: []byte(payload)}
}

// TestUnknownConnection: a connection ID the partition's table lacks is
// INVALID_CONNECTION_ID for both hypercalls (what Linux expects, research
// §3.5: it then tries the next VMBus version), also on an empty table and
// for a connection another partition's table holds.
func TestUnknownConnection(t *testing.T) {
	var empty, mine, theirs Ports
	if err := theirs.AddMessagePort(4, &echoPort{limit: 10}); err != nil {
		t.Fatal(err)
	}
	if err := theirs.AddEventPort(5, &eventPort{}); err != nil {
		t.Fatal(err)
	}
	if err := mine.AddMessagePort(1, &echoPort{limit: 10}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Ports{&empty, &mine} {
		if st := p.PostMessage(0, post(4, 1, "initiate contact")); st != tlfs.StatusInvalidConnectionID {
			t.Fatalf("PostMessage: %v", st)
		}
		if st := p.SignalEvent(0, tlfs.SignalEventInput{ConnectionID: 5}); st != tlfs.StatusInvalidConnectionID {
			t.Fatalf("SignalEvent: %v", st)
		}
	}
}

// TestRootPorts: messages and events reach the root's handlers with the
// sending VP, and the handlers' statuses come back as they are, a full
// queue's INSUFFICIENT_BUFFERS included (a flood is the handler's
// business).
func TestRootPorts(t *testing.T) {
	var p Ports
	echo := &echoPort{limit: 2}
	ev := &eventPort{status: tlfs.StatusSuccess}
	if err := p.AddMessagePort(4, echo); err != nil {
		t.Fatal(err)
	}
	if err := p.AddEventPort(0x12_3456, ev); err != nil {
		t.Fatal(err)
	}
	for i, want := range []tlfs.Status{tlfs.StatusSuccess, tlfs.StatusSuccess, tlfs.StatusInsufficientBuffers} {
		if st := p.PostMessage(uint32(i), post(4, 1, "m")); st != want {
			t.Fatalf("post %d: %v, want %v", i, st, want)
		}
	}
	if len(echo.got) != 2 || string(echo.got[1]) != "\x01m" || echo.vps[1] != 1 {
		t.Fatalf("handler got %q from %v", echo.got, echo.vps)
	}
	if st := p.SignalEvent(3, tlfs.SignalEventInput{ConnectionID: 0x12_3456, FlagNumber: 9}); st != tlfs.StatusSuccess {
		t.Fatal(st)
	}
	ev.status = tlfs.StatusInvalidParameter
	if st := p.SignalEvent(3, tlfs.SignalEventInput{ConnectionID: 0x12_3456, FlagNumber: 0xffff}); st != tlfs.StatusInvalidParameter {
		t.Fatal(st)
	}
	if len(ev.flags) != 2 || ev.flags[1] != 0xffff {
		t.Fatalf("event handler saw %v", ev.flags)
	}
}

// TestPortKindAndInput: a message to an event port, or an event to a
// message port, is INVALID_PORT_ID; a bad message type or size is
// INVALID_PARAMETER (TLFS "HvCallPostMessage"), checked before the lookup.
func TestPortKindAndInput(t *testing.T) {
	var p Ports
	echo := &echoPort{limit: 10}
	mustNil(t, p.AddMessagePort(1, echo))
	mustNil(t, p.AddEventPort(2, &eventPort{}))
	for _, c := range []struct {
		in   tlfs.PostMessageInput
		want tlfs.Status
	}{
		{post(2, 1, "x"), tlfs.StatusInvalidPortID},
		{post(1, 0, "x"), tlfs.StatusInvalidParameter},
		{post(1, 0x8000_0010, "x"), tlfs.StatusInvalidParameter},
		{tlfs.PostMessageInput{ConnectionID: 1, Type: 1, Payload: make([]byte, 241)}, tlfs.StatusInvalidParameter},
		{post(1|1<<24, 1, "x"), tlfs.StatusInvalidConnectionID},
	} {
		if st := p.PostMessage(0, c.in); st != c.want {
			t.Errorf("PostMessage(conn %#x type %#x, %d bytes) = %v, want %v", c.in.ConnectionID, c.in.Type, len(c.in.Payload), st, c.want)
		}
	}
	if st := p.SignalEvent(0, tlfs.SignalEventInput{ConnectionID: 1}); st != tlfs.StatusInvalidPortID {
		t.Errorf("SignalEvent to a message port: %v", st)
	}
	if len(echo.got) != 0 {
		t.Fatal("a refused message reached the handler")
	}
}

// TestSynICPorts: ports a partition's SynIC owns. Messages are Posts to
// the port's SINT with the port ID as sender; a full queue is
// INSUFFICIENT_BUFFERS, a disabled SynIC INVALID_SYNIC_STATE. Events set
// flag base+FlagNumber; a FlagNumber beyond the port's count is
// INVALID_PARAMETER (TLFS "HvCallSignalEvent").
func TestSynICPorts(t *testing.T) {
	r := newRig(t, func(c *Config) { c.QueueDepth = 1 })
	var p Ports
	mustNil(t, p.AddSynICMessagePort(7, r.s, 2))
	mustNil(t, p.AddSynICEventPort(8, r.s, 2, 100, 4))
	if st := p.PostMessage(0, post(7, 1, "x")); st != tlfs.StatusInvalidSynicState {
		t.Fatalf("disabled target: %v", st)
	}
	r.enable(t)
	for i, want := range []tlfs.Status{tlfs.StatusSuccess, tlfs.StatusSuccess, tlfs.StatusInsufficientBuffers} {
		if st := p.PostMessage(0, post(7, 5, "x")); st != want {
			t.Fatalf("post %d: %v, want %v", i, st, want)
		}
	}
	if h, _ := r.ram.slot(simpGPA, 2); h.Origin != 7 || h.Type != 5 {
		t.Fatalf("slot %+v, want origin 7 (the port)", h)
	}
	if st := p.SignalEvent(0, tlfs.SignalEventInput{ConnectionID: 8, FlagNumber: 3}); st != tlfs.StatusSuccess {
		t.Fatal(st)
	}
	if b := r.ram.bytes(siefGPA+2*tlfs.EventFlagsSize+103/8, 1)[0]; b != 1<<(103%8) {
		t.Fatalf("flag byte %#x, want flag 103", b)
	}
	if st := p.SignalEvent(0, tlfs.SignalEventInput{ConnectionID: 8, FlagNumber: 4}); st != tlfs.StatusInvalidParameter {
		t.Fatalf("flag beyond the count: %v", st)
	}
	r.wr(t, tlfs.MsrSINT0+2, tlfs.SINTMasked|sintVector)
	if st := p.SignalEvent(0, tlfs.SignalEventInput{ConnectionID: 8}); st != tlfs.StatusInvalidSynicState {
		t.Fatalf("masked SINT: %v", st)
	}
}

// TestAddAndRemove: binding rules, and Remove unbinds.
func TestAddAndRemove(t *testing.T) {
	var p Ports
	r := newRig(t, nil)
	mustNil(t, p.AddMessagePort(1, &echoPort{limit: 1}))
	for name, err := range map[string]error{
		"duplicate":            p.AddEventPort(1, &eventPort{}),
		"25-bit ID":            p.AddMessagePort(1<<24, &echoPort{}),
		"nil message handler":  p.AddMessagePort(2, nil),
		"nil event handler":    p.AddEventPort(2, nil),
		"nil SynIC":            p.AddSynICMessagePort(2, nil, 2),
		"SINT 16":              p.AddSynICMessagePort(2, r.s, 16),
		"no flags":             p.AddSynICEventPort(2, r.s, 2, 0, 0),
		"flags beyond 2047":    p.AddSynICEventPort(2, r.s, 2, 2000, 49),
		"event SINT 16":        p.AddSynICEventPort(2, r.s, 16, 0, 1),
		"duplicate SynIC port": p.AddSynICMessagePort(1, r.s, 2),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if !errors.Is(p.AddMessagePort(1, &echoPort{}), ErrConnectionInUse) || !errors.Is(p.AddMessagePort(1<<24, &echoPort{}), ErrConnectionID) {
		t.Fatal("wrong sentinels")
	}
	mustNil(t, p.AddSynICEventPort(3, r.s, 2, 2000, 48))
	p.Remove(1)
	p.Remove(99)
	var empty Ports
	empty.Remove(1)
	if st := p.PostMessage(0, post(1, 1, "")); st != tlfs.StatusInvalidConnectionID {
		t.Fatalf("after Remove: %v", st)
	}
	mustNil(t, p.AddMessagePort(1, &echoPort{limit: 1}))
	if st := p.PostMessage(0, post(1, 1, "")); st != tlfs.StatusSuccess {
		t.Fatalf("rebound: %v", st)
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
