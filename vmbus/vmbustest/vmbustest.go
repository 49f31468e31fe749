// Package vmbustest joins the two ends of VMBus in one process, for host
// tests: a client.Client plays the guest's VMBus driver against a real
// server.Server, over one fake guest RAM both see, with the SynIC
// replaced by direct calls. A VSP's host tests use it to meet a guest
// that behaves as Linux 6.1's hv_vmbus does; the client's and the
// server's tests use it to meet each other.
//
// The wiring, both ways synchronous:
//
//   - the client's HvCallPostMessage on connection 1 or 4 is the server's
//     HandleMessage (the root binds those two message ports); any other
//     connection answers HV_STATUS_INVALID_CONNECTION_ID;
//   - the client's HvCallSignalEvent on a connection the server bound is
//     the server's HandleEvent, else HV_STATUS_INVALID_CONNECTION_ID;
//   - the server's PostMessage to a VP is the client's DeliverMessage (the
//     SIM slot is consumed at once, so the server never sees a full
//     queue), and its Signal is the client's DeliverEvent;
//   - the server reaches guest pages by PFN in the RAM, from which the
//     client allocates.
//
// Messages the client refused (a server bug, from the client's point of
// view) are kept: Loopback.Refused returns them.
package vmbustest

import (
	"context"
	"fmt"
	"sync"

	"gohv/hv/tlfs"
	"gohv/vmbus/client"
	"gohv/vmbus/proto"
	"gohv/vmbus/server"
)

// RAM is a fake guest RAM: the client allocates from it (client.Memory),
// the server reaches its pages by PFN (server.Host.Page), a VSP reads and
// writes it by GPA (ReadRAM, WriteRAM). Frame 0 is never allocated, so a
// zero PFN in a message is always a bug.
type RAM struct {
	mem []byte

	mu     sync.Mutex
	free   []uint64
	inUse  map[uint64]bool
	errors []error
}

// NewRAM is a RAM of pages 4 KiB pages.
func NewRAM(pages int) *RAM {
	r := &RAM{mem: make([]byte, pages*proto.PageSize), inUse: make(map[uint64]bool)}
	// Hand pages out from the top down and interleaved, so that no
	// allocation is contiguous or ascending: a GPADL must list every
	// frame.
	for i := pages - 1; i >= 1; i -= 2 {
		r.free = append(r.free, uint64(i))
	}
	for i := pages - 2; i >= 1; i -= 2 {
		r.free = append(r.free, uint64(i))
	}
	return r
}

// AllocPages implements client.Memory. The pages are not cleared.
func (r *RAM) AllocPages(n int) ([]uint64, [][]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 || n > len(r.free) {
		return nil, nil, fmt.Errorf("vmbustest: %d pages asked, %d free", n, len(r.free))
	}
	pfns := make([]uint64, n)
	pages := make([][]byte, n)
	for i := range pfns {
		pfn := r.free[len(r.free)-1]
		r.free = r.free[:len(r.free)-1]
		r.inUse[pfn] = true
		pfns[i] = pfn
		pages[i] = r.mem[pfn*proto.PageSize : (pfn+1)*proto.PageSize : (pfn+1)*proto.PageSize]
	}
	return pfns, pages, nil
}

// FreePages implements client.Memory. Freeing a page that is not
// allocated is recorded (Err).
func (r *RAM) FreePages(pfns []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pfn := range pfns {
		if !r.inUse[pfn] {
			r.errors = append(r.errors, fmt.Errorf("vmbustest: page %#x freed but not allocated", pfn))
			continue
		}
		delete(r.inUse, pfn)
		r.free = append(r.free, pfn)
	}
}

// Page implements server.Host's Page: any frame of the RAM, allocated
// or not (the hypervisor does not know the guest's allocator).
func (r *RAM) Page(pfn uint64) (*[proto.PageSize]byte, error) {
	if pfn >= uint64(len(r.mem)/proto.PageSize) {
		return nil, fmt.Errorf("vmbustest: pfn %#x outside the guest's %d pages", pfn, len(r.mem)/proto.PageSize)
	}
	return (*[proto.PageSize]byte)(r.mem[pfn*proto.PageSize:]), nil
}

// ReadRAM copies guest memory at gpa into b.
func (r *RAM) ReadRAM(gpa uint64, b []byte) error {
	if gpa > uint64(len(r.mem)) || uint64(len(b)) > uint64(len(r.mem))-gpa {
		return fmt.Errorf("vmbustest: read of %d bytes at %#x outside the guest's RAM", len(b), gpa)
	}
	copy(b, r.mem[gpa:])
	return nil
}

// WriteRAM copies b into guest memory at gpa.
func (r *RAM) WriteRAM(gpa uint64, b []byte) error {
	if gpa > uint64(len(r.mem)) || uint64(len(b)) > uint64(len(r.mem))-gpa {
		return fmt.Errorf("vmbustest: write of %d bytes at %#x outside the guest's RAM", len(b), gpa)
	}
	copy(r.mem[gpa:], b)
	return nil
}

// InUse is the number of pages allocated now.
func (r *RAM) InUse() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inUse)
}

// Err reports pages freed that were not allocated.
func (r *RAM) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errors) == 0 {
		return nil
	}
	return fmt.Errorf("%v", r.errors)
}

// Config configures a Loopback.
type Config struct {
	Server server.Config
	Client client.Config
	// RAMPages is the guest RAM's size in pages (0: 2048, 8 MiB).
	RAMPages int
	// VPs is the partition's VP count (0: 2); Client.VP must be below it.
	VPs uint32
}

// Loopback is a client and a server joined.
type Loopback struct {
	RAM    *RAM
	Server *server.Server
	Client *client.Client

	vps    uint32
	cancel context.CancelFunc
	ran    chan struct{}

	mu         sync.Mutex
	bound      map[uint32]bool
	refused    []error
	messageVPs map[uint32]int
	signalVPs  map[uint32]int
}

// New starts a server offering devs and makes a client for it; the
// client has not connected yet. Close stops the server.
func New(cfg Config, devs ...server.Device) (*Loopback, error) {
	if cfg.RAMPages == 0 {
		cfg.RAMPages = 2048
	}
	if cfg.VPs == 0 {
		cfg.VPs = 2
	}
	if cfg.Client.VP >= cfg.VPs {
		return nil, fmt.Errorf("vmbustest: client VP %d of %d", cfg.Client.VP, cfg.VPs)
	}
	l := &Loopback{
		RAM: NewRAM(cfg.RAMPages), vps: cfg.VPs, ran: make(chan struct{}),
		bound: make(map[uint32]bool), messageVPs: make(map[uint32]int), signalVPs: make(map[uint32]int),
	}
	l.Server = server.New(serverHost{l}, cfg.Server)
	l.Client = client.New(transport{l, cfg.Client.VP}, l.RAM, cfg.Client)
	for _, d := range devs {
		if _, err := l.Server.AddDevice(d); err != nil {
			l.Server.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() {
		defer close(l.ran)
		l.Server.Run(ctx)
	}()
	return l, nil
}

// Close stops the server; afterwards it touches no guest page.
func (l *Loopback) Close() {
	l.cancel()
	<-l.ran
	l.Server.Close()
}

// Refused returns the server's messages the client dropped, with why.
func (l *Loopback) Refused() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.refused...)
}

// MessageVPs counts the server's messages by the VP they were posted to;
// SignalVPs its channel signals.
func (l *Loopback) MessageVPs() map[uint32]int { return l.counts(l.messageVPs) }
func (l *Loopback) SignalVPs() map[uint32]int  { return l.counts(l.signalVPs) }

func (l *Loopback) counts(m map[uint32]int) map[uint32]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[uint32]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// serverHost is the hypervisor as the server sees it.
type serverHost struct{ l *Loopback }

func (h serverHost) PostMessage(vp uint32, payload []byte) error {
	if vp >= h.l.vps {
		return fmt.Errorf("vmbustest: no VP %d", vp)
	}
	h.l.mu.Lock()
	h.l.messageVPs[vp]++
	h.l.mu.Unlock()
	if err := h.l.Client.DeliverMessage(payload); err != nil {
		h.l.mu.Lock()
		h.l.refused = append(h.l.refused, err)
		h.l.mu.Unlock()
	}
	return nil
}

func (h serverHost) Signal(vp, relid uint32) error {
	if vp >= h.l.vps {
		return fmt.Errorf("vmbustest: no VP %d", vp)
	}
	h.l.mu.Lock()
	h.l.signalVPs[vp]++
	h.l.mu.Unlock()
	h.l.Client.DeliverEvent(relid)
	return nil
}

func (h serverHost) Page(pfn uint64) (*[proto.PageSize]byte, error) { return h.l.RAM.Page(pfn) }

func (h serverHost) VPCount() uint32 { return h.l.vps }

func (h serverHost) BindEvent(conn uint32) error {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if h.l.bound[conn] || conn == proto.MessageConnectionID || conn == proto.MessageConnectionID4 {
		return fmt.Errorf("vmbustest: connection %#x bound already", conn)
	}
	h.l.bound[conn] = true
	return nil
}

func (h serverHost) UnbindEvent(conn uint32) {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	delete(h.l.bound, conn)
}

// transport is the hypervisor as the client sees it.
type transport struct {
	l  *Loopback
	vp uint32
}

func (t transport) PostMessage(conn uint32, payload []byte) error {
	if conn != proto.MessageConnectionID && conn != proto.MessageConnectionID4 {
		return client.Status(tlfs.StatusInvalidConnectionID)
	}
	return client.Status(t.l.Server.HandleMessage(t.vp, proto.SynICMessageType, payload))
}

func (t transport) SignalEvent(conn uint32) error {
	t.l.mu.Lock()
	ok := t.l.bound[conn]
	t.l.mu.Unlock()
	if !ok {
		return client.Status(tlfs.StatusInvalidConnectionID)
	}
	return client.Status(t.l.Server.HandleEvent(conn))
}
