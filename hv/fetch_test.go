package hv

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"gohv/hv/emul"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// TestFetchGPAMatchesTheWalker: for 4 KiB, 2 MiB and 1 GiB pages under
// 4-level paging, and with paging off, the fast translation of an
// instruction address is the emulator's full walk's.
func TestFetchGPAMatchesTheWalker(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 4<<20)
	vp := p.VP(0)
	put := func(gpa, val uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], val)
		if err := p.Mem.WriteRAM(gpa, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	const pml4, pdpt, pd, pt = 0x10000, 0x11000, 0x12000, 0x13000
	rw := uint64(x86.PTEPresent | 2)
	put(pml4+0*8, pdpt|rw)
	put(pdpt+0*8, pd|rw)                    // 0-1 GiB through a page directory
	put(pdpt+1*8, 0x4000_0000|rw|x86.PTEPS) // 1-2 GiB: a 1 GiB page (outside RAM: translation only)
	put(pd+0*8, pt|rw)
	put(pd+1*8, 0x20_0000|rw|x86.PTEPS) // 2-4 MiB: a 2 MiB page
	put(pt+5*8, 0x7000|rw)              // 0x5000 -> 0x7000
	v.regs = vcpu.Regs{CR0: x86.CR0PE | x86.CR0PG, CR3: pml4, CR4: x86.CR4PAE, EFER: x86.EFERLME | x86.EFERLMA,
		CS: vcpu.Segment{Attrib: x86.SegL}}
	vp.prepareFetch()
	for _, la := range []uint64{0x5123, 0x20_1234, 0x3f_fff0, 0x4000_1000, 0x7654_3210} {
		want, err := vp.view.Translate(la, emul.AccessFetch)
		got, ok := vp.fetchGPA(la)
		if !ok || err != nil || got != want {
			t.Errorf("la %#x: fast %#x %v, walker %#x %v", la, got, ok, want, err)
		}
	}
	// Not present: the fast path declines and the walker faults.
	if _, ok := vp.fetchGPA(0x9000); ok {
		t.Error("a not-present page translated")
	}
	// Paging off.
	v.regs.CR0, v.regs.EFER = x86.CR0PE, 0
	vp.prepareFetch()
	if got, ok := vp.fetchGPA(0x1_2345_6789); !ok || got != 0x2345_6789 {
		t.Errorf("paging off: %#x %v", got, ok)
	}
}

// FuzzFetchGPA: over arbitrary page tables in the partition's RAM, the
// fast translation never panics, and wherever the emulator's walker also
// translates, both agree.
func FuzzFetchGPA(f *testing.F) {
	f.Add(uint64(0x5123), uint64(1), []byte{0x03, 0x10, 0x01})
	f.Fuzz(func(t *testing.T, la, seed uint64, tables []byte) {
		p, v, _, _ := newTestPartition(t, 1<<20)
		vp := p.VP(0)
		rng := rand.New(rand.NewPCG(seed, seed^0x9e37))
		// Four table pages at 64 KiB, filled from the input and the seed,
		// entries pointing mostly at each other.
		for i := range 4 * 512 {
			var e uint64
			if i < len(tables)/8 {
				e = binary.LittleEndian.Uint64(tables[8*i:])
			} else {
				e = uint64(0x10000+rng.IntN(4)*0x1000) | rng.Uint64()&0xfff | rng.Uint64()&(1<<63)
			}
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], e)
			_ = p.Mem.WriteRAM(0x10000+uint64(8*i), b[:])
		}
		v.regs = vcpu.Regs{CR0: x86.CR0PE | x86.CR0PG, CR3: 0x10000, CR4: x86.CR4PAE, EFER: x86.EFERLME | x86.EFERLMA}
		vp.prepareFetch()
		got, ok := vp.fetchGPA(la)
		want, err := vp.view.Translate(la, emul.AccessFetch)
		if ok && err == nil && got != want {
			t.Fatalf("la %#x: fast %#x, walker %#x", la, got, want)
		}
	})
}

// TestInstructionReadDoesNotAllocate: without an instruction length from
// the hardware (QEMU's SVM), a CPUID exit reads the instruction through
// the in-line walk and the cached code page, and allocates nothing; RIP
// moves past the two bytes.
func TestInstructionReadDoesNotAllocate(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 4<<20)
	vp := p.VP(0)
	put := func(gpa, val uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], val)
		if err := p.Mem.WriteRAM(gpa, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	const pml4, pdpt, pd, pt, code = 0x10000, 0x11000, 0x12000, 0x13000, 0x7000
	rw := uint64(x86.PTEPresent | 2)
	put(pml4, pdpt|rw)
	put(pdpt, pd|rw)
	put(pd, pt|rw)
	put(pt+5*8, code|rw) // linear 0x5000 -> 0x7000
	if err := p.Mem.WriteRAM(code+0x123, []byte{0x0f, 0xa2}); err != nil {
		t.Fatal(err)
	}
	long := vcpu.Regs{CR0: x86.CR0PE | x86.CR0PG, CR3: pml4, CR4: x86.CR4PAE, EFER: x86.EFERLME | x86.EFERLMA,
		CS: vcpu.Segment{Attrib: x86.SegL}}
	e := vcpu.Exit{Kind: vcpu.ExitCPUID}
	n := testing.AllocsPerRun(1000, func() {
		v.regs = long
		v.regs.RIP = 0x5123
		vp.handle(&e)
	})
	if n != 0 {
		t.Errorf("%v allocations per CPUID exit without an instruction length", n)
	}
	if v.regs.RIP != 0x5125 {
		t.Errorf("RIP %#x after CPUID at 0x5123, want 0x5125", v.regs.RIP)
	}
	// The two bytes were compared on the page the tables name, not
	// skipped by the plain length a failed read falls back to.
	v.regs = long
	v.regs.RIP = 0x5123
	if !vp.fetchOpcode(opCPUID) || vp.codePFN != code/x86.PageSize {
		t.Errorf("CPUID's bytes not found at 0x5123 through page %#x (cached %#x)", code/x86.PageSize, vp.codePFN)
	}
	if vp.fetchOpcode(opRDMSR) {
		t.Error("0f a2 read as RDMSR's 0f 32")
	}
}
