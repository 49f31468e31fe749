package hv

import (
	"reflect"

	"testing"

	"gohv/hv/tlfs"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// TestFastExitHandlesAsTheRunLoopDoes: a CPUID exit offered from the
// backend's loop is counted and answered as the run loop answers it; the
// backend may enter again at once while nothing waits for the core, and
// must return from Run once an interrupt is pending, a stop is asked or
// the slice is over.
func TestFastExitHandlesAsTheRunLoopDoes(t *testing.T) {
	p, vp, v, host := enabledVP(t)
	vp.newSlice()
	cpuid := func() vcpu.FastResult {
		v.regs.RIP = 0x1000
		v.regs.GPR[x86.RAX] = 0
		e := vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}
		return vp.fastExit(&e, true)
	}
	if r := cpuid(); r != vcpu.FastHandled {
		t.Fatalf("idle VP: %v, want FastHandled", r)
	}
	a, _, _, _ := p.hv.Model.CPUID(0, 0)
	if v.regs.RIP != 0x1002 || uint32(v.regs.GPR[x86.RAX]) != a || vp.Exits[vcpu.ExitCPUID] != 1 {
		t.Errorf("RIP %#x, EAX %#x (want %#x), %d CPUID exits counted", v.regs.RIP, v.regs.GPR[x86.RAX], a, vp.Exits[vcpu.ExitCPUID])
	}

	// The slice's end is seen within fastCheckEvery exits.
	host.now.Store(int64(vp.sliceEndTSC))
	n := 0
	for cpuid() == vcpu.FastHandled {
		if n++; n > fastCheckEvery {
			t.Fatalf("still FastHandled %d exits after the slice ended", n)
		}
	}
	vp.newSlice()

	if r := cpuid(); r != vcpu.FastHandled {
		t.Fatalf("new slice: %v, want FastHandled", r)
	}
	vp.Interrupt(0x30)
	if r := cpuid(); r != vcpu.FastHandledReturn {
		t.Errorf("interrupt pending: %v, want FastHandledReturn", r)
	}

	p2, v2, _, _ := newTestPartition(t, 1<<20)
	vp2 := p2.VP(0)
	vp2.newSlice()
	p2.Start()
	p2.Stop("test")
	p2.Wait()
	e := vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}
	if r := vp2.fastExit(&e, false); r != vcpu.FastHandledReturn || v2.regs.RIP == 0 {
		t.Errorf("stop asked: %v (RIP %#x), want FastHandledReturn after the CPUID", r, v2.regs.RIP)
	}
}

// TestFastExitDoesNotAllocate: the exits a backend offers to fastExit
// allocate nothing there either.
func TestFastExitDoesNotAllocate(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	p.console = nil
	vp := p.VP(0)
	vp.newSlice()
	for _, e := range []vcpu.Exit{
		{Kind: vcpu.ExitCPUID, InstrLen: 2},
		{Kind: vcpu.ExitHypercall, InstrLen: 3},
		{Kind: vcpu.ExitIO, Port: 0x3ff, Size: 1, InstrLen: 1},
		{Kind: vcpu.ExitIO, Port: 0x2f0, Size: 4, In: true, InstrLen: 1},
	} {
		for _, bounded := range []bool{true, false} {
			n := testing.AllocsPerRun(1000, func() {
				v.regs.RIP = 0x1000
				vp.fastExit(&e, bounded)
			})
			if n != 0 {
				t.Errorf("%v exit, bounded %v: %v allocations per fast exit", e.Kind, bounded, n)
			}
		}
	}
}

// portLog is a port device that answers IN with a fixed value and records
// what OUT wrote.
type portLog struct{ outs []uint32 }

func (d *portLog) In(port uint16, size int) uint32 { return 0x5a5a_5a5a }
func (d *portLog) Out(port uint16, size int, v uint32) {
	d.outs = append(d.outs, v)
}

// TestFastExitReadsOnlyFastState: what fastExit does with a CPUID,
// hypercall or port I/O exit depends only on the registers
// vcpu.FastState names for its kind, and it changes no other: a backend
// may leave every other field of Regs stale (VMX reads them only when
// asked, SyncState). Each exit is handled twice, on the true registers
// and on registers whose other fields are inverted (SyncState puts the
// true ones back, as a backend's would); the outcome must be the same and
// the inverted fields untouched.
func TestFastExitReadsOnlyFastState(t *testing.T) {
	const port = 0x2f0
	long := func(r *vcpu.Regs) {
		r.CR0 = x86.CR0PE | x86.CR0PG
		r.EFER = x86.EFERLME | x86.EFERLMA
		r.CS.Attrib = x86.SegTypeCodeXR | x86.SegS | x86.SegP | x86.SegL
	}
	prot32 := func(r *vcpu.Regs) {
		r.CR0 = x86.CR0PE
		r.CS.Attrib = x86.SegTypeCodeXR | x86.SegS | x86.SegP | x86.SegDB
	}
	for _, c := range []struct {
		name  string
		exit  vcpu.Exit
		setup func(r *vcpu.Regs)
	}{
		{"CPUID 0, long mode", vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}, func(r *vcpu.Regs) { long(r) }},
		{"CPUID 1, 32-bit", vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}, func(r *vcpu.Regs) { prot32(r); r.GPR[x86.RAX] = 1 }},
		{"CPUID 0x40000003", vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}, func(r *vcpu.Regs) { long(r); r.GPR[x86.RAX] = 0x4000_0003 }},
		{"CPUID at the 4 GiB wrap", vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}, func(r *vcpu.Regs) { prot32(r); r.RIP = 0xffff_ffff }},
		{"hypercall, unknown code, 64-bit", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func(r *vcpu.Regs) { long(r); r.GPR[x86.RCX] = 0xffff }},
		{"hypercall, NotifyLongSpinWait, 64-bit", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func(r *vcpu.Regs) {
			long(r)
			r.GPR[x86.RCX] = tlfs.HvCallNotifyLongSpinWait | tlfs.ControlFast
		}},
		{"hypercall, unknown code, 32-bit", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func(r *vcpu.Regs) { prot32(r); r.GPR[x86.RAX] = 0xffff }},
		{"hypercall at CPL 3", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func(r *vcpu.Regs) {
			long(r)
			r.SS.Attrib = 3 << x86.SegDPLShift
		}},
		{"hypercall in real mode", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func(r *vcpu.Regs) {}},
		{"OUT", vcpu.Exit{Kind: vcpu.ExitIO, Port: port, Size: 2, InstrLen: 1}, func(r *vcpu.Regs) { long(r); r.GPR[x86.RAX] = 0x1234_5678 }},
		{"IN", vcpu.Exit{Kind: vcpu.ExitIO, Port: port, Size: 1, In: true, InstrLen: 1}, func(r *vcpu.Regs) { prot32(r); r.GPR[x86.RAX] = 0x1234_5678 }},
	} {
		type outcome struct {
			gpr      [16]uint64
			rip      uint64
			injected []vcpu.Event
			outs     []uint32
			res      vcpu.FastResult
		}
		run := func(invert bool) (outcome, vcpu.Regs, vcpu.Regs) {
			p, v, _, _ := newTestPartition(t, 1<<20)
			dev := &portLog{}
			p.AddPort(port, 1, dev)
			vp := p.VP(0)
			vp.newSlice()
			wrmsr(vp, v, tlfs.MsrGuestOSID, 1)
			v.injected = nil
			r := &v.regs
			r.RIP = 0x1000
			r.GPR = [16]uint64{1, 2, 3, 4, 0x8000, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
			r.RFLAGS, r.CR3, r.CR4, r.PAT = x86.RFLAGSFixed|x86.RFLAGSIF, 0x5000, x86.CR4PAE, x86.PATReset
			c.setup(r)
			truth := *r
			if invert {
				invertStale(r, vcpu.FastState(c.exit.Kind))
				v.unsynced = func(r *vcpu.Regs) { *r = syncedFrom(*r, truth, vcpu.FastState(c.exit.Kind)) }
			}
			seen := *r
			e := c.exit
			res := vp.fastExit(&e, false)
			o := outcome{gpr: r.GPR, rip: r.RIP, injected: v.injected, outs: dev.outs, res: res}
			o.gpr[x86.RSP] = 0 // not FastState: compared below with the rest
			return o, seen, *r
		}
		want, _, _ := run(false)
		got, seen, after := run(true)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: on stale registers\n got %+v\nwant %+v", c.name, got, want)
		}
		if stale := syncedFrom(after, seen, vcpu.FastState(c.exit.Kind)); stale != after {
			t.Errorf("%s: fields beyond FastState changed without SyncState:\n got %+v\nwant %+v", c.name, after, stale)
		}
	}
}

// invertStale inverts every field of r that vcpu.FastState(f) does not
// name: what a backend's stale fields could hold.
func invertStale(r *vcpu.Regs, f vcpu.FastFields) {
	seg := func(s *vcpu.Segment) {
		s.Selector, s.Attrib, s.Limit, s.Base = ^s.Selector, ^s.Attrib, ^s.Limit, ^s.Base
	}
	r.GPR[x86.RSP], r.RFLAGS, r.CR3, r.CR4, r.PAT = ^r.GPR[x86.RSP], ^r.RFLAGS, ^r.CR3, ^r.CR4, ^r.PAT
	r.CS.Selector, r.CS.Limit, r.CS.Base = ^r.CS.Selector, ^r.CS.Limit, ^r.CS.Base
	r.SS.Selector, r.SS.Limit, r.SS.Base = ^r.SS.Selector, ^r.SS.Limit, ^r.SS.Base
	for _, s := range []*vcpu.Segment{&r.DS, &r.ES, &r.FS, &r.GS, &r.TR, &r.LDTR} {
		seg(s)
	}
	r.GDTR.Base, r.GDTR.Limit, r.IDTR.Base, r.IDTR.Limit = ^r.GDTR.Base, ^r.GDTR.Limit, ^r.IDTR.Base, ^r.IDTR.Limit
	if f&vcpu.FastMode == 0 {
		r.CR0, r.EFER, r.SS.Attrib = ^r.CR0, ^r.EFER, ^r.SS.Attrib
	}
}

// syncedFrom is r with every field vcpu.FastState(f) does not name taken
// from truth.
func syncedFrom(r, truth vcpu.Regs, f vcpu.FastFields) vcpu.Regs {
	s := truth
	s.GPR = r.GPR
	s.GPR[x86.RSP] = truth.GPR[x86.RSP]
	s.RIP, s.CR2, s.CR8, s.CS.Attrib = r.RIP, r.CR2, r.CR8, r.CS.Attrib
	if f&vcpu.FastMode != 0 {
		s.CR0, s.EFER, s.SS.Attrib = r.CR0, r.EFER, r.SS.Attrib
	}
	return s
}

// TestFastExitBounded: offered with host interrupts held off (bounded),
// fastExit handles CPUID and a hypercall whose code no call has — in 64-
// and 32-bit mode, and the #UD of a caller that may not make hypercalls —
// and refuses, changing nothing, a hypercall a handler serves and port
// I/O, which it handles when they are offered again unbounded.
func TestFastExitBounded(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	vp.newSlice()
	wrmsr(vp, v, tlfs.MsrGuestOSID, 1)
	r := &v.regs
	long := func() {
		r.CR0, r.EFER = x86.CR0PE|x86.CR0PG, x86.EFERLME|x86.EFERLMA
		r.CS.Attrib, r.SS.Attrib = x86.SegTypeCodeXR|x86.SegS|x86.SegP|x86.SegL, 0
	}
	prot32 := func() {
		r.CR0, r.EFER = x86.CR0PE, 0
		r.CS.Attrib, r.SS.Attrib = x86.SegTypeCodeXR|x86.SegS|x86.SegP|x86.SegDB, 0
	}
	for _, c := range []struct {
		name    string
		exit    vcpu.Exit
		setup   func()
		bounded bool // handled when offered bounded
	}{
		{"CPUID", vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}, long, true},
		{"unknown hypercall, 64-bit", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func() { long(); r.GPR[x86.RCX] = 0xffff }, true},
		{"unknown hypercall, 32-bit", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func() {
			prot32()
			r.GPR[x86.RAX], r.GPR[x86.RCX] = 0xffff, tlfs.HvCallNotifyLongSpinWait // RCX is not the input here
		}, true},
		{"hypercall at CPL 3", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func() {
			long()
			r.GPR[x86.RCX], r.SS.Attrib = 0xffff, 3<<x86.SegDPLShift
		}, true},
		{"NotifyLongSpinWait, 64-bit", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func() {
			long()
			r.GPR[x86.RCX] = tlfs.HvCallNotifyLongSpinWait | tlfs.ControlFast
		}, false},
		{"PostMessage, 32-bit", vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}, func() {
			prot32()
			r.GPR[x86.RAX], r.GPR[x86.RCX] = tlfs.HvCallPostMessage, 0xffff
		}, false},
		{"OUT", vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x2f0, Size: 1, InstrLen: 1}, long, false},
	} {
		v.injected = nil
		r.RIP = 0x1000
		c.setup()
		before, exits := *r, vp.Exits
		e := c.exit
		res := vp.fastExit(&e, true)
		if c.bounded {
			if res != vcpu.FastHandled || r.RIP == before.RIP && len(v.injected) == 0 || vp.Exits[e.Kind] != exits[e.Kind]+1 {
				t.Errorf("%s, bounded: %v, RIP %#x, injected %v, want it handled", c.name, res, r.RIP, v.injected)
			}
			continue
		}
		if res != vcpu.FastUnbounded || *r != before || len(v.injected) != 0 || vp.Exits != exits {
			t.Errorf("%s, bounded: %v, RIP %#x, injected %v, want FastUnbounded and nothing changed", c.name, res, r.RIP, v.injected)
		}
		if res := vp.fastExit(&e, false); res != vcpu.FastHandled || r.RIP != before.RIP+uint64(e.InstrLen) {
			t.Errorf("%s, unbounded: %v, RIP %#x", c.name, res, r.RIP)
		}
	}
}

// TestSkipEndsTheReportedShadow: an exit in an STI/MOV SS shadow
// (Exit.Shadow) ends it once the core has done the instruction; one
// outside a shadow asks the backend nothing.
func TestSkipEndsTheReportedShadow(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	vp.newSlice()
	v.shadow = true
	e := vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2, Shadow: true}
	vp.fastExit(&e, true)
	if v.shadow || !vp.shadowSeen {
		t.Errorf("shadow still on (%v) or not noted (%v) after a CPUID in it", v.shadow, vp.shadowSeen)
	}
	v.shadow = true // the backend's, which an exit without Shadow did not report
	e = vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}
	vp.fastExit(&e, true)
	if !v.shadow || vp.shadowSeen {
		t.Errorf("an exit outside a shadow ended one (%v) or noted one (%v)", !v.shadow, vp.shadowSeen)
	}
}
