package storvsc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"gohv/root/storvsp"
	"gohv/root/storvsp/protocol"
	"gohv/root/storvsp/scsi"
	"gohv/root/storvsp/storvsc"
	"gohv/vmbus/client"
	"gohv/vmbus/proto"
)

// These tests run the storage client against the real VMBus server and
// the real storage VSP over RAM disks, through vmbustest's loopback: the
// guest's packets cross the rings in the loopback's guest RAM, and the
// VSP reaches the data buffers by PFN in that RAM as it reaches a
// partition's.

var (
	lun0 = storvsc.Address{}
	lun1 = storvsc.Address{LUN: 1}
)

// standard is a partition with one controller: LUN 0 a writable 8 MiB
// patterned disk, LUN 1 a read-only 1 MiB one, and target 1 LUN 3 a
// writable 64 KiB one.
func standard(t *testing.T) (*partition, *scsi.RAMDisk, *scsi.RAMDisk) {
	rw := patternedDisk(t, 16384, false)
	ro := patternedDisk(t, 2048, true)
	small := patternedDisk(t, 128, false)
	p := newPartition(t, 4096, map[storvsp.Address]*scsi.LogicalUnit{
		{LUN: 0}:            unit(t, rw, scsi.Options{Serial: "gohv-rw", DeviceID: [16]byte{1, 2, 3}}),
		{LUN: 1}:            unit(t, ro, scsi.Options{}),
		{Target: 1, LUN: 3}: unit(t, small, scsi.Options{Product: "Small"}),
	})
	return p, rw, ro
}

// TestNegotiation: Linux's versions in Linux's order land on 6.0 (the VSP
// refuses 6.2), with 256 KiB transfers; begin, 6.2, 6.0, properties and
// end are five requests.
func TestNegotiation(t *testing.T) {
	p, _, _ := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	if c.Version() != protocol.VersionWin8_1 {
		t.Fatalf("version %v, want 6.0", c.Version())
	}
	props := c.Properties()
	if props.MaxTransferBytes != storvsp.DefaultMaxTransferBytes || props.Flags != 0 || props.MaxChannelCount != 0 {
		t.Fatalf("properties %+v", props)
	}
	if c.MaxTransferBytes() != 256<<10 {
		t.Fatalf("max transfer %d", c.MaxTransferBytes())
	}
	if s := c.Stats(); s.Requests != 5 || s.Completions != 5 || s.Dropped != 0 || s.BadCompletions != 0 {
		t.Fatalf("stats %+v", s)
	}
	if err := c.TestUnitReady(testContext(t), lun0); err != nil {
		t.Fatal(err)
	}
}

// TestNegotiationOtherVersions: 5.1 alone is taken; 6.2 alone is refused
// and the client closes the channel, which opens again afterwards.
func TestNegotiationOtherVersions(t *testing.T) {
	p, _, _ := standard(t)
	_, err := p.tryOpen(t, 0, storvsc.Config{Versions: []protocol.Version{protocol.VersionWin10}})
	if !errors.Is(err, storvsc.ErrNoVersion) {
		t.Fatalf("6.2 only: %v", err)
	}
	if n := p.l.RAM.InUse(); n != p.ramIn {
		t.Fatalf("%d pages in use after the failed open, %d before", n, p.ramIn)
	}
	c := p.open(t, 0, storvsc.Config{Versions: []protocol.Version{protocol.VersionWin8}})
	if c.Version() != protocol.VersionWin8 {
		t.Fatalf("version %v", c.Version())
	}
	if _, err := c.ReadCapacity(testContext(t), lun0); err != nil {
		t.Fatal(err)
	}
}

// TestDiscover: the Linux-style scan finds exactly the three units, with
// gohv's identity, and nothing on the other 14 path/targets.
func TestDiscover(t *testing.T) {
	p, _, _ := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	units, err := c.Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []storvsc.Address
	for _, u := range units {
		got = append(got, u.Address)
		in := u.Inquiry
		if in.DeviceType != 0 || in.Version != 5 || in.ResponseFormat != 2 || !in.CmdQue || in.Vendor != "Msft" || in.Revision != "1.0" {
			t.Errorf("%v: %+v", u.Address, in)
		}
	}
	want := []storvsc.Address{lun0, lun1, {Target: 1, LUN: 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("units %v, want %v", got, want)
	}
	if units[0].Inquiry.Product != "Virtual Disk" || units[2].Inquiry.Product != "Small" {
		t.Fatalf("products %q %q", units[0].Inquiry.Product, units[2].Inquiry.Product)
	}
	luns, err := c.ReportLUNs(ctx, storvsc.Address{LUN: 7}) // any LUN of the target
	if err != nil || !slices.Equal(luns, []uint16{0, 1}) {
		t.Fatalf("REPORT LUNS: %v, %v", luns, err)
	}
	// An absent path answers INQUIRY with qualifier 3 (0x7F) and lists no
	// LUNs; other commands to it fail as Linux expects (INVALID_LUN).
	absent := storvsc.Address{Path: 5}
	in, err := c.Inquiry(ctx, absent)
	if err != nil || in.Present() || in.Raw[0] != 0x7F {
		t.Fatalf("absent INQUIRY: %+v, %v", in, err)
	}
	if luns, err := c.ReportLUNs(ctx, absent); err != nil || len(luns) != 0 {
		t.Fatalf("absent REPORT LUNS: %v, %v", luns, err)
	}
	err = c.TestUnitReady(ctx, storvsc.Address{LUN: 9})
	var ce *storvsc.CommandError
	if !errors.As(err, &ce) || ce.SRBStatus != protocol.SRBStatusInvalidLUN|protocol.SRBStatusAutosenseValid ||
		ce.SCSIStatus != storvsc.StatusCheckCondition || ce.Status != protocol.StatusDeviceDoesNotExist {
		t.Fatalf("TEST UNIT READY to an absent LUN: %v", err)
	}
	if s, _ := storvsc.SenseOf(err); s != (storvsc.Sense{Key: storvsc.KeyIllegalRequest, ASC: 0x25}) {
		t.Fatalf("sense %v", s)
	}
	for _, a := range want {
		if err := c.TestUnitReady(ctx, a); err != nil {
			t.Errorf("TEST UNIT READY %v: %v", a, err)
		}
	}
}

// TestVPDAndCapacity: the VPD pages VPD 0x00 lists are all served, the
// serial is the configured one, and both READ CAPACITYs agree with the
// disk.
func TestVPDAndCapacity(t *testing.T) {
	p, rw, ro := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	pages, err := c.InquiryVPD(ctx, lun0, 0x00)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pages[4:], 0x80) || !slices.Contains(pages[4:], 0x83) || !slices.Contains(pages[4:], 0xB0) {
		t.Fatalf("VPD 0x00 % x", pages)
	}
	for _, pg := range pages[4:] {
		if _, err := c.InquiryVPD(ctx, lun0, pg); err != nil {
			t.Errorf("VPD %#02x: %v", pg, err)
		}
	}
	serial, err := c.InquiryVPD(ctx, lun0, 0x80)
	if err != nil || string(serial[4:]) != "gohv-rw" {
		t.Fatalf("serial %q, %v", serial, err)
	}
	_, err = c.InquiryVPD(ctx, lun0, 0xC7)
	if s, ok := storvsc.SenseOf(err); !ok || s != (storvsc.Sense{Key: storvsc.KeyIllegalRequest, ASC: 0x24}) {
		t.Fatalf("unknown VPD page: %v", err)
	}
	for _, tc := range []struct {
		a storvsc.Address
		d *scsi.RAMDisk
	}{{lun0, rw}, {lun1, ro}} {
		want := storvsc.Capacity{Blocks: uint64(tc.d.Size() / blockSize), BlockSize: blockSize}
		c16, err := c.ReadCapacity16(ctx, tc.a)
		if err != nil || c16.Blocks != want.Blocks || c16.BlockSize != want.BlockSize {
			t.Errorf("%v READ CAPACITY(16): %+v, %v", tc.a, c16, err)
		}
		c10, err := c.ReadCapacity10(ctx, tc.a)
		if err != nil || c10 != want {
			t.Errorf("%v READ CAPACITY(10): %+v, %v", tc.a, c10, err)
		}
		if cp, err := c.ReadCapacity(ctx, tc.a); err != nil || cp != c16 {
			t.Errorf("%v ReadCapacity: %+v, %v", tc.a, cp, err)
		}
	}
}

// TestReadKnownBytes: READ(10) and READ(16), from page-aligned and
// unaligned buffers, return the disk's bytes, and only those.
func TestReadKnownBytes(t *testing.T) {
	p, rw, ro := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	whole := buffer(t, c, 40*blockSize+4096)
	for _, tc := range []struct {
		name   string
		a      storvsc.Address
		d      *scsi.RAMDisk
		lba    uint64
		blocks int
		off    int // into the buffer
		cdb16  bool
	}{
		{"one block", lun0, rw, 0, 1, 0, false},
		{"unaligned", lun0, rw, 1000, 9, 100, false},
		{"read(16)", lun0, rw, 16383, 1, 0, true},
		{"read(16) unaligned, 5 pages", lun0, rw, 77, 40, 3000, true},
		{"read-only unit", lun1, ro, 2040, 8, 512, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.blocks * blockSize
			whole.WriteAt(bytes.Repeat([]byte{0xEE}, whole.Len()), 0)
			buf, err := whole.Slice(tc.off, n)
			if err != nil {
				t.Fatal(err)
			}
			cdb := storvsc.CDBRead10(uint32(tc.lba), uint16(tc.blocks))
			if tc.cdb16 {
				cdb = storvsc.CDBRead16(tc.lba, uint32(tc.blocks))
			}
			res, err := c.Execute(ctx, &storvsc.Request{Addr: tc.a, CDB: cdb, Dir: storvsc.DataIn, Data: buf})
			if err != nil || !res.OK() || res.N != n {
				t.Fatalf("%+v, %v", res, err)
			}
			if want := tc.d.Bytes()[tc.lba*blockSize:][:n]; !bytes.Equal(buf.Bytes(), want) {
				t.Fatal("read data differs from the disk")
			}
			all := whole.Bytes()
			if !allAre(all[:tc.off], 0xEE) || !allAre(all[tc.off+n:], 0xEE) {
				t.Fatal("the host wrote outside the range")
			}
		})
	}
}

func allAre(b []byte, v byte) bool {
	for _, x := range b {
		if x != v {
			return false
		}
	}
	return true
}

// TestWriteReadBack: WRITE(10) and WRITE(16) land in the RAM disk's bytes
// and read back; SYNCHRONIZE CACHE reaches the disk's Flush.
func TestWriteReadBack(t *testing.T) {
	p, rw, _ := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	for i, tc := range []struct {
		lba    uint64
		blocks int
		off    int
	}{{5, 1, 0}, {100, 8, 0}, {300, 33, 1536}, {16384 - 70, 70, 4000}} {
		data := make([]byte, tc.blocks*blockSize)
		for j := range tc.blocks {
			copy(data[j*blockSize:], pattern(tc.lba+uint64(j), byte(0x40+i)))
		}
		whole := buffer(t, c, tc.off+len(data))
		buf, _ := whole.Slice(tc.off, len(data))
		buf.WriteAt(data, 0)
		cdb := storvsc.CDBWrite10(uint32(tc.lba), uint16(tc.blocks))
		if i%2 == 1 {
			cdb = storvsc.CDBWrite16(tc.lba, uint32(tc.blocks))
		}
		res, err := c.Execute(ctx, &storvsc.Request{Addr: lun0, CDB: cdb, Dir: storvsc.DataOut, Data: buf})
		if err != nil || !res.OK() || res.N != len(data) {
			t.Fatalf("write %d: %+v, %v", i, res, err)
		}
		if !bytes.Equal(rw.Bytes()[tc.lba*blockSize:][:len(data)], data) {
			t.Fatalf("write %d: the disk does not hold the data", i)
		}
		back := buffer(t, c, len(data))
		if err := c.Read(ctx, lun0, tc.lba, uint32(tc.blocks), back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Bytes(), data) {
			t.Fatalf("write %d: read back differs", i)
		}
	}
	// The blocks around the writes kept their pattern.
	if !bytes.Equal(rw.Bytes()[4*blockSize:5*blockSize], pattern(4, 0)) || !bytes.Equal(rw.Bytes()[6*blockSize:7*blockSize], pattern(6, 0)) {
		t.Fatal("a neighbouring block changed")
	}
	before := rw.Flushes()
	if err := c.SynchronizeCache(ctx, lun0); err != nil {
		t.Fatal(err)
	}
	if rw.Flushes() != before+1 {
		t.Fatalf("flushes %d → %d", before, rw.Flushes())
	}
}

// TestReadOnlyRefusesWrite: WRITE to the read-only unit fails with DATA
// PROTECT / WRITE PROTECTED, and the disk is unchanged.
func TestReadOnlyRefusesWrite(t *testing.T) {
	p, _, ro := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	before := bytes.Clone(ro.Bytes())
	buf := buffer(t, c, 8*blockSize)
	buf.WriteAt(bytes.Repeat([]byte{0x5A}, buf.Len()), 0)
	for _, write16 := range []bool{false, true} {
		var err error
		if write16 {
			// Execute returns the completion as it came.
			res, xerr := c.Execute(ctx, &storvsc.Request{Addr: lun1, CDB: storvsc.CDBWrite16(10, 8), Dir: storvsc.DataOut, Data: buf})
			if xerr != nil || res.OK() || res.N != 0 {
				t.Fatalf("WRITE(16) to a read-only unit: %+v, %v", res, xerr)
			}
			err = &storvsc.CommandError{Addr: lun1, Op: storvsc.OpWrite16, Result: res}
		} else {
			err = c.Write(ctx, lun1, 10, 8, buf)
		}
		var ce *storvsc.CommandError
		if !errors.As(err, &ce) || ce.SCSIStatus != storvsc.StatusCheckCondition ||
			ce.SRBStatus != protocol.SRBStatusError|protocol.SRBStatusAutosenseValid {
			t.Fatalf("write to a read-only unit: %v", err)
		}
		if s, _ := storvsc.SenseOf(err); s != (storvsc.Sense{Key: storvsc.KeyDataProtect, ASC: 0x27}) {
			t.Fatalf("sense %v", s)
		}
	}
	if !bytes.Equal(ro.Bytes(), before) {
		t.Fatal("the read-only disk changed")
	}
	// Reading it still works.
	if err := c.Read(ctx, lun1, 10, 8, buf); err != nil || !bytes.Equal(buf.Bytes(), before[10*blockSize:18*blockSize]) {
		t.Fatalf("read after the refused write: %v", err)
	}
}

// TestLBAOutOfRange: a transfer past the last block gets ILLEGAL REQUEST
// / LOGICAL BLOCK ADDRESS OUT OF RANGE, and a write there changes nothing.
func TestLBAOutOfRange(t *testing.T) {
	p, rw, _ := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	before := bytes.Clone(rw.Bytes())
	buf := buffer(t, c, 4*blockSize)
	buf.WriteAt(bytes.Repeat([]byte{0xA5}, buf.Len()), 0)
	for _, tc := range []struct {
		name  string
		write bool
		lba   uint64
	}{
		{"read at the end", false, 16384},
		{"read across the end", false, 16382},
		{"read(16) far beyond", false, 1 << 40},
		{"write across the end", true, 16381},
		{"write(16) far beyond", true, 1 << 40},
	} {
		var err error
		if tc.write {
			err = c.Write(ctx, lun0, tc.lba, 4, buf)
		} else {
			err = c.Read(ctx, lun0, tc.lba, 4, buf)
		}
		s, ok := storvsc.SenseOf(err)
		if !ok || s != (storvsc.Sense{Key: storvsc.KeyIllegalRequest, ASC: 0x21}) {
			t.Errorf("%s: %v", tc.name, err)
		}
		var ce *storvsc.CommandError
		if errors.As(err, &ce) && ce.SRBStatus != protocol.SRBStatusInvalidRequest|protocol.SRBStatusAutosenseValid {
			t.Errorf("%s: SRB status %#x", tc.name, ce.SRBStatus)
		}
	}
	if !bytes.Equal(rw.Bytes(), before) {
		t.Fatal("a refused write changed the disk")
	}
}

// TestMaximumTransfer: 256 KiB — 64 pages, or 65 from an unaligned start,
// beyond Linux's 32-slot packet — moves both ways; one page more is
// refused before it is sent.
func TestMaximumTransfer(t *testing.T) {
	p, rw, _ := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	const n = 256 << 10
	const blocks = n / blockSize
	for _, off := range []int{0, 2048} {
		whole := buffer(t, c, off+n)
		buf, _ := whole.Slice(off, n)
		if err := c.Read(ctx, lun0, 1000, blocks, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), rw.Bytes()[1000*blockSize:][:n]) {
			t.Fatalf("offset %d: 256 KiB read differs", off)
		}
		data := make([]byte, n)
		rand.NewChaCha8([32]byte{byte(off)}).Read(data)
		buf.WriteAt(data, 0)
		if err := c.Write(ctx, lun0, 8000, blocks, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rw.Bytes()[8000*blockSize:][:n], data) {
			t.Fatalf("offset %d: 256 KiB write did not land", off)
		}
	}
	big := buffer(t, c, n+4096)
	if err := c.Read(ctx, lun0, 0, blocks+8, big); !errors.Is(err, storvsc.ErrInvalid) {
		t.Fatalf("a transfer above the maximum: %v", err)
	}
}

// TestPipelined: a thousand reads at once, while the disk holds the first
// one, fill the 128 KiB guest-to-host ring — so the senders behind it wait
// for the host to make room — then all complete with the right data once
// the disk moves.
func TestPipelined(t *testing.T) {
	rw := patternedDisk(t, 4096, false)
	gated := newGatedDisk(rw)
	p := newPartition(t, 8192, map[storvsp.Address]*scsi.LogicalUnit{{}: unit(t, gated, scsi.Options{})})
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	const n = 1000
	// One 512-byte read is a 360-byte packet in the ring (Linux's 288-byte
	// GPA-direct header, the 64-byte vstor_packet, the trailer): the
	// 31-page data area holds 352 of them.
	const fits = (31*4096 - 1) / 360
	base := c.Stats().Requests
	errs := make(chan error, n)
	bufs := make([]*storvsc.Buffer, n)
	for i := range bufs {
		bufs[i] = buffer(t, c, blockSize)
	}
	for i := range n {
		go func() {
			lba := uint64(i*7) % 4096
			if err := c.Read(ctx, lun0, lba, 1, bufs[i]); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(bufs[i].Bytes(), pattern(lba, 0)) {
				errs <- fmt.Errorf("read %d: wrong data", i)
				return
			}
			errs <- nil
		}()
	}
	// The VSP's one goroutine is held in the disk: the ring fills.
	deadline := time.Now().Add(20 * time.Second)
	for c.Stats().Requests-base < fits {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests in the ring", c.Stats().Requests-base)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	sent := c.Stats().Requests - base
	t.Logf("%d requests in the ring and at the host while the disk held the first; room for %d", sent, fits)
	if sent > fits+2 || gated.Arrived() != 1 {
		t.Fatalf("%d requests sent while the host held one (room for %d), %d at the disk", sent, fits, gated.Arrived())
	}
	gated.open()
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if s := c.Stats(); s.Completions != s.Requests || s.BadCompletions != 0 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestTwoPartitionsShareALogicalUnit: two guests, each with its own RAM,
// VMBus server and VSP, write and read the same logical unit at once.
// Every block always holds one whole write (none torn, none mixed), what
// one guest wrote the other reads, and at the end the disk holds, in each
// block, one of the versions written to it.
func TestTwoPartitionsShareALogicalUnit(t *testing.T) {
	const blocks = 256
	shared := unit(t, patternedDisk(t, blocks, false), scsi.Options{})
	parts := []*partition{
		newPartition(t, 2048, map[storvsp.Address]*scsi.LogicalUnit{{}: shared}),
		newPartition(t, 2048, map[storvsp.Address]*scsi.LogicalUnit{{}: shared}),
	}
	ctls := []*storvsc.Controller{parts[0].open(t, 0, storvsc.Config{}), parts[1].open(t, 0, storvsc.Config{})}
	runShared(t, ctls, blocks)
}

// TestTwoControllersShareALogicalUnit: the same through one guest's two
// controllers (two channels of one server) over the same unit.
func TestTwoControllersShareALogicalUnit(t *testing.T) {
	const blocks = 256
	shared := unit(t, patternedDisk(t, blocks, false), scsi.Options{})
	luns := map[storvsp.Address]*scsi.LogicalUnit{{}: shared}
	p := newPartition(t, 4096, luns, luns)
	runShared(t, []*storvsc.Controller{p.open(t, 0, storvsc.Config{}), p.open(t, 1, storvsc.Config{})}, blocks)
}

// salt names a writer's version of a block: guest g's k-th write.
func salt(g, k int) byte { return byte(1 + g*100 + k) }

func runShared(t *testing.T, ctls []*storvsc.Controller, blocks int) {
	ctx := testContext(t)
	const writes, readers = 60, 3
	var wg sync.WaitGroup
	fail := make(chan error, 64)
	report := func(err error) {
		select {
		case fail <- err:
		default:
		}
	}
	// checkBlocks: every block of b (from lba) is some version of itself.
	checkBlocks := func(b []byte, lba uint64) error {
		for i := 0; i < len(b); i += blockSize {
			blk := b[i : i+blockSize]
			if !bytes.Equal(blk, pattern(lba+uint64(i/blockSize), blk[8])) {
				return fmt.Errorf("block %d torn or foreign (salt %#x)", lba+uint64(i/blockSize), blk[8])
			}
		}
		return nil
	}
	for g, c := range ctls {
		// A writer per guest: runs of 1..64 blocks over the whole unit,
		// both guests over the same blocks.
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			buf, err := c.NewBuffer(64 * blockSize)
			if err != nil {
				report(err)
				return
			}
			defer buf.Free()
			for k := range writes {
				n := 1 + r.IntN(64)
				lba := uint64(r.IntN(blocks - n + 1))
				part, _ := buf.Slice(0, n*blockSize)
				for j := range n {
					part.WriteAt(pattern(lba+uint64(j), salt(g, k)), int64(j*blockSize))
				}
				if err := c.Write(ctx, lun0, lba, uint32(n), part); err != nil {
					report(fmt.Errorf("guest %d write %d: %w", g, k, err))
					return
				}
				// This guest's write is complete: the other guest reads it
				// unless a later write covered the block.
				other := ctls[1-g]
				one, err := other.NewBuffer(blockSize)
				if err != nil {
					report(err)
					return
				}
				err = other.Read(ctx, lun0, lba, 1, one)
				b := one.Bytes()
				one.Free()
				if err != nil {
					report(err)
					return
				}
				if err := checkBlocks(b, lba); err != nil {
					report(fmt.Errorf("guest %d reading guest %d's write: %w", 1-g, g, err))
				}
			}
		}()
		// Readers: whole-range reads while the writers run.
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf, err := c.NewBuffer(blocks * blockSize)
				if err != nil {
					report(err)
					return
				}
				defer buf.Free()
				for range 20 {
					if err := c.Read(ctx, lun0, 0, uint32(blocks), buf); err != nil {
						report(err)
						return
					}
					if err := checkBlocks(buf.Bytes(), 0); err != nil {
						report(fmt.Errorf("guest %d reader: %w", g, err))
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Error(err)
	}
	// Both guests see the same final disk, every block a whole version.
	var final [][]byte
	for _, c := range ctls {
		buf := buffer(t, c, blocks*blockSize)
		if err := c.Read(ctx, lun0, 0, uint32(blocks), buf); err != nil {
			t.Fatal(err)
		}
		if err := checkBlocks(buf.Bytes(), 0); err != nil {
			t.Fatal(err)
		}
		final = append(final, buf.Bytes())
	}
	if !bytes.Equal(final[0], final[1]) {
		t.Fatal("the two guests read different disks")
	}
}

// TestPagesOutsideRAM: GPA-direct ranges naming frames the guest does not
// have are refused with ILLEGAL REQUEST / INVALID FIELD IN CDB (storvsp:
// a guest's bad pages are its own SCSI error), nothing outside the named
// pages changes, the disk is untouched by a refused write, and the channel
// goes on.
func TestPagesOutsideRAM(t *testing.T) {
	p, rw, _ := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	ramPages := uint64(4096)
	good := buffer(t, c, 4096)
	goodPFN := good.Range().PFNs[0]
	canary := buffer(t, c, 4096)
	canary.WriteAt(bytes.Repeat([]byte{0xCC}, 4096), 0)
	good.WriteAt(bytes.Repeat([]byte{0x77}, 4096), 0)
	before := bytes.Clone(rw.Bytes())
	for _, tc := range []struct {
		name string
		dir  storvsc.Direction
		cdb  []byte
		rng  client.Range
	}{
		{"read into a frame past the end", storvsc.DataIn, storvsc.CDBRead10(0, 8), client.Range{Len: 4096, PFNs: []uint64{ramPages + 10}}},
		{"read whose second page is past the end", storvsc.DataIn, storvsc.CDBRead10(0, 16), client.Range{Len: 8192, PFNs: []uint64{goodPFN, ramPages}}},
		{"write from a frame past the end", storvsc.DataOut, storvsc.CDBWrite10(0, 8), client.Range{Len: 4096, PFNs: []uint64{1 << 40}}},
		{"write whose second page is past the end", storvsc.DataOut, storvsc.CDBWrite10(0, 16), client.Range{Len: 8192, PFNs: []uint64{goodPFN, ramPages + 1}}},
	} {
		rng := tc.rng
		res, err := c.Execute(ctx, &storvsc.Request{Addr: lun0, CDB: tc.cdb, Dir: tc.dir, Pages: &rng})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		s, _ := res.Sense()
		if res.OK() || res.SRBStatus != protocol.SRBStatusInvalidRequest|protocol.SRBStatusAutosenseValid ||
			s != (storvsc.Sense{Key: storvsc.KeyIllegalRequest, ASC: 0x24}) || res.N != 0 {
			t.Errorf("%s: %+v (sense %v)", tc.name, res, s)
		}
	}
	if !bytes.Equal(rw.Bytes(), before) {
		t.Fatal("a refused write changed the disk")
	}
	if !allAre(canary.Bytes(), 0xCC) {
		t.Fatal("a page no request named changed")
	}
	if err := c.Read(ctx, lun0, 0, 8, good); err != nil || !bytes.Equal(good.Bytes(), before[:4096]) {
		t.Fatalf("the channel after the refusals: %v", err)
	}
	if len(p.ctls[0].Closes()) != 0 {
		t.Fatal("the VSP closed the channel")
	}
}

// TestMalformedRequestsCloseTheChannel: requests storvsp cannot answer —
// a data_transfer_length beyond the buffer, a PFN beyond 52 bits, an
// in-band request with a data length — close the channel: the server
// rescinds it, the request in flight fails, and the pages it held come
// back.
func TestMalformedRequestsCloseTheChannel(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func(good *storvsc.Buffer) *storvsc.Request
	}{
		{"transfer length beyond the buffer", func(good *storvsc.Buffer) *storvsc.Request {
			return &storvsc.Request{Addr: lun0, CDB: storvsc.CDBRead10(0, 16), Dir: storvsc.DataIn, Data: good, TransferLength: 8192}
		}},
		{"frame beyond 52 bits", func(*storvsc.Buffer) *storvsc.Request {
			return &storvsc.Request{Addr: lun0, CDB: storvsc.CDBRead10(0, 8), Dir: storvsc.DataIn,
				Pages: &client.Range{Len: 4096, PFNs: []uint64{1 << 53}}}
		}},
		{"transfer length without a buffer", func(*storvsc.Buffer) *storvsc.Request {
			return &storvsc.Request{Addr: lun0, CDB: storvsc.CDBRead10(0, 1), Dir: storvsc.NoData, TransferLength: 512}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, rw, _ := standard(t)
			c := p.open(t, 0, storvsc.Config{})
			ctx := testContext(t)
			good := buffer(t, c, 4096)
			before := bytes.Clone(rw.Bytes())
			_, err := c.Execute(ctx, tc.req(good))
			if !errors.Is(err, storvsc.ErrStopped) || !errors.Is(err, client.ErrRescinded) {
				t.Fatalf("the request: %v", err)
			}
			<-c.Done()
			if err := c.TestUnitReady(ctx, lun0); !errors.Is(err, storvsc.ErrStopped) {
				t.Fatalf("after the rescind: %v", err)
			}
			closes := p.ctls[0].Closes()
			if len(closes) != 1 || !errors.Is(closes[0], storvsp.ErrMalformed) {
				t.Fatalf("the VSP's open ended with %v", closes)
			}
			if !bytes.Equal(rw.Bytes(), before) {
				t.Fatal("the disk changed")
			}
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			good.Free()
			if n := p.l.RAM.InUse(); n != p.ramIn {
				t.Fatalf("%d pages in use, %d before the open", n, p.ramIn)
			}
		})
	}
}

// TestAbandonedRequestKeepsItsPages: a request whose context ends while
// the host holds it returns at once, but its buffer stays allocated until
// the completion comes, even after Free.
func TestAbandonedRequestKeepsItsPages(t *testing.T) {
	rw := patternedDisk(t, 64, false)
	gated := newGatedDisk(rw)
	p := newPartition(t, 2048, map[storvsp.Address]*scsi.LogicalUnit{{}: unit(t, gated, scsi.Options{})})
	c := p.open(t, 0, storvsc.Config{})
	inUse := p.l.RAM.InUse()
	buf, err := c.NewBuffer(3 * 4096)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error)
	go func() { done <- c.Read(ctx, lun0, 0, 24, buf) }()
	for gated.Arrived() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned read: %v", err)
	}
	buf.Free()
	if n := p.l.RAM.InUse(); n != inUse+3 {
		t.Fatalf("%d pages in use with the host holding 3, %d before", n, inUse)
	}
	gated.open()
	deadline := time.Now().Add(10 * time.Second)
	for p.l.RAM.InUse() != inUse {
		if time.Now().After(deadline) {
			t.Fatalf("the buffer was not freed after its completion: %d pages in use", p.l.RAM.InUse())
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.TestUnitReady(testContext(t), lun0); err != nil {
		t.Fatal(err)
	}
}

// TestCloseFailsRequestsInFlight: Close ends the requests the host still
// holds with ErrStopped and, once the host has closed the channel, frees
// their buffers.
func TestCloseFailsRequestsInFlight(t *testing.T) {
	rw := patternedDisk(t, 64, false)
	gated := newGatedDisk(rw)
	p := newPartition(t, 2048, map[storvsp.Address]*scsi.LogicalUnit{{}: unit(t, gated, scsi.Options{})})
	c, err := p.tryOpen(t, 0, storvsc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	buf, err := c.NewBuffer(4096)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- c.Read(testContext(t), lun0, 0, 8, buf) }()
	for gated.Arrived() == 0 {
		time.Sleep(time.Millisecond)
	}
	buf.Free()
	closed := make(chan error)
	go func() { closed <- c.Close(testContext(t)) }()
	if err := <-done; !errors.Is(err, storvsc.ErrStopped) {
		t.Fatalf("read in flight at Close: %v", err)
	}
	// The server's close waits for the VSP, which waits for the disk.
	gated.open()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := p.l.RAM.InUse(); n != p.ramIn {
		t.Fatalf("%d pages in use after Close, %d before the open", n, p.ramIn)
	}
}

// TestResetBus: RESET_BUS completes, and I/O goes on.
func TestResetBus(t *testing.T) {
	p, _, _ := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	if err := c.ResetBus(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.TestUnitReady(ctx, lun0); err != nil {
		t.Fatal(err)
	}
}

// TestRescanRequest: ENUMERATE_BUS from the host (trans_id 0) reaches
// OnRescan; a COMPLETE_IO with ID 0 is dropped.
func TestRescanRequest(t *testing.T) {
	p, _, _ := standard(t)
	got := make(chan protocol.Operation, 4)
	c := p.open(t, 0, storvsc.Config{OnRescan: func(op protocol.Operation) { got <- op }})
	ch := p.ctls[0].lastChannel()
	for _, op := range []protocol.Operation{protocol.OpCompleteIO, protocol.OpEnumerateBus, protocol.OpRemoveDevice} {
		pkt := protocol.Packet{Operation: op}
		b := pkt.Marshal()
		if err := ch.SendInband(0, 0, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []protocol.Operation{protocol.OpEnumerateBus, protocol.OpRemoveDevice} {
		select {
		case op := <-got:
			if op != want {
				t.Fatalf("rescan %v, want %v", op, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no rescan")
		}
	}
	if err := c.TestUnitReady(testContext(t), lun0); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Unsolicited != 2 || s.Dropped != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestBufferChecks: views stay inside their buffer, and a freed buffer
// is refused.
func TestBufferChecks(t *testing.T) {
	p, _, _ := standard(t)
	c := p.open(t, 0, storvsc.Config{})
	b := buffer(t, c, 3*4096)
	for _, s := range [][2]int{{-1, 1}, {0, 0}, {0, 3*4096 + 1}, {3 * 4096, 1}} {
		if _, err := b.Slice(s[0], s[1]); !errors.Is(err, storvsc.ErrInvalid) {
			t.Errorf("slice %v: %v", s, err)
		}
	}
	v, _ := b.Slice(4095, 2)
	if r := v.Range(); r.Offset != 4095 || r.Len != 2 || len(r.PFNs) != 2 {
		t.Fatalf("view range %+v", r)
	}
	if _, err := b.WriteAt(make([]byte, 10), 3*4096-9); !errors.Is(err, storvsc.ErrInvalid) {
		t.Fatalf("write past the end: %v", err)
	}
	b.Free()
	if err := c.Read(testContext(t), lun0, 0, 8, b); !errors.Is(err, storvsc.ErrInvalid) {
		t.Fatalf("read into a freed buffer: %v", err)
	}
	if _, err := c.Execute(testContext(t), &storvsc.Request{Addr: lun0, CDB: storvsc.CDBTestUnitReady(), Dir: storvsc.DataIn}); !errors.Is(err, storvsc.ErrInvalid) {
		t.Fatalf("data-in without data: %v", err)
	}
}

// TestOpenRefusesOtherDevices: only a SCSI offer is opened.
func TestOpenRefusesOtherDevices(t *testing.T) {
	p, _, _ := standard(t)
	o, err := p.l.Client.WaitOffer(testContext(t), func(client.Offer) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	o.InterfaceType = proto.IDEGUID
	if _, err := storvsc.Open(testContext(t), p.l.Client, p.l.RAM, o, storvsc.Config{}); !errors.Is(err, storvsc.ErrInvalid) {
		t.Fatalf("%v", err)
	}
}
