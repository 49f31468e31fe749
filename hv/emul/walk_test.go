package emul

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"gohv/x86"
)

// physMem is guest-physical memory as 8-byte words; absent words read 0.
// GPAs at or above 1<<40 fail, to exercise read errors.
type physMem map[uint64]uint64

var errNoRAM = errors.New("no RAM there")

func (p physMem) read(gpa uint64) (uint64, error) {
	if gpa&7 != 0 {
		return 0, fmt.Errorf("unaligned read at %#x", gpa)
	}
	if gpa >= 1<<40 {
		return 0, errNoRAM
	}
	return p[gpa], nil
}

func (p physMem) set32(gpa, v uint64) {
	w := p[gpa&^7]
	sh := (gpa & 4) * 8
	p[gpa&^7] = w&^(0xffffffff<<sh) | (v&0xffffffff)<<sh
}

// Control-register values for the tests.
const (
	tCR0    = x86.CR0PG | x86.CR0WP | x86.CR0PE
	tEFER64 = x86.EFERLMA | x86.EFERLME | x86.EFERNXE
	entP    = x86.PTEPresent
	entRW   = x86.PTEWrite
	entUS   = x86.PTEUser
	entPS   = x86.PTEPS
	entAll  = x86.PTEPresent | x86.PTEWrite | x86.PTEUser
)

// tables builds a levels-deep hierarchy for la with 8-byte entries. The
// table for level L (levels..1) sits at 0x1000*(levels-L+1); entries above
// the leaf point to the next table with flags upper[level] (default
// entAll), and the entry at leafLevel holds leaf.
func tables(levels int, la uint64, leafLevel int, leaf uint64, upper map[int]uint64) physMem {
	pm := physMem{}
	for lvl := levels; lvl >= leafLevel; lvl-- {
		t := uint64(0x1000 * (levels - lvl + 1))
		idx := (la >> (12 + 9*uint(lvl-1))) & 0x1ff
		if lvl == leafLevel {
			pm[t+idx*8] = leaf
			break
		}
		f, ok := upper[lvl]
		if !ok {
			f = entAll
		}
		pm[t+idx*8] = t + 0x1000 | f
	}
	return pm
}

type walkCase struct {
	name    string
	pg      Paging
	pm      physMem
	la      uint64
	acc     Access
	want    uint64
	wantPF  int64 // -1: no #PF expected; else the error code
	wantErr func(error) bool
}

const la64 = 0x00007f123456_7abc

func TestWalk(t *testing.T) {
	long := Paging{CR0: tCR0, CR3: 0x1000, CR4: x86.CR4PAE, EFER: tEFER64, MaxPhysAddr: 48}
	withCR4 := func(p Paging, v uint64) Paging { p.CR4 |= v; return p }
	withCR0 := func(p Paging, v uint64) Paging { p.CR0 = v; return p }
	withEFER := func(p Paging, v uint64) Paging { p.EFER = v; return p }
	withMax := func(p Paging, v uint) Paging { p.MaxPhysAddr = v; return p }
	withCR3 := func(p Paging, v uint64) Paging { p.CR3 = v; return p }

	pae := Paging{CR0: tCR0, CR3: 0x1020, CR4: x86.CR4PAE, EFER: x86.EFERNXE, MaxPhysAddr: 36}
	const laPAE = 0xc0801234
	// PAE: PDPT at 0x1020 (index 3 -> 0x1038), PD at 0x2000, PT at 0x3000.
	paeTables := func(pdpte, pde, pte uint64) physMem {
		pm := physMem{0x1020 + 3*8: pdpte}
		pm[0x2000+((laPAE>>21)&0x1ff)*8] = pde
		if pte != 0 {
			pm[0x3000+((laPAE>>12)&0x1ff)*8] = pte
		}
		return pm
	}

	legacy := Paging{CR0: tCR0, CR3: 0x1000, CR4: x86.CR4PSE, MaxPhysAddr: 40}
	const la32 = 0x80403abc // PDE index 0x201 (high half of a word), PTE index 3
	legacyTables := func(pde, pte uint64) physMem {
		pm := physMem{}
		pm.set32(0x1000+(la32>>22)*4, pde)
		pm.set32(0x2000+((la32>>12)&0x3ff)*4, pte)
		return pm
	}

	la57 := uint64(0x0080123456789abc) // canonical only with 57 bits

	cases := []walkCase{
		// ---- no paging ----
		{name: "paging off truncates", pg: Paging{}, la: 0x123456789, want: 0x23456789, wantPF: -1},
		{name: "paging off with LMA keeps 64 bits", pg: Paging{EFER: x86.EFERLMA}, la: 0x123456789, want: 0x123456789, wantPF: -1},

		// ---- 4-level ----
		{name: "4K page", pg: long, pm: tables(4, la64, 1, 0xabcdef1000|entAll, nil),
			la: la64, want: 0xabcdef1abc, wantPF: -1},
		{name: "2M page", pg: long, pm: tables(4, la64, 2, 0x40000000|entPS|entAll, nil),
			la: la64, want: 0x40000000 | la64&0x1fffff, wantPF: -1},
		{name: "1G page", pg: long, pm: tables(4, la64, 3, 0x80000000|entPS|entAll, nil),
			la: la64, want: 0x80000000 | la64&0x3fffffff, wantPF: -1},
		{name: "CR3 flag, PCID and no-flush bits ignored", pg: withCR4(withCR3(long, 0x1000|0x18|1<<63), 1<<17),
			pm: tables(4, la64, 1, 0x5000|entAll, nil), la: la64, want: 0x5abc, wantPF: -1},
		{name: "ignored high bits 62:52", pg: long, pm: tables(4, la64, 1, 0x5000|entAll|0x7ff<<52, nil),
			la: la64, want: 0x5abc, wantPF: -1},
		{name: "PML4E not present", pg: long, pm: physMem{}, la: la64, wantPF: 0},
		{name: "PTE not present user write", pg: long, pm: tables(4, la64, 1, 0x5000, nil),
			la: la64, acc: AccessWrite | AccessUser, wantPF: int64(x86.PFErrWrite | x86.PFErrUser)},
		{name: "PS in PML4E reserved", pg: long, pm: tables(4, la64, 4, 0x2000|entPS|entAll, nil),
			la: la64, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "address above MAXPHYADDR reserved", pg: withMax(long, 36), pm: tables(4, la64, 1, 1<<40|0x5000|entAll, nil),
			la: la64, acc: AccessWrite | AccessUser, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd | x86.PFErrWrite | x86.PFErrUser)},
		{name: "address below MAXPHYADDR fine", pg: withMax(long, 41), pm: tables(4, la64, 1, 1<<40|0x5000|entAll, nil),
			la: la64, want: 1<<40 | 0x5abc, wantPF: -1},
		{name: "MAXPHYADDR 0 means 52", pg: withMax(long, 0), pm: tables(4, la64, 1, 1<<51|0x5000|entAll, nil),
			la: la64, want: 1<<51 | 0x5abc, wantPF: -1},
		{name: "reserved bit in non-leaf", pg: withMax(long, 39), pm: tables(4, la64, 1, 0x5000|entAll, map[int]uint64{3: entAll | 1<<45}),
			la: la64, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "2M page bit 13 reserved", pg: long, pm: tables(4, la64, 2, 0x40000000|1<<13|entPS|entAll, nil),
			la: la64, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "2M page PAT bit 12 fine", pg: long, pm: tables(4, la64, 2, 0x40000000|1<<12|entPS|entAll, nil),
			la: la64, want: 0x40000000 | la64&0x1fffff, wantPF: -1},
		{name: "1G page bit 20 reserved", pg: long, pm: tables(4, la64, 3, 0x80000000|1<<20|entPS|entAll, nil),
			la: la64, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "XD reserved without NXE", pg: withEFER(long, x86.EFERLMA), pm: tables(4, la64, 1, x86.PTENX|0x5000|entAll, nil),
			la: la64, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "XD reserved without NXE, fetch has no I/D", pg: withEFER(long, x86.EFERLMA), pm: tables(4, la64, 1, x86.PTENX|0x5000|entAll, nil),
			la: la64, acc: AccessFetch, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "NX fetch", pg: long, pm: tables(4, la64, 1, x86.PTENX|0x5000|entAll, nil),
			la: la64, acc: AccessFetch, wantPF: int64(x86.PFErrPresent | x86.PFErrFetch)},
		{name: "NX user fetch", pg: long, pm: tables(4, la64, 1, x86.PTENX|0x5000|entAll, nil),
			la: la64, acc: AccessFetch | AccessUser, wantPF: int64(x86.PFErrPresent | x86.PFErrFetch | x86.PFErrUser)},
		{name: "NX page readable", pg: long, pm: tables(4, la64, 1, x86.PTENX|0x5000|entAll, nil),
			la: la64, acc: AccessUser, want: 0x5abc, wantPF: -1},
		{name: "NX in PDPTE applies", pg: long, pm: tables(4, la64, 1, 0x5000|entAll, map[int]uint64{3: entAll | x86.PTENX}),
			la: la64, acc: AccessFetch, wantPF: int64(x86.PFErrPresent | x86.PFErrFetch)},
		{name: "fetch not present has I/D", pg: long, pm: physMem{}, la: la64, acc: AccessFetch, wantPF: int64(x86.PFErrFetch)},
		{name: "fetch ignores write bit", pg: long, pm: physMem{}, la: la64, acc: AccessFetch | AccessWrite, wantPF: int64(x86.PFErrFetch)},
		{name: "user read of supervisor page", pg: long, pm: tables(4, la64, 1, 0x5000|entP|entRW, nil),
			la: la64, acc: AccessUser, wantPF: int64(x86.PFErrPresent | x86.PFErrUser)},
		{name: "user read, supervisor at PD level", pg: long, pm: tables(4, la64, 1, 0x5000|entAll, map[int]uint64{2: entP | entRW}),
			la: la64, acc: AccessUser, wantPF: int64(x86.PFErrPresent | x86.PFErrUser)},
		{name: "user write read-only", pg: long, pm: tables(4, la64, 1, 0x5000|entP|entUS, nil),
			la: la64, acc: AccessWrite | AccessUser, wantPF: int64(x86.PFErrPresent | x86.PFErrWrite | x86.PFErrUser)},
		{name: "user write, read-only at PML4", pg: long, pm: tables(4, la64, 1, 0x5000|entAll, map[int]uint64{4: entP | entUS}),
			la: la64, acc: AccessWrite | AccessUser, wantPF: int64(x86.PFErrPresent | x86.PFErrWrite | x86.PFErrUser)},
		{name: "supervisor write read-only WP=1", pg: long, pm: tables(4, la64, 1, 0x5000|entP, nil),
			la: la64, acc: AccessWrite, wantPF: int64(x86.PFErrPresent | x86.PFErrWrite)},
		{name: "supervisor write read-only WP=0", pg: withCR0(long, x86.CR0PG|1), pm: tables(4, la64, 1, 0x5000|entP, nil),
			la: la64, acc: AccessWrite, want: 0x5abc, wantPF: -1},
		{name: "supervisor fetch user page", pg: long, pm: tables(4, la64, 1, 0x5000|entAll, nil),
			la: la64, acc: AccessFetch, want: 0x5abc, wantPF: -1},
		{name: "SMEP supervisor fetch user page", pg: withCR4(long, x86.CR4SMEP), pm: tables(4, la64, 1, 0x5000|entAll, nil),
			la: la64, acc: AccessFetch, wantPF: int64(x86.PFErrPresent | x86.PFErrFetch)},
		{name: "SMEP supervisor fetch supervisor page", pg: withCR4(long, x86.CR4SMEP), pm: tables(4, la64, 1, 0x5000|entAll, map[int]uint64{2: entP | entRW}),
			la: la64, acc: AccessFetch, want: 0x5abc, wantPF: -1},
		{name: "SMAP supervisor read user page", pg: withCR4(long, x86.CR4SMAP), pm: tables(4, la64, 1, 0x5000|entAll, nil),
			la: la64, wantPF: int64(x86.PFErrPresent)},
		{name: "SMAP with AC", pg: withCR4(long, x86.CR4SMAP), pm: tables(4, la64, 1, 0x5000|entAll, nil),
			la: la64, acc: AccessAC | AccessWrite, want: 0x5abc, wantPF: -1},
		{name: "SMAP with AC still honours WP", pg: withCR4(long, x86.CR4SMAP), pm: tables(4, la64, 1, 0x5000|entP|entUS, nil),
			la: la64, acc: AccessAC | AccessWrite, wantPF: int64(x86.PFErrPresent | x86.PFErrWrite)},
		{name: "SMAP user access unaffected", pg: withCR4(long, x86.CR4SMAP), pm: tables(4, la64, 1, 0x5000|entAll, nil),
			la: la64, acc: AccessUser, want: 0x5abc, wantPF: -1},
		{name: "non-canonical", pg: long, pm: physMem{}, la: 0x0000800000000000, wantPF: -1,
			wantErr: func(err error) bool {
				var ex *Exception
				return errors.As(err, &ex) && ex.Vector == x86.VectorGP
			}},
		{name: "LA57 5-level", pg: withCR4(long, x86.CR4LA57), pm: tables(5, la57, 1, 0x7000|entAll, nil),
			la: la57, want: 0x7abc, wantPF: -1},
		{name: "LA57 PS in PML5E reserved", pg: withCR4(long, x86.CR4LA57), pm: tables(5, la57, 5, 0x2000|entPS|entAll, nil),
			la: la57, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "read error propagates", pg: withCR3(long, 1<<41), pm: physMem{}, la: la64, wantPF: -1,
			wantErr: func(err error) bool { return errors.Is(err, errNoRAM) }},
		{name: "LMA without PAE", pg: Paging{CR0: tCR0, CR3: 0x1000, EFER: x86.EFERLMA}, pm: physMem{}, la: la64, wantPF: -1,
			wantErr: func(err error) bool { return errors.Is(err, ErrBadPagingMode) }},

		// ---- PAE ----
		{name: "PAE 4K", pg: pae, pm: paeTables(0x2000|entP, 0x3000|entAll, 0x00fed000|entAll),
			la: laPAE, want: 0xfed234, wantPF: -1},
		{name: "PAE la truncated", pg: pae, pm: paeTables(0x2000|entP, 0x3000|entAll, 0x00fed000|entAll),
			la: 0x100000000 | laPAE, want: 0xfed234, wantPF: -1},
		{name: "PAE 2M", pg: pae, pm: paeTables(0x2000|entP, 0x0f200000|entPS|entAll, 0),
			la: laPAE, want: 0x0f200000 | laPAE&0x1fffff, wantPF: -1},
		{name: "PAE 2M bit 20 reserved", pg: pae, pm: paeTables(0x2000|entP, 0x0f200000|1<<20|entPS|entAll, 0),
			la: laPAE, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "PAE PDPTE not present", pg: pae, pm: paeTables(0x2000, 0x3000|entAll, 0x00fed000|entAll),
			la: laPAE, acc: AccessWrite, wantPF: int64(x86.PFErrWrite)},
		{name: "PAE PDPTE RW reserved", pg: pae, pm: paeTables(0x2000|entP|entRW, 0x3000|entAll, 0x00fed000|entAll),
			la: laPAE, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "PAE PDPTE XD reserved", pg: pae, pm: paeTables(0x2000|entP|x86.PTENX, 0x3000|entAll, 0x00fed000|entAll),
			la: laPAE, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "PAE PTE bit 62 reserved", pg: pae, pm: paeTables(0x2000|entP, 0x3000|entAll, 1<<62|0x00fed000|entAll),
			la: laPAE, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "PAE PTE bit 36 reserved at MAXPHYADDR 36", pg: pae, pm: paeTables(0x2000|entP, 0x3000|entAll, 1<<36|0x00fed000|entAll),
			la: laPAE, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "PAE NX fetch", pg: pae, pm: paeTables(0x2000|entP, 0x3000|entAll, x86.PTENX|0x00fed000|entAll),
			la: laPAE, acc: AccessFetch, wantPF: int64(x86.PFErrPresent | x86.PFErrFetch)},
		{name: "PAE XD reserved without NXE", pg: withEFER(pae, 0), pm: paeTables(0x2000|entP, 0x3000|entAll, x86.PTENX|0x00fed000|entAll),
			la: laPAE, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "PAE user write read-only PDE", pg: pae, pm: paeTables(0x2000|entP, 0x3000|entP|entUS, 0x00fed000|entAll),
			la: laPAE, acc: AccessWrite | AccessUser, wantPF: int64(x86.PFErrPresent | x86.PFErrWrite | x86.PFErrUser)},

		// ---- 32-bit ----
		{name: "32-bit 4K", pg: legacy, pm: legacyTables(0x2000|entAll, 0x00345000|entAll),
			la: la32, want: 0x345abc, wantPF: -1},
		{name: "32-bit la truncated", pg: legacy, pm: legacyTables(0x2000|entAll, 0x00345000|entAll),
			la: 0xffffffff00000000 | la32, want: 0x345abc, wantPF: -1},
		{name: "32-bit 4M", pg: legacy, pm: legacyTables(0x12c00000|entPS|entAll, 0),
			la: la32, want: 0x12c00000 | la32&0x3fffff, wantPF: -1},
		{name: "32-bit 4M PSE-36 high bits", pg: legacy, pm: legacyTables(0x12c00000|0x5a<<13|entPS|entAll, 0),
			la: la32, want: 0x5a<<32 | 0x12c00000 | la32&0x3fffff, wantPF: -1},
		{name: "32-bit 4M bit 21 reserved", pg: legacy, pm: legacyTables(0x12c00000|1<<21|entPS|entAll, 0),
			la: la32, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "32-bit 4M high bit above MAXPHYADDR 32", pg: withMax(legacy, 32), pm: legacyTables(0x12c00000|1<<13|entPS|entAll, 0),
			la: la32, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "32-bit 4M bit 17 reserved at MAXPHYADDR 36", pg: withMax(legacy, 36), pm: legacyTables(0x12c00000|1<<17|entPS|entAll, 0),
			la: la32, wantPF: int64(x86.PFErrPresent | x86.PFErrRsvd)},
		{name: "32-bit 4M bit 16 fine at MAXPHYADDR 36", pg: withMax(legacy, 36), pm: legacyTables(0x12c00000|1<<16|entPS|entAll, 0),
			la: la32, want: 0x8<<32 | 0x12c00000 | la32&0x3fffff, wantPF: -1},
		{name: "32-bit PS ignored without PSE", pg: Paging{CR0: tCR0, CR3: 0x1000, MaxPhysAddr: 40},
			pm: legacyTables(0x2000|entPS|entAll, 0x00345000|entAll), la: la32, want: 0x345abc, wantPF: -1},
		{name: "32-bit PTE not present user write", pg: legacy, pm: legacyTables(0x2000|entAll, 0x00345000),
			la: la32, acc: AccessWrite | AccessUser, wantPF: int64(x86.PFErrWrite | x86.PFErrUser)},
		{name: "32-bit user write read-only", pg: legacy, pm: legacyTables(0x2000|entAll, 0x00345000|entP|entUS),
			la: la32, acc: AccessWrite | AccessUser, wantPF: int64(x86.PFErrPresent | x86.PFErrWrite | x86.PFErrUser)},
		{name: "32-bit fetch fault has no I/D", pg: legacy, pm: legacyTables(0x2000|entAll, 0),
			la: la32, acc: AccessFetch, wantPF: 0},
		{name: "32-bit SMEP fetch has I/D", pg: withCR4(legacy, x86.CR4SMEP), pm: legacyTables(0x2000|entAll, 0x00345000|entAll),
			la: la32, acc: AccessFetch, wantPF: int64(x86.PFErrPresent | x86.PFErrFetch)},
		{name: "32-bit high bits ignored (no reserved bits)", pg: legacy, pm: legacyTables(0x2000|entAll, 0x00345000|0xf00|entAll),
			la: la32, want: 0x345abc, wantPF: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pg := c.pg
			got, err := pg.Walk(c.la, c.acc, c.pm.read)
			switch {
			case c.wantErr != nil:
				if !c.wantErr(err) {
					t.Fatalf("err = %v", err)
				}
			case c.wantPF >= 0:
				var pf *PageFault
				if !errors.As(err, &pf) {
					t.Fatalf("got %#x, %v; want #PF code %#x", got, err, c.wantPF)
				}
				if int64(pf.Code) != c.wantPF {
					t.Errorf("#PF code = %#x, want %#x", pf.Code, c.wantPF)
				}
				if pf.Addr != c.la {
					t.Errorf("#PF addr = %#x, want %#x", pf.Addr, c.la)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if got != c.want {
					t.Errorf("gpa = %#x, want %#x", got, c.want)
				}
			}
		})
	}
}

func TestWalkAllocs(t *testing.T) {
	pm := tables(4, la64, 1, 0x5000|entAll, nil)
	pg := Paging{CR0: tCR0, CR3: 0x1000, CR4: x86.CR4PAE, EFER: tEFER64}
	read := pm.read
	n := testing.AllocsPerRun(100, func() {
		if _, err := pg.Walk(la64, AccessWrite, read); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Walk allocates %.0f times on success", n)
	}
	c := &casMem{pm: pm}
	cas := c.cas
	n = testing.AllocsPerRun(100, func() {
		if _, err := pg.WalkAD(la64, AccessWrite, read, cas); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("WalkAD allocates %.0f times on success", n)
	}
}

// Walk wired as Emulate's Translate, end to end.
type walkedMem struct {
	pg  Paging
	pm  physMem
	dev []mmioAccess
}

func (m *walkedMem) Translate(la uint64, acc Access) (uint64, error) {
	return m.pg.Walk(la, acc, m.pm.read)
}

func (m *walkedMem) Read(gpa uint64, b []byte) error {
	for i := range b {
		w := m.pm[(gpa+uint64(i))&^7]
		b[i] = byte(w >> (8 * ((gpa + uint64(i)) & 7)))
	}
	return nil
}

func (m *walkedMem) Write(gpa uint64, b []byte) error {
	m.dev = append(m.dev, mmioAccess{true, gpa, len(b), le(b)})
	return nil
}

func TestEmulateWithWalk(t *testing.T) {
	const codeLA, dataLA = 0x400000, 0x7f0000001000
	pm := tables(4, codeLA, 1, 0x9000|entP|entUS, nil) // code: read-only user page
	// The data path uses its own PDPT and PD; the PML4 is shared.
	pm[0x1000+((dataLA>>39)&0x1ff)*8] = 0x12000 | entAll
	pm[0x12000+((dataLA>>30)&0x1ff)*8] = 0x13000 | entAll
	pm[0x13000+((dataLA>>21)&0x1ff)*8] = 0xfee00000 | entPS | entAll
	var code [8]byte
	copy(code[:], []byte{0x89, 0x08}) // mov [rax], ecx
	pm[0x9000] = binary.LittleEndian.Uint64(code[:])

	m := &walkedMem{pg: Paging{CR0: tCR0, CR3: 0x1000, CR4: x86.CR4PAE, EFER: tEFER64}, pm: pm}
	s := &State{Mode: Mode64, RIP: codeLA, CPL: 3}
	s.GPR[x86.RAX] = dataLA + 0x30
	s.GPR[x86.RCX] = 0xabcd
	if _, err := Emulate(s, m); err != nil {
		t.Fatal(err)
	}
	want := mmioAccess{true, 0xfee00000 | (dataLA+0x30)&0x1fffff, 4, 0xabcd}
	if len(m.dev) != 1 || m.dev[0] != want {
		t.Fatalf("device saw %v, want %v", m.dev, want)
	}
	// The same store to the read-only code page faults with W|U|P.
	s.RIP = codeLA
	s.GPR[x86.RAX] = codeLA + 0x100
	_, err := Emulate(s, m)
	var pf *PageFault
	if !errors.As(err, &pf) || pf.Code != x86.PFErrPresent|x86.PFErrWrite|x86.PFErrUser || pf.Addr != codeLA+0x100 {
		t.Fatalf("err = %v, want #PF(W|U|P) at %#x", err, codeLA+0x100)
	}
}

// casMem applies PhysCAS to a physMem, optionally failing the first few.
type casMem struct {
	pm    physMem
	fails int
	calls int
}

func (c *casMem) cas(gpa, old, new uint64) (bool, error) {
	c.calls++
	if c.fails > 0 {
		c.fails--
		return false, nil
	}
	if c.pm[gpa] != old {
		return false, nil
	}
	c.pm[gpa] = new
	return true, nil
}

func TestWalkAD(t *testing.T) {
	long := Paging{CR0: tCR0, CR3: 0x1000, CR4: x86.CR4PAE, EFER: tEFER64}
	idx := func(lvl int) uint64 { return (la64 >> (12 + 9*uint(lvl-1))) & 0x1ff }
	entryAddr := func(lvl int) uint64 { return uint64(0x1000*(4-lvl+1)) + idx(lvl)*8 }

	t.Run("read sets A everywhere, no D", func(t *testing.T) {
		pm := tables(4, la64, 1, 0x5000|entAll, nil)
		c := &casMem{pm: pm}
		if _, err := long.WalkAD(la64, AccessRead, pm.read, c.cas); err != nil {
			t.Fatal(err)
		}
		for lvl := 4; lvl >= 1; lvl-- {
			if e := pm[entryAddr(lvl)]; e&x86.PTEAccessed == 0 || e&x86.PTEDirty != 0 {
				t.Errorf("level %d entry %#x: want A set, D clear", lvl, e)
			}
		}
	})
	t.Run("write sets D in leaf only", func(t *testing.T) {
		pm := tables(4, la64, 2, 0x40000000|entPS|entAll, nil)
		c := &casMem{pm: pm}
		if _, err := long.WalkAD(la64, AccessWrite, pm.read, c.cas); err != nil {
			t.Fatal(err)
		}
		if e := pm[entryAddr(2)]; e&(x86.PTEAccessed|x86.PTEDirty) != x86.PTEAccessed|x86.PTEDirty {
			t.Errorf("leaf %#x: want A and D", e)
		}
		if e := pm[entryAddr(3)]; e&x86.PTEDirty != 0 || e&x86.PTEAccessed == 0 {
			t.Errorf("PDPTE %#x: want A only", e)
		}
		// Everything set now: a second walk writes nothing.
		c.calls = 0
		if _, err := long.WalkAD(la64, AccessWrite, pm.read, c.cas); err != nil || c.calls != 0 {
			t.Errorf("second walk: err %v, %d cas calls", err, c.calls)
		}
	})
	t.Run("fault writes nothing", func(t *testing.T) {
		pm := tables(4, la64, 1, 0x5000|entP, nil)
		c := &casMem{pm: pm}
		if _, err := long.WalkAD(la64, AccessWrite|AccessUser, pm.read, c.cas); err == nil || c.calls != 0 {
			t.Errorf("err %v, %d cas calls", err, c.calls)
		}
	})
	t.Run("lost race retries", func(t *testing.T) {
		pm := tables(4, la64, 1, 0x5000|entAll, nil)
		c := &casMem{pm: pm, fails: 2}
		if gpa, err := long.WalkAD(la64, AccessRead, pm.read, c.cas); err != nil || gpa != 0x5abc {
			t.Fatalf("gpa %#x err %v", gpa, err)
		}
		c = &casMem{pm: tables(4, la64, 1, 0x5000|entAll, nil), fails: 100}
		if _, err := long.WalkAD(la64, AccessRead, c.pm.read, c.cas); err == nil {
			t.Fatal("endless race not reported")
		}
	})
	t.Run("cas error", func(t *testing.T) {
		pm := tables(4, la64, 1, 0x5000|entAll, nil)
		_, err := long.WalkAD(la64, AccessRead, pm.read, func(gpa, old, new uint64) (bool, error) { return false, errNoRAM })
		if !errors.Is(err, errNoRAM) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("32-bit high-half entries", func(t *testing.T) {
		pg := Paging{CR0: tCR0, CR3: 0x1000, CR4: x86.CR4PSE}
		const la = 0x80403abc // PDE 0x201: high half of word 0x1800
		pm := physMem{}
		pm.set32(0x1000+(la>>22)*4, 0x2000|entAll)
		pm.set32(0x1000+(la>>22)*4-4, 0x12345007) // neighbour in the low half
		pm.set32(0x2000+((la>>12)&0x3ff)*4, 0x345000|entAll)
		c := &casMem{pm: pm}
		if _, err := pg.WalkAD(la, AccessWrite, pm.read, c.cas); err != nil {
			t.Fatal(err)
		}
		if w := pm[0x1800]; w != (0x2000|entAll|x86.PTEAccessed)<<32|0x12345007 {
			t.Errorf("PDE word = %#x", w)
		}
		pte := pm[(0x2000+((la>>12)&0x3ff)*4)&^7] >> (((la >> 12) & 1) * 32) & 0xffffffff
		if pte != 0x345000|entAll|x86.PTEAccessed|x86.PTEDirty {
			t.Errorf("PTE = %#x", pte)
		}
	})
	t.Run("PAE PDPTE untouched", func(t *testing.T) {
		pg := Paging{CR0: tCR0, CR3: 0x1020, CR4: x86.CR4PAE, EFER: x86.EFERNXE}
		const la = 0xc0801234
		pm := physMem{0x1038: 0x2000 | entP}
		pm[0x2000+((la>>21)&0x1ff)*8] = 0x3000 | entAll
		pm[0x3000+((la>>12)&0x1ff)*8] = 0xfed000 | entAll
		c := &casMem{pm: pm}
		if _, err := pg.WalkAD(la, AccessRead, pm.read, c.cas); err != nil {
			t.Fatal(err)
		}
		if pm[0x1038] != 0x2000|entP || c.calls != 2 {
			t.Errorf("PDPTE %#x, %d cas calls (want 2)", pm[0x1038], c.calls)
		}
	})
}
