package apic

import (
	"slices"
	"testing"

	"gohv/x86"
)

// takers returns the indexes of the LAPICs holding vector v in IRR.
func takers(r *rig, v uint8) (idx []int) {
	for i, l := range r.lapics {
		if irr, _, _ := l.snapshot(); testBit(&irr, v) {
			idx = append(idx, i)
		}
	}
	return idx
}

func enableAll(r *rig) {
	for _, l := range r.lapics {
		enable(l)
	}
}

// TestLogicalFlat: in the flat model a logical destination is an 8-bit
// mask matched against LDR bits 31:24 (SDM Vol. 3A 11.6.2.2).
func TestLogicalFlat(t *testing.T) {
	r := newRig(t, 4, nil)
	enableAll(r)
	for i, l := range r.lapics {
		xw(l, LAPIC_LDR, 1<<(24+i)) // DFR stays flat (reset value)
	}
	for _, c := range []struct {
		mda  uint32
		want []int
	}{
		{0x01, []int{0}},
		{0x06, []int{1, 2}},
		{0x0f, []int{0, 1, 2, 3}},
		{0x30, nil},
		{0xff, []int{0, 1, 2, 3}}, // broadcast
	} {
		v := uint8(0x40 + c.mda&0x0f)
		Deliver(r.bus, Message{Vector: v, Logical: true, Dest: c.mda})
		if got := takers(r, v); !slices.Equal(got, c.want) {
			t.Errorf("flat MDA %#x reached %v, want %v", c.mda, got, c.want)
		}
		for _, l := range r.lapics {
			l.mu.Lock()
			l.irr = [4]uint64{}
			l.mu.Unlock()
		}
	}
}

// TestLogicalCluster: in the cluster model MDA bits 7:4 name the cluster
// and 3:0 a member mask.
func TestLogicalCluster(t *testing.T) {
	r := newRig(t, 4, nil)
	enableAll(r)
	ldrs := []uint32{0x11, 0x12, 0x21, 0x24}
	for i, l := range r.lapics {
		xw(l, LAPIC_DFR, DFR_MODEL_CLUSTER<<DFR_MODEL)
		xw(l, LAPIC_LDR, ldrs[i]<<24)
	}
	if got := xr(r.lapics[0], LAPIC_DFR); got != 0x0fff_ffff {
		t.Fatalf("DFR reads %#x, want 0x0fffffff", got)
	}
	for _, c := range []struct {
		mda  uint32
		want []int
	}{
		{0x11, []int{0}},
		{0x13, []int{0, 1}},
		{0x25, []int{2, 3}},
		{0x31, nil},
		{0x10, nil},
		{0xff, []int{0, 1, 2, 3}},
	} {
		v := uint8(0x80 | c.mda&0x3f)
		Deliver(r.bus, Message{Vector: v, Logical: true, Dest: c.mda})
		if got := takers(r, v); !slices.Equal(got, c.want) {
			t.Errorf("cluster MDA %#x reached %v, want %v", c.mda, got, c.want)
		}
	}
	// A reserved model matches no logical destination.
	xw(r.lapics[0], LAPIC_DFR, 0x5000_0000)
	Deliver(r.bus, Message{Vector: 0x30, Logical: true, Dest: 0x11})
	if got := takers(r, 0x30); got != nil {
		t.Errorf("reserved DFR model matched: %v", got)
	}
}

// TestX2APICCluster: x2APIC logical IDs are derived from the x2APIC ID
// (cluster = ID[19:4], member bit = ID[3:0]) and matched as cluster +
// 16-bit mask (SDM Vol. 3A 11.12.10.2).
func TestX2APICCluster(t *testing.T) {
	ids := []uint32{0, 1, 16, 17, 0x2_3456}
	r := newRig(t, len(ids), func(i int, c *Config) { c.ID = ids[i] })
	for _, l := range r.lapics {
		mustNil(t, l.WriteMSR(x86.MsrAPICBase, l.Base()|x86.APICBaseEXTD))
		mustNil(t, l.WriteMSR(x86.MsrX2APICSIVR, 1<<SVR_ENABLE|0xff))
	}
	wantLDR := []uint64{0x1, 0x2, 0x1_0001, 0x1_0002, 0x2345_0040}
	for i, l := range r.lapics {
		if got, _ := l.ReadMSR(x86.MsrX2APICLDR); got != wantLDR[i] {
			t.Errorf("x2APIC ID %#x: LDR %#x, want %#x", ids[i], got, wantLDR[i])
		}
		if got, _ := l.ReadMSR(x86.MsrX2APICID); got != uint64(ids[i]) {
			t.Errorf("x2APIC ID reads %#x, want %#x", got, ids[i])
		}
	}
	for j, c := range []struct {
		dest uint32
		want []int
	}{
		{0x0000_0003, []int{0, 1}},
		{0x0001_0002, []int{3}},
		{0x0002_0001, nil},
		{0x2345_0040, []int{4}},
		{0xffff_ffff, []int{0, 1, 2, 3, 4}},
	} {
		v := uint8(0x50 + j)
		Deliver(r.bus, Message{Vector: v, Logical: true, Dest: c.dest, X2APIC: true})
		if got := takers(r, v); !slices.Equal(got, c.want) {
			t.Errorf("x2APIC logical %#x reached %v, want %v", c.dest, got, c.want)
		}
	}
	// Physical: 32-bit IDs; 0xff is an ID, not a broadcast, in x2APIC format.
	Deliver(r.bus, Message{Vector: 0x70, Dest: 0x2_3456, X2APIC: true})
	if got := takers(r, 0x70); !slices.Equal(got, []int{4}) {
		t.Errorf("x2APIC physical reached %v", got)
	}
	Deliver(r.bus, Message{Vector: 0x71, Dest: 0xff, X2APIC: true})
	if got := takers(r, 0x71); got != nil {
		t.Errorf("x2APIC physical 0xff reached %v", got)
	}
	// An 8-bit broadcast (I/O APIC format) still reaches everyone.
	Deliver(r.bus, Message{Vector: 0x72, Dest: 0xff})
	if got := takers(r, 0x72); len(got) != 5 {
		t.Errorf("xAPIC-format broadcast reached %v", got)
	}
}

// TestPhysical: physical destinations compare the APIC ID; 0xff
// broadcasts (SDM Vol. 3A 11.6.2.1); an xAPIC may rewrite its ID.
func TestPhysical(t *testing.T) {
	r := newRig(t, 3, nil)
	enableAll(r)
	Deliver(r.bus, Message{Vector: 0x40, Dest: 2})
	Deliver(r.bus, Message{Vector: 0x41, Dest: 0xff})
	Deliver(r.bus, Message{Vector: 0x42, Dest: 7})
	xw(r.lapics[1], LAPIC_ID, 0x0900_0000|0x00ff_ffff) // reserved bits dropped
	if got := xr(r.lapics[1], LAPIC_ID); got != 0x0900_0000 {
		t.Fatalf("ID reads %#x", got)
	}
	Deliver(r.bus, Message{Vector: 0x43, Dest: 9})
	for v, want := range map[uint8][]int{0x40: {2}, 0x41: {0, 1, 2}, 0x42: nil, 0x43: {1}} {
		if got := takers(r, v); !slices.Equal(got, want) {
			t.Errorf("vector %#x reached %v, want %v", v, got, want)
		}
	}
}

// TestICRShorthands sends through the ICR with each shorthand.
func TestICRShorthands(t *testing.T) {
	r := newRig(t, 3, nil)
	enableAll(r)
	src := r.lapics[1]
	for _, c := range []struct {
		sh   uint32
		v    uint8
		want []int
	}{
		{ICR_DST_SELF, 0x50, []int{1}},
		{ICR_DST_ALL, 0x51, []int{0, 1, 2}},
		{ICR_DST_REST, 0x52, []int{0, 2}},
		{0, 0x53, []int{2}}, // destination field: ID 2
	} {
		xw(src, LAPIC_ICRH, 2<<24)
		xw(src, LAPIC_ICRL, c.sh|uint32(c.v))
		if got := takers(r, c.v); !slices.Equal(got, c.want) {
			t.Errorf("shorthand %#x reached %v, want %v", c.sh, got, c.want)
		}
		if got := xr(src, LAPIC_ICRL); got&(1<<ICR_DLV_STATUS) != 0 {
			t.Error("delivery status reads busy")
		}
	}
	if s := src.Stats(); s.IPIsSent != 4 || s.IPIsNoTarget != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestIPIToMissingTarget: an IPI to an ID no LAPIC has is dropped and
// counted; nothing panics.
func TestIPIToMissingTarget(t *testing.T) {
	r := newRig(t, 1, nil)
	l := r.lapics[0]
	enable(l)
	xw(l, LAPIC_ICRH, 5<<24)
	xw(l, LAPIC_ICRL, 0x60)
	xw(l, LAPIC_ICRL, ICR_DLV_INIT)
	xw(l, LAPIC_ICRL, ICR_DLV_SIPI|0x10)
	xw(l, LAPIC_ICRL, ICR_DST_REST|0x60)
	if s := l.Stats(); s.IPIsSent != 4 || s.IPIsNoTarget != 4 {
		t.Fatalf("stats %+v, want 4 sent, 4 without target", s)
	}
	if (l.TakeEvents() != Events{}) {
		t.Fatal("an IPI to a missing target reached the sender")
	}
	// A nil slot on the bus (a VP not made yet) is skipped.
	r.bus.list = append(r.bus.list, nil)
	xw(l, LAPIC_ICRL, ICR_DST_ALL|0x61)
	if got := takers(r, 0x61); !slices.Equal(got, []int{0}) {
		t.Fatalf("broadcast with a nil bus slot reached %v", got)
	}
}

// TestLowestPriorityPicksLowestID: a lowest-priority message goes to one
// LAPIC: the matching, software-enabled one with the lowest APIC ID.
func TestLowestPriorityPicksLowestID(t *testing.T) {
	r := newRig(t, 3, nil)
	enableAll(r)
	for i, l := range r.lapics {
		xw(l, LAPIC_LDR, 1<<(24+i))
	}
	xw(r.lapics[1], LAPIC_SVR, 0xff) // disabled: skipped
	m, a := Deliver(r.bus, Message{Vector: 0x44, Mode: DeliveryLowestPriority, Logical: true, Dest: 0x6})
	if got := takers(r, 0x44); !slices.Equal(got, []int{2}) || m != 2 || a != 1 {
		t.Fatalf("lowest priority reached %v (matched %d, accepted %d), want [2]", got, m, a)
	}
	xw(r.lapics[0], LAPIC_ICRL, ICR_DST_REST|ICR_DLV_LOW|0x45)
	if got := takers(r, 0x45); !slices.Equal(got, []int{2}) {
		t.Fatalf("lowest priority to all-but-self reached %v", got)
	}
}

// TestICROddMessages: INIT level de-assert, reserved modes, invalid
// shorthand combinations, SMI and illegal vectors each have their
// documented outcome.
func TestICROddMessages(t *testing.T) {
	r := newRig(t, 2, nil)
	enableAll(r)
	src, dst := r.lapics[0], r.lapics[1]
	xw(src, LAPIC_ICRH, 1<<24)

	xw(src, LAPIC_ICRL, ICR_DLV_INIT|1<<ICR_TRIGGER) // level de-assert
	if dst.TakeEvents().INIT {
		t.Fatal("INIT level de-assert reset the target")
	}
	xw(src, LAPIC_ICRL, 0b011<<ICR_DLV|0x40)
	xw(src, LAPIC_ICRL, 0b111<<ICR_DLV|0x40)
	xw(src, LAPIC_ICRL, ICR_DST_SELF|ICR_DLV_NMI)
	xw(src, LAPIC_ICRL, ICR_DST_ALL|ICR_DLV_LOW|0x40)
	if s := src.Stats(); s.IPIsInvalid != 4 || s.IPIsSent != 0 {
		t.Fatalf("stats %+v, want 4 invalid, none sent", s)
	}
	xw(src, LAPIC_ICRL, ICR_DLV_SMI)
	if dst.Stats().Dropped != 1 {
		t.Fatal("SMI not dropped by the target")
	}
	xw(src, LAPIC_ICRL, ICR_DLV_NMI)
	if !dst.TakeEvents().NMI {
		t.Fatal("NMI IPI lost")
	}
	xw(src, LAPIC_ICRL, 0x0e) // illegal vector
	xw(src, LAPIC_ESR, 0)
	xw(dst, LAPIC_ESR, 0)
	if got := xr(src, LAPIC_ESR); got != 1<<ESR_SEND_ILLEGAL_VEC {
		t.Fatalf("sender ESR %#x", got)
	}
	if got := xr(dst, LAPIC_ESR); got != 1<<ESR_RECV_ILLEGAL_VEC {
		t.Fatalf("receiver ESR %#x", got)
	}
	if irr, _, _ := dst.snapshot(); bitsOf(irr) != nil {
		t.Fatal("illegal vector reached IRR")
	}
}

// TestINITSIPIThroughICR: the INIT-SIPI-SIPI sequence from the BSP starts
// an AP once, at the first SIPI's vector.
func TestINITSIPIThroughICR(t *testing.T) {
	r := newRig(t, 2, nil)
	bsp, ap := r.lapics[0], r.lapics[1]
	enable(bsp)
	xw(bsp, LAPIC_ICRH, 1<<24)
	xw(bsp, LAPIC_ICRL, ICR_DLV_INIT|1<<ICR_INIT|1<<ICR_TRIGGER)
	xw(bsp, LAPIC_ICRL, ICR_DLV_INIT|1<<ICR_TRIGGER) // de-assert
	xw(bsp, LAPIC_ICRL, ICR_DLV_SIPI|0x9f)
	xw(bsp, LAPIC_ICRL, ICR_DLV_SIPI|0x9f)
	want := Events{INIT: true, WaitForSIPI: true, SIPI: true, SIPIVector: 0x9f}
	if ev := ap.TakeEvents(); ev != want {
		t.Fatalf("AP events %+v, want %+v", ev, want)
	}
	if r.sinks[1].kicks == 0 {
		t.Fatal("AP not kicked")
	}
}

func TestDecodeMSI(t *testing.T) {
	m, ok := DecodeMSI(0xfee0_3004, 0x0000_c1a5)
	want := Message{Vector: 0xa5, Mode: DeliveryLowestPriority, Logical: true, Dest: 3, Level: true}
	if !ok || m != want {
		t.Fatalf("DecodeMSI = %+v %v, want %+v", m, ok, want)
	}
	if _, ok := DecodeMSI(0xfed0_0000, 0x30); ok {
		t.Fatal("address outside 0xfeexxxxx accepted")
	}
}

func TestDeliveryModeString(t *testing.T) {
	if DeliveryStartUp.String() != "start-up" || DeliveryMode(3).String() != "DeliveryMode(0b11)" {
		t.Fatal(DeliveryStartUp.String(), DeliveryMode(3).String())
	}
	if ModeX2APIC.String() != "x2APIC" || Mode(9).String() != "Mode(9)" {
		t.Fatal(ModeX2APIC.String())
	}
}

// TestLowestPriorityAllDisabled: when every match is software-disabled
// the lowest-ID one refuses the message and counts the drop.
func TestLowestPriorityAllDisabled(t *testing.T) {
	r := newRig(t, 2, nil)
	m, a := Deliver(r.bus, Message{Vector: 0x44, Mode: DeliveryLowestPriority, Dest: 0xff})
	if m != 2 || a != 0 || r.lapics[0].Stats().Dropped != 1 {
		t.Fatalf("matched %d accepted %d dropped %d", m, a, r.lapics[0].Stats().Dropped)
	}
}
