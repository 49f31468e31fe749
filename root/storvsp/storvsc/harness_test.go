package storvsc_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"gohv/root/storvsp"
	"gohv/root/storvsp/scsi"
	"gohv/root/storvsp/storvsc"
	"gohv/vmbus/client"
	"gohv/vmbus/proto"
	"gohv/vmbus/server"
	"gohv/vmbus/vmbustest"
)

// This file: the host side of the end-to-end tests. A SCSI controller is
// a server.Device whose every open runs a fresh storvsp.VSP over the
// controller's logical units, with GPA-direct buffers over the
// loopback's guest RAM: what root/worker's storageDevice does for a
// partition (its type is the worker's own; TestWorker in root/worker runs
// the real one).

// controller is a VMBus device serving a storvsp.
type controller struct {
	instance proto.GUID
	luns     map[storvsp.Address]*scsi.LogicalUnit
	mem      storvsp.GuestMemory

	mu     sync.Mutex
	opens  int
	closes []error
	chans  []*server.Channel
}

func (d *controller) Offer() server.Offer {
	return server.Offer{InterfaceType: proto.SCSIGUID, InterfaceInstance: d.instance}
}

func (d *controller) Open(ch *server.Channel) (server.Handler, error) {
	h := &vspChannel{d: d, ch: ch}
	v, err := storvsp.New(h, storvsp.Config{LUNs: d.luns})
	if err != nil {
		return nil, err
	}
	h.vsp = v
	d.mu.Lock()
	d.opens++
	d.chans = append(d.chans, ch)
	d.mu.Unlock()
	return h, nil
}

// Closes are why each open ended (nil: the guest closed it).
func (d *controller) Closes() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.closes...)
}

// lastChannel is the server end of the latest open.
func (d *controller) lastChannel() *server.Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.chans[len(d.chans)-1]
}

type vspChannel struct {
	d   *controller
	ch  *server.Channel
	vsp *storvsp.VSP
}

func (h *vspChannel) Send(packet []byte, tid uint64) error { return h.ch.SendCompletion(tid, packet) }

func (h *vspChannel) Packet(p *proto.Packet) error {
	pkt := storvsp.Packet{TransactionID: p.TransactionID, Payload: p.Payload}
	switch p.Type {
	case proto.PktDataInband:
	case proto.PktDataUsingGPADirect:
		var ranges []storvsp.PageRange
		for r := range p.Ranges.All() {
			pfns := make([]uint64, r.PageCount())
			for i := range pfns {
				pfns[i] = r.PFN(i)
			}
			ranges = append(ranges, storvsp.PageRange{ByteCount: r.ByteCount, ByteOffset: r.ByteOffset, PFNs: pfns})
		}
		data, err := storvsp.NewGPADirect(h.d.mem, ranges)
		if err != nil {
			return err
		}
		pkt.Data = data
	default:
		return fmt.Errorf("a %v packet on the storage channel: %w", p.Type, storvsp.ErrMalformed)
	}
	return h.vsp.HandlePacket(pkt)
}

func (h *vspChannel) Close(err error) {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	h.d.closes = append(h.d.closes, err)
}

// Test disks: block i of a patterned disk holds i's pattern, so any
// block read back names itself.
const blockSize = 512

func pattern(lba uint64, salt byte) []byte {
	b := make([]byte, blockSize)
	for i := range b {
		b[i] = byte(lba) ^ byte(lba>>8)*7 ^ byte(i)*13 ^ salt
	}
	binary.BigEndian.PutUint64(b, lba)
	b[8] = salt
	return b
}

func patternedDisk(t testing.TB, blocks int, readOnly bool) *scsi.RAMDisk {
	t.Helper()
	data := make([]byte, blocks*blockSize)
	for i := range blocks {
		copy(data[i*blockSize:], pattern(uint64(i), 0))
	}
	d, err := scsi.NewRAMDisk(data, blockSize, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func unit(t testing.TB, d scsi.Disk, o scsi.Options) *scsi.LogicalUnit {
	t.Helper()
	u, err := scsi.NewLogicalUnit(d, o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var (
	inst1 = proto.MustParseGUID("5ca1ab1e-0000-4000-8000-000000000001")
	inst2 = proto.MustParseGUID("5ca1ab1e-0000-4000-8000-000000000002")
)

// partition is one guest: a loopback (its RAM, server and client) with
// SCSI controllers, the client connected.
type partition struct {
	l     *vmbustest.Loopback
	ctls  []*controller
	ramIn int // pages in use once connected, before any channel opened
}

// newPartition starts a loopback serving one controller per LUN map,
// instances inst1, inst2, ….
func newPartition(t testing.TB, ramPages int, controllers ...map[storvsp.Address]*scsi.LogicalUnit) *partition {
	t.Helper()
	l, err := vmbustest.New(vmbustest.Config{RAMPages: ramPages})
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{l: l}
	for i, luns := range controllers {
		d := &controller{instance: instance(i), luns: luns, mem: l.RAM}
		if _, err := l.Server.AddDevice(d); err != nil {
			t.Fatal(err)
		}
		p.ctls = append(p.ctls, d)
	}
	t.Cleanup(func() {
		if err := l.Client.Unload(context.Background()); err != nil {
			t.Errorf("unload: %v", err)
		}
		l.Close()
		for _, err := range l.Refused() {
			t.Errorf("the client refused a server message: %v", err)
		}
		if err := l.RAM.Err(); err != nil {
			t.Error(err)
		}
		if n := l.RAM.InUse(); n != 0 {
			t.Errorf("%d guest pages still allocated after the unload", n)
		}
	})
	if err := l.Client.Connect(testContext(t)); err != nil {
		t.Fatal(err)
	}
	p.ramIn = l.RAM.InUse()
	return p
}

func instance(i int) proto.GUID {
	g := inst1
	g[15] = byte(i + 1)
	return g
}

// open opens controller i with the storage client.
func (p *partition) open(t testing.TB, i int, cfg storvsc.Config) *storvsc.Controller {
	t.Helper()
	c, err := p.tryOpen(t, i, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (p *partition) tryOpen(t testing.TB, i int, cfg storvsc.Config) (*storvsc.Controller, error) {
	t.Helper()
	ctx := testContext(t)
	o, err := p.l.Client.WaitOffer(ctx, func(o client.Offer) bool { return o.InterfaceInstance == instance(i) })
	if err != nil {
		t.Fatal(err)
	}
	return storvsc.Open(ctx, p.l.Client, p.l.RAM, o, cfg)
}

// buffer allocates a buffer from the controller's memory, freed at the
// end of the test.
func buffer(t testing.TB, c *storvsc.Controller, n int) *storvsc.Buffer {
	t.Helper()
	b, err := c.NewBuffer(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	return b
}

// gatedDisk holds every ReadAt and WriteAt until the gate opens, and
// counts the calls that arrived.
type gatedDisk struct {
	scsi.Disk
	gate    chan struct{}
	mu      sync.Mutex
	arrived int
}

func newGatedDisk(d scsi.Disk) *gatedDisk { return &gatedDisk{Disk: d, gate: make(chan struct{})} }

func (g *gatedDisk) wait() {
	g.mu.Lock()
	g.arrived++
	g.mu.Unlock()
	<-g.gate
}

func (g *gatedDisk) ReadAt(p []byte, off int64) (int, error) {
	g.wait()
	return g.Disk.ReadAt(p, off)
}

func (g *gatedDisk) WriteAt(p []byte, off int64) (int, error) {
	g.wait()
	return g.Disk.WriteAt(p, off)
}

func (g *gatedDisk) Arrived() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.arrived
}

func (g *gatedDisk) open() { close(g.gate) }
