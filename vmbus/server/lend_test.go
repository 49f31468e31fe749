package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"gohv/vmbus/proto"
)

// lender is a device whose Handler borrows and returns GPADLs on the
// guest's request: payload "borrow" or "return" and a u32 handle. It
// answers with a completion "ok", or the error, and on a borrow writes
// the handle into the first byte of the buffer's first page.
type lender struct {
	mu     sync.Mutex
	closes []error
}

func (l *lender) Offer() Offer {
	return Offer{InterfaceType: proto.NICGUID, InterfaceInstance: proto.MustParseGUID("11111111-2222-3333-4444-666666666666")}
}

func (l *lender) Open(ch *Channel) (Handler, error) { return &lenderHandler{l: l, ch: ch}, nil }

func (l *lender) closeErrs() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.closes...)
}

type lenderHandler struct {
	l  *lender
	ch *Channel
}

func (h *lenderHandler) Packet(p *proto.Packet) error {
	op, handle := string(p.Payload[:6]), binary.LittleEndian.Uint32(p.Payload[6:])
	reply := "ok"
	switch op {
	case "borrow":
		lent, err := h.ch.BorrowGPADL(handle)
		if err != nil {
			reply = err.Error()
			break
		}
		if lent.Handle != handle || len(lent.Pages) == 0 {
			reply = fmt.Sprintf("lent %d with %d pages", lent.Handle, len(lent.Pages))
			break
		}
		lent.Pages[0][0] = byte(handle)
	case "return":
		h.ch.ReturnGPADL(handle)
	}
	return h.ch.SendCompletion(p.TransactionID, []byte(reply+strings.Repeat(" ", 8)))
}

func (h *lenderHandler) Close(err error) {
	h.l.mu.Lock()
	h.l.closes = append(h.l.closes, err)
	h.l.mu.Unlock()
}

// ask sends op and handle on r and returns the handler's answer.
func ask(t *testing.T, r *guestRings, op string, handle uint32) string {
	t.Helper()
	msg := binary.LittleEndian.AppendUint32([]byte(op), handle)
	r.sendInband(t, uint64(handle), append(msg, 0, 0, 0, 0, 0, 0))
	p := r.read(t)
	return strings.TrimRight(string(p.Payload), " \x00")
}

func TestBorrowGPADL(t *testing.T) {
	dev := &lender{}
	g := start(t, Config{}, dev, &echo{typ: scsi})
	offers := g.connect(proto.VersionWin10V5_3)
	bufPFNs := g.alloc(3)
	if st := g.gpadl(1, 7, bufPFNs); st != 0 {
		t.Fatal(st)
	}
	if st := g.gpadl(2, 8, g.alloc(1)); st != 0 {
		t.Fatal(st)
	}
	st, r := g.open(offers[0], 1, 2, 2)
	if st != 0 {
		t.Fatalf("open: %#x", st)
	}
	if got := ask(t, r, "borrow", 7); got != "ok" {
		t.Fatalf("borrow 7: %s", got)
	}
	if b := g.h.ram[bufPFNs[0]*proto.PageSize]; b != 7 {
		t.Errorf("the lent pages are not the guest's: its first byte is %d, want 7", b)
	}
	for _, c := range []struct {
		handle uint32
		want   string
	}{
		{7, "lent already"},
		{1, "holds the channel's rings"},
		{8, "belongs to relid 2"},
		{99, "no such GPADL"},
	} {
		if got := ask(t, r, "borrow", c.handle); !strings.Contains(got, c.want) {
			t.Errorf("borrow %d: %q, want a refusal saying %q", c.handle, got, c.want)
		}
	}

	// Returned, it can be torn down under the open channel.
	if got := ask(t, r, "return", 7); got != "ok" {
		t.Fatal(got)
	}
	if got := ask(t, r, "borrow", 7); got != "ok" {
		t.Fatalf("borrow after return: %s", got)
	}
	ask(t, r, "return", 7)
	g.post(proto.GPADLTeardown{ChildRelID: 1, GPADL: 7})
	expect[proto.GPADLTorndown](g)
	if errs := dev.closeErrs(); len(errs) != 0 {
		t.Fatalf("a returned GPADL's teardown closed the channel: %v", errs)
	}

	// Torn down while lent, it closes the channel with the reason.
	if st := g.gpadl(1, 9, g.alloc(2)); st != 0 {
		t.Fatal(st)
	}
	if got := ask(t, r, "borrow", 9); got != "ok" {
		t.Fatal(got)
	}
	g.post(proto.GPADLTeardown{ChildRelID: 1, GPADL: 9})
	expect[proto.GPADLTorndown](g)
	if errs := dev.closeErrs(); len(errs) != 1 || errs[0] == nil || !strings.Contains(errs[0].Error(), "gpadl 9") {
		t.Fatalf("handler closes %v, want one naming gpadl 9", errs)
	}

	// Closing a channel returns what it borrowed: the next open borrows
	// it again.
	if st := g.gpadl(1, 10, g.alloc(2)); st != 0 {
		t.Fatal(st)
	}
	st, r = g.open(offers[0], 11, 2, 2)
	if st != 0 {
		t.Fatalf("reopen: %#x", st)
	}
	if got := ask(t, r, "borrow", 10); got != "ok" {
		t.Fatal(got)
	}
	g.post(proto.CloseChannel{ChildRelID: 1})
	waitFor(t, "the close", func() bool { return len(dev.closeErrs()) == 2 })
	st, r = g.open(offers[0], 12, 2, 2)
	if st != 0 {
		t.Fatalf("third open: %#x", st)
	}
	if got := ask(t, r, "borrow", 10); got != "ok" {
		t.Fatalf("borrow after the borrower closed: %s", got)
	}
}

func TestBorrowFromClosedChannel(t *testing.T) {
	c := &Channel{s: New(nil, Config{}), stop: make(chan struct{})}
	close(c.stop)
	if _, err := c.BorrowGPADL(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("borrow on a stopped channel: %v, want ErrClosed", err)
	}
}
