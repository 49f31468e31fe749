package worker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gohv/hv"
	"gohv/hv/tlfs"
	"gohv/hv/vcpu"
	"gohv/hv/vcpu/vcputest"
	"gohv/root/storvsp/protocol"
	"gohv/root/storvsp/scsi"
	"gohv/root/storvsp/storvsc"
	"gohv/root/worker"
	"gohv/vmbus/client"
	"gohv/vmbus/proto"
)

// These tests put the Go storage client in a partition the worker serves:
// its VMBus messages and signals go through the partition's ports
// (HvCallPostMessage and HvCallSignalEvent as the hypercall layer
// dispatches them), the worker's messages and signals come back through
// VP 0's SynIC into the SIM and SIEF pages in the partition's RAM, where a
// polling loop plays the guest's VMBus interrupt handler, and the ring and
// data pages are the partition's own RAM. The VPs never run: nothing here
// needs a guest instruction.

// host is fake physical memory with a fixed clock.
type host struct{ *vcputest.FakeHost }

func (host) Nanotime() int64      { return 1 }
func (host) TSC() uint64          { return 1 }
func (host) TSCHz() uint64        { return 1e9 }
func (host) SetAlarm(int64)       {}
func (host) CPUOnline(i int) bool { return i == 0 }
func (host) PinThread(int) error  { return nil }
func (host) KickCPU(int)          {}
func (host) CurrentCPU() int      { return 0 }

// idleVCPU is a VP that is built but never entered.
type idleVCPU struct {
	regs      vcpu.Regs
	vcpu.VCPU // the rest panics if the core ever calls it
}

func (v *idleVCPU) Regs() *vcpu.Regs { return &v.regs }
func (v *idleVCPU) MarkStateDirty()  {}
func (v *idleVCPU) Bind(int) error   { return nil }
func (v *idleVCPU) Unbind()          {}
func (v *idleVCPU) SyncState()       {}
func (v *idleVCPU) Close() error     { return nil }

type backend struct{}

func (backend) Name() string                      { return "idle" }
func (backend) Report() []string                  { return nil }
func (backend) NestedFormat() vcpu.NestedFormat   { return vcpu.FormatNPT }
func (backend) HypercallInstruction() [3]byte     { return [3]byte{0x0f, 0x01, 0xd9} }
func (backend) NewVCPU(uint64) (vcpu.VCPU, error) { return &idleVCPU{}, nil }

// Guest-physical layout of the test guest: the SynIC's pages, then the
// pages its client allocates.
const (
	ramBytes  = 16 << 20
	simpGPA   = 0x1000
	siefpGPA  = 0x2000
	firstFree = 0x10 // PFN
	sintVec   = 0x30
)

// guest is the guest side of one partition: a VMBus client whose
// transport is the partition's hypercall ports, and whose interrupt
// handler is a loop polling VP 0's SynIC pages.
type guest struct {
	p      *hv.Partition
	client *client.Client

	mu    sync.Mutex
	free  []uint64
	inUse map[uint64]bool

	stop chan struct{}
	done chan struct{}
}

func newGuest(t *testing.T, disks []worker.Disk) (*guest, *hv.Partition, *worker.Worker) {
	t.Helper()
	h := hv.New(backend{}, host{vcputest.NewFakeHost()}, hv.NewCPUModel(), nil)
	p, err := h.NewPartition(hv.Config{Name: "storage", RAMBytes: ramBytes})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(p, worker.Config{Disks: disks})
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	g := &guest{p: p, inUse: map[uint64]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	for pfn := uint64(ramBytes/proto.PageSize) - 1; pfn >= firstFree; pfn-- {
		g.free = append(g.free, pfn)
	}
	// The guest's SynIC setup, as hv_vmbus does it: the message and
	// event pages, SINT 2 unmasked (polled here), SCONTROL on.
	s := p.VP(0).SynIC()
	for _, m := range []struct {
		msr uint32
		v   uint64
	}{
		{tlfs.MsrSIMP, simpGPA | tlfs.OverlayEnable},
		{tlfs.MsrSIEFP, siefpGPA | tlfs.OverlayEnable},
		{tlfs.MsrSINT0 + proto.MessageSINT, sintVec | tlfs.SINTPolling},
		{tlfs.MsrSControl, tlfs.SControlEnable},
	} {
		if err := s.WriteMSR(m.msr, m.v); err != nil {
			t.Fatalf("MSR %#x: %v", m.msr, err)
		}
	}
	g.client = client.New(transport{p}, g, client.Config{})
	go g.poll()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := g.client.Unload(ctx); err != nil {
			t.Errorf("unload: %v", err)
		}
		close(g.stop)
		<-g.done
		w.Close()
		if n := g.pagesInUse(); n != 0 {
			t.Errorf("%d guest pages still allocated after the unload", n)
		}
	})
	if err := g.client.Connect(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return g, p, w
}

// transport: the two hypercalls, as hv/hypercall hands them to the
// partition's ports after decoding the input.
type transport struct{ p *hv.Partition }

func (t transport) PostMessage(conn uint32, payload []byte) error {
	return client.Status(t.p.Ports().PostMessage(0, tlfs.PostMessageInput{ConnectionID: conn, Type: proto.SynICMessageType, Payload: payload}))
}

func (t transport) SignalEvent(conn uint32) error {
	return client.Status(t.p.Ports().SignalEvent(0, tlfs.SignalEventInput{ConnectionID: conn}))
}

// AllocPages implements client.Memory over the partition's RAM.
func (g *guest) AllocPages(n int) ([]uint64, [][]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n <= 0 || n > len(g.free) {
		return nil, nil, fmt.Errorf("%d pages asked, %d free", n, len(g.free))
	}
	pfns := make([]uint64, n)
	views := make([][]byte, n)
	for i := range pfns {
		pfn := g.free[len(g.free)-1]
		g.free = g.free[:len(g.free)-1]
		pg, err := g.p.Mem.Page(pfn)
		if err != nil {
			return nil, nil, err
		}
		g.inUse[pfn] = true
		pfns[i], views[i] = pfn, pg[:]
	}
	return pfns, views, nil
}

// FreePages implements client.Memory.
func (g *guest) FreePages(pfns []uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, pfn := range pfns {
		if g.inUse[pfn] {
			delete(g.inUse, pfn)
			g.free = append(g.free, pfn)
		}
	}
}

func (g *guest) pagesInUse() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.inUse)
}

// poll is the guest's VMBus interrupt handler, polled: SINT 2's message
// slot (read, empty the slot, EOM if the SynIC has more) and its event
// flags (each set flag cleared, then its channel's callback).
func (g *guest) poll() {
	defer close(g.done)
	mem := g.p.Mem
	slot := uint64(simpGPA + proto.MessageSINT*tlfs.MessageSize)
	flags := uint64(siefpGPA + proto.MessageSINT*tlfs.EventFlagsSize)
	var msg [tlfs.MessageSize]byte
	for {
		busy := false
		if typ, err := mem.OrU32(slot+tlfs.MessageTypeOffset, 0); err == nil && typ != 0 {
			busy = true
			mem.ReadRAM(slot, msg[:])
			n := min(int(msg[tlfs.MessageSizeOffset]), tlfs.MessagePayloadSize)
			payload := append([]byte(nil), msg[tlfs.MessageHeaderSize:tlfs.MessageHeaderSize+n]...)
			mem.CmpxchgU32(slot+tlfs.MessageTypeOffset, typ, 0)
			if w, _ := mem.OrU32(slot+tlfs.MessageSizeOffset, 0); (w>>8)&tlfs.MessagePendingFlag != 0 {
				g.p.VP(0).SynIC().WriteMSR(tlfs.MsrEOM, 0)
			}
			g.client.DeliverMessage(payload)
		}
		for word := range uint64(tlfs.EventFlagsPerSINT / 32) {
			gpa := flags + 4*word
			v, _ := mem.OrU32(gpa, 0)
			for v != 0 {
				if ok, _ := mem.CmpxchgU32(gpa, v, 0); ok {
					break
				}
				v, _ = mem.OrU32(gpa, 0)
			}
			for bit := range uint64(32) {
				if v&(1<<bit) != 0 {
					busy = true
					g.client.DeliverEvent(uint32(32*word + bit))
				}
			}
		}
		if !busy {
			select {
			case <-g.stop:
				return
			case <-time.After(20 * time.Microsecond):
			}
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ramDisk(t *testing.T, size int, readOnly bool, fill byte) *scsi.RAMDisk {
	t.Helper()
	d, err := scsi.NewRAMDisk(bytes.Repeat([]byte{fill}, size), 512, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < size; i += 512 {
		binary.BigEndian.PutUint32(d.Bytes()[i:], uint32(i/512))
	}
	return d
}

// TestStorageThroughTheWorker: the worker offers one SCSI controller per
// configured controller; the Go client opens each, negotiates 6.0, finds
// the configured LUN, reads the disk's bytes, writes into them, is refused
// on the read-only disk, and gets ILLEGAL REQUEST for buffer pages outside
// the partition's RAM without the channel closing.
func TestStorageThroughTheWorker(t *testing.T) {
	rw := ramDisk(t, 1<<20, false, 0x11)
	ro := ramDisk(t, 256<<10, true, 0x22)
	g, _, _ := newGuest(t, []worker.Disk{
		{Name: "rw", Controller: 0, LUN: 0, Image: rw},
		{Name: "ro", Controller: 1, LUN: 2, Image: ro},
	})
	ctx := testContext(t)
	var scsiOffers []client.Offer
	for _, o := range g.client.Offers() {
		if o.InterfaceType == proto.SCSIGUID {
			scsiOffers = append(scsiOffers, o)
		}
	}
	if len(scsiOffers) != 2 {
		t.Fatalf("SCSI offers %v", scsiOffers)
	}
	var ctls []*storvsc.Controller
	for _, o := range scsiOffers {
		c, err := storvsc.Open(ctx, g.client, g, o, storvsc.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if c.Version() != protocol.VersionWin8_1 || c.MaxTransferBytes() != 256<<10 {
			t.Fatalf("version %v, max transfer %d", c.Version(), c.MaxTransferBytes())
		}
		ctls = append(ctls, c)
	}
	// Which controller is which: the one whose scan finds LUN 0.
	var rwc, roc *storvsc.Controller
	for _, c := range ctls {
		units, err := c.Discover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(units) != 1 {
			t.Fatalf("units %+v", units)
		}
		switch units[0].Address {
		case storvsc.Address{}:
			rwc = c
		case storvsc.Address{LUN: 2}:
			roc = c
		default:
			t.Fatalf("unit at %v", units[0].Address)
		}
	}
	if rwc == nil || roc == nil {
		t.Fatal("a controller is missing its disk")
	}
	lun0, lun2 := storvsc.Address{}, storvsc.Address{LUN: 2}
	if cp, err := rwc.ReadCapacity(ctx, lun0); err != nil || cp.Blocks != 2048 || cp.BlockSize != 512 {
		t.Fatalf("capacity %+v, %v", cp, err)
	}

	buf, err := rwc.NewBuffer(256 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	if err := rwc.Read(ctx, lun0, 100, 512, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), rw.Bytes()[100*512:][:256<<10]) {
		t.Fatal("256 KiB read differs from the disk")
	}
	data := bytes.Repeat([]byte("written through the worker\n"), 4096)[:64<<10]
	part, _ := buf.Slice(1000, len(data))
	part.WriteAt(data, 0)
	if err := rwc.Write(ctx, lun0, 7, uint32(len(data)/512), part); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rw.Bytes()[7*512:][:len(data)], data) {
		t.Fatal("the write did not land in the disk")
	}
	if err := rwc.SynchronizeCache(ctx, lun0); err != nil {
		t.Fatal(err)
	}

	before := bytes.Clone(ro.Bytes())
	small, _ := buf.Slice(0, 4096)
	err = roc.Write(ctx, lun2, 0, 8, small)
	if s, _ := storvsc.SenseOf(err); s != (storvsc.Sense{Key: storvsc.KeyDataProtect, ASC: 0x27}) {
		t.Fatalf("write to the read-only disk: %v", err)
	}
	if !bytes.Equal(ro.Bytes(), before) {
		t.Fatal("the read-only disk changed")
	}

	// Pages beyond the partition's 16 MiB.
	for _, dir := range []storvsc.Direction{storvsc.DataIn, storvsc.DataOut} {
		cdb := storvsc.CDBRead10(0, 8)
		if dir == storvsc.DataOut {
			cdb = storvsc.CDBWrite10(0, 8)
		}
		res, err := rwc.Execute(ctx, &storvsc.Request{Addr: lun0, CDB: cdb, Dir: dir,
			Pages: &client.Range{Len: 4096, PFNs: []uint64{ramBytes / proto.PageSize}}})
		if s, _ := res.Sense(); err != nil || res.OK() || s != (storvsc.Sense{Key: storvsc.KeyIllegalRequest, ASC: 0x24}) {
			t.Fatalf("direction %d into pages outside RAM: %+v, %v", dir, res, err)
		}
	}
	if err := rwc.TestUnitReady(ctx, lun0); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
}

// TestWorkerClosesAMalformedStorageChannel: a request storvsp cannot
// answer costs the guest that channel (the worker's server rescinds it),
// not the partition; the other controller goes on.
func TestWorkerClosesAMalformedStorageChannel(t *testing.T) {
	g, p, _ := newGuest(t, []worker.Disk{
		{Name: "a", Controller: 0, Image: ramDisk(t, 64<<10, false, 0)},
		{Name: "b", Controller: 1, Image: ramDisk(t, 64<<10, false, 0)},
	})
	ctx := testContext(t)
	var ctls []*storvsc.Controller
	for _, o := range g.client.Offers() {
		if o.InterfaceType != proto.SCSIGUID {
			continue
		}
		c, err := storvsc.Open(ctx, g.client, g, o, storvsc.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		ctls = append(ctls, c)
	}
	if len(ctls) != 2 {
		t.Fatalf("%d controllers", len(ctls))
	}
	_, err := ctls[0].Execute(ctx, &storvsc.Request{Addr: storvsc.Address{}, CDB: storvsc.CDBRead10(0, 1), Dir: storvsc.DataIn,
		Pages: &client.Range{Len: 512, PFNs: []uint64{1 << 60}}})
	if !errors.Is(err, storvsc.ErrStopped) || !errors.Is(err, client.ErrRescinded) {
		t.Fatalf("malformed request: %v", err)
	}
	if err := g.client.WaitRescind(ctx, ctls[0].Channel().RelID()); err != nil {
		t.Fatal(err)
	}
	if err := ctls[1].TestUnitReady(ctx, storvsc.Address{}); err != nil {
		t.Fatalf("the other controller: %v", err)
	}
	select {
	case <-p.Done():
		t.Fatalf("the partition ended: %v", p.Result())
	default:
	}
	if r := p.Result(); r.Err != nil {
		t.Fatalf("the partition was failed: %v", r.Err)
	}
}
