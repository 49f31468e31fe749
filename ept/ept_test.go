package ept

import (
	"errors"
	"slices"
	"testing"
)

var formats = []Format{NPT, EPT}

// translate checks Translate(gpa) against the expected hpa, perm and page
// size.
func translate(tb testing.TB, t *Table, gpa, hpa uint64, perm Perm, size uint64) {
	tb.Helper()
	h, p, s, ok := t.Translate(gpa)
	if !ok || h != hpa || p != perm || s != size {
		tb.Fatalf("Translate(%#x) = %#x %v %#x %v; want %#x %v %#x true", gpa, h, p, s, ok, hpa, perm, size)
	}
}

func unmapped(tb testing.TB, t *Table, gpa uint64) {
	tb.Helper()
	if h, p, s, ok := t.Translate(gpa); ok {
		tb.Fatalf("Translate(%#x) = %#x %v %#x; want unmapped", gpa, h, p, s)
	}
}

func mustMap(tb testing.TB, t *Table, gpa, hpa, size uint64, p Perm, mt MemType) {
	tb.Helper()
	if err := t.Map(gpa, hpa, size, p, mt); err != nil {
		tb.Fatal(err)
	}
}

func TestEPTLeafBits(t *testing.T) {
	tbl, fa := newTable(t, EPT, Options{})
	mustMap(t, tbl, 0x20_0000, 0x4020_0000, Size2M, RWX, WB)
	mustMap(t, tbl, 0x4000_0000, 0x8000_0000, Size1G, RW, WB)
	mustMap(t, tbl, 0x1000, 0x9000, Size4K, Read, UC)
	mustMap(t, tbl, 0x2000, 0xa000, Size4K, Exec, WB)
	mustMap(t, tbl, 0x3000, 0xb000, Size4K, Read|Exec|ExecUser, WT)
	mustMap(t, tbl, 0x4000, 0xc000, Size4K, Read, WC)
	mustMap(t, tbl, 0x5000, 0xd000, Size4K, RW, WP)
	for _, c := range []struct {
		gpa   uint64
		level int
		want  uint64
	}{
		{0x20_0000, 2, 0x4020_0000 | 0x7 | 6<<3 | 1<<7},
		{0x4000_0000, 3, 0x8000_0000 | 0x3 | 6<<3 | 1<<7},
		{0x1000, 1, 0x9000 | 0x1},
		{0x2000, 1, 0xa000 | 0x4 | 6<<3},
		{0x3000, 1, 0xb000 | 0x5 | 4<<3 | 1<<10},
		{0x4000, 1, 0xc000 | 0x1 | 1<<3},
		{0x5000, 1, 0xd000 | 0x3 | 5<<3},
	} {
		if e := entry(t, tbl, c.gpa, c.level); e != c.want {
			t.Errorf("gpa %#x level %d: entry %#x, want %#x", c.gpa, c.level, e, c.want)
		}
	}
	// Non-leaf entries: R|W|X and user-execute, nothing in bits 7:3.
	for _, level := range []int{4, 3, 2} {
		e := entry(t, tbl, 0x1000, level)
		if e&^addrMask != 0x407 {
			t.Errorf("level %d table entry %#x: flags %#x, want 0x407", level, e, e&^addrMask)
		}
	}
	checkTables(t, tbl, fa)

	// IgnorePAT sets bit 6 in leaves only.
	ip, fa2 := newTable(t, EPT, Options{IgnorePAT: true})
	mustMap(t, ip, 0, 0x20_0000, Size2M, RWX, WB)
	if e, want := entry(t, ip, 0, 2), uint64(0x20_0000|0x7|6<<3|1<<6|1<<7); e != want {
		t.Errorf("IgnorePAT leaf %#x, want %#x", e, want)
	}
	checkTables(t, ip, fa2)
}

func TestNPTLeafBits(t *testing.T) {
	tbl, fa := newTable(t, NPT, Options{})
	mustMap(t, tbl, 0x1000, 0x9000, Size4K, RW, WB)
	mustMap(t, tbl, 0x2000, 0xa000, Size4K, Read|Exec, WB)
	mustMap(t, tbl, 0x3000, 0xb000, Size4K, Read, UC)
	mustMap(t, tbl, 0x4000, 0xc000, Size4K, RWX, WT)
	mustMap(t, tbl, 0x20_0000, 0x4020_0000, Size2M, RWX, WB)
	mustMap(t, tbl, 0x4000_0000, 0x8000_0000, Size1G, RW, UC)
	const nx = 1 << 63
	for _, c := range []struct {
		gpa   uint64
		level int
		want  uint64
	}{
		{0x1000, 1, 0x9000 | 0x7 | nx},           // P|RW|US, NX
		{0x2000, 1, 0xa000 | 0x5},                // P|US
		{0x3000, 1, 0xb000 | 0x5 | 0x18 | nx},    // P|US|PWT|PCD, NX
		{0x4000, 1, 0xc000 | 0x7 | 0x8},          // P|RW|US|PWT
		{0x20_0000, 2, 0x4020_0000 | 0x7 | 0x80}, // PS
		{0x4000_0000, 3, 0x8000_0000 | 0x7 | 0x18 | 0x80 | nx},
	} {
		if e := entry(t, tbl, c.gpa, c.level); e != c.want {
			t.Errorf("gpa %#x level %d: entry %#x, want %#x", c.gpa, c.level, e, c.want)
		}
	}
	for _, level := range []int{4, 3, 2} {
		if e := entry(t, tbl, 0x1000, level); e&^addrMask != 0x7 {
			t.Errorf("level %d table entry %#x: flags %#x, want P|RW|US", level, e, e&^addrMask)
		}
	}
	checkTables(t, tbl, fa)
	translate(t, tbl, 0x3010, 0xb010, Read, Size4K)
	translate(t, tbl, 0x4000_1234, 0x8000_1234, RW, Size1G)
	if m, ok := tbl.Lookup(0x4000_1234); !ok || m.MemType != UC || m.GPA != 0x4000_0000 {
		t.Errorf("Lookup = %v %v", m, ok)
	}
	if m, ok := tbl.Lookup(0x4010); !ok || m.MemType != WT || m.Perm != RWX {
		t.Errorf("Lookup = %v %v", m, ok)
	}
}

func TestEPTP(t *testing.T) {
	if got, want := MakeEPTP(0x1234_5000, false), uint64(0x1234_5000|6|3<<3); got != want {
		t.Errorf("MakeEPTP = %#x, want %#x", got, want)
	}
	if got, want := MakeEPTP(0x1234_5000, true), uint64(0x1234_5000|6|3<<3|1<<6); got != want {
		t.Errorf("MakeEPTP(ad) = %#x, want %#x", got, want)
	}
	tbl, _ := newTable(t, EPT, Options{AccessedDirty: true})
	eptp, err := tbl.EPTP()
	if err != nil || eptp != tbl.Root()|0x5e {
		t.Errorf("EPTP = %#x, %v; root %#x", eptp, err, tbl.Root())
	}
	npt, _ := newTable(t, NPT, Options{})
	if _, err := npt.EPTP(); !errors.Is(err, ErrFormat) {
		t.Errorf("NPT EPTP error %v, want ErrFormat", err)
	}
	if npt.Root()&0xfff != 0 || npt.Format() != NPT {
		t.Errorf("NPT root %#x format %v", npt.Root(), npt.Format())
	}
}

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		f    Format
		o    Options
		want error
	}{
		{0, Options{}, ErrFormat},
		{NPT, Options{IgnorePAT: true}, ErrOption},
		{NPT, Options{AccessedDirty: true}, ErrOption},
		{EPT, Options{MaxPage: 0x3000}, ErrOption},
	} {
		if _, err := NewOptions(c.f, newFakeAlloc(), c.o); !errors.Is(err, c.want) {
			t.Errorf("NewOptions(%v, %+v) error %v, want %v", c.f, c.o, err, c.want)
		}
	}
	if _, err := New(EPT, nil); !errors.Is(err, ErrOption) {
		t.Errorf("New with nil allocator: %v", err)
	}
	fa := newFakeAlloc()
	fa.limit = 0
	if _, err := New(EPT, fa); !errors.Is(err, errOOM) {
		t.Errorf("New out of memory: %v", err)
	}
	fa = newFakeAlloc()
	fa.badPage = true
	if _, err := New(NPT, fa); !errors.Is(err, ErrBadPage) || fa.nLive != 0 {
		t.Errorf("New with a bad page: %v, %d pages live", err, fa.nLive)
	}
}

func TestPermValidation(t *testing.T) {
	for _, c := range []struct {
		f    Format
		p    Perm
		mt   MemType
		want error
	}{
		{EPT, Write, WB, ErrPerm},
		{EPT, Write | Exec, WB, ErrPerm},
		{EPT, 0, WB, ErrPerm},
		{EPT, ExecUser, WB, ErrPerm},
		{EPT, 1 << 5, WB, ErrPerm},
		{EPT, RWX, 2, ErrMemType},
		{EPT, RWX, 3, ErrMemType},
		{EPT, RWX, 7, ErrMemType},
		{EPT, Exec, WB, nil},
		{EPT, Read | ExecUser, WB, nil},
		{NPT, Exec, WB, ErrPerm},
		{NPT, Write, WB, ErrPerm},
		{NPT, RWX | ExecUser, WB, ErrPerm},
		{NPT, RWX, WC, ErrMemType},
		{NPT, RWX, WP, ErrMemType},
		{NPT, Read, UC, nil},
	} {
		tbl, fa := newTable(t, c.f, Options{})
		err := tbl.Map(0, 0, Size4K, c.p, c.mt)
		if !errors.Is(err, c.want) {
			t.Errorf("%v Map %v %v: error %v, want %v", c.f, c.p, c.mt, err, c.want)
		}
		if c.want != nil && fa.nLive != 1 {
			t.Errorf("%v Map %v %v: %d pages live after a rejected Map", c.f, c.p, c.mt, fa.nLive)
		}
		if c.want == nil {
			if err := tbl.Protect(0, Size4K, RWX|ExecUser); c.f == NPT && !errors.Is(err, ErrPerm) {
				t.Errorf("NPT Protect with ExecUser: %v", err)
			}
			if err := tbl.Protect(0, Size4K, Write); !errors.Is(err, ErrPerm) {
				t.Errorf("%v Protect write-only: %v", c.f, err)
			}
		}
	}
}

func TestPerm(t *testing.T) {
	if s := (RWX | ExecUser | 1<<6).String(); s != "rwxu+0x40" {
		t.Errorf("Perm.String = %q", s)
	}
	if s := Read.String(); s != "r--" {
		t.Errorf("Perm.String = %q", s)
	}
	if WB.String() != "WB" || UC.String() != "UC" || WC.String() != "WC" || WT.String() != "WT" ||
		WP.String() != "WP" || MemType(3).String() != "MemType(3)" {
		t.Error("MemType.String")
	}
	if NPT.String() != "NPT" || EPT.String() != "EPT" || Format(9).String() != "Format(9)" {
		t.Error("Format.String")
	}
}

// TestPageSizes checks Map's choice of page sizes.
func TestPageSizes(t *testing.T) {
	for _, f := range formats {
		type leaf struct{ gpa, size uint64 }
		for _, c := range []struct {
			name           string
			o              Options
			gpa, hpa, size uint64
			want           []leaf
		}{
			{"aligned", Options{}, Size1G - Size4K, 3*Size1G - Size4K, Size1G + Size2M + 2*Size4K,
				[]leaf{{Size1G - Size4K, Size4K}, {Size1G, Size1G}, {2 * Size1G, Size2M}, {2*Size1G + Size2M, Size4K}}},
			{"hpa only 2M aligned", Options{}, Size1G, 5*Size1G + Size2M, Size1G,
				nil}, // 512 2 MiB pages
			{"hpa 4K aligned", Options{}, 0, Size4K, 2 * Size4K,
				[]leaf{{0, Size4K}, {Size4K, Size4K}}},
			{"no 1G", Options{MaxPage: Size2M}, 0, Size1G, Size1G + Size2M, nil},
			{"only 4K", Options{MaxPage: Size4K}, 0, Size1G, 2 * Size2M, nil},
		} {
			tbl, fa := newTable(t, f, Options{})
			if c.o != (Options{}) {
				tbl, fa = newTable(t, f, c.o)
			}
			mustMap(t, tbl, c.gpa, c.hpa, c.size, RWX, WB)
			ms := mappings(tbl)
			if c.want != nil {
				var got []leaf
				for _, m := range ms {
					got = append(got, leaf{m.GPA, m.Size})
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%v %s: leaves %x, want %x", f, c.name, got, c.want)
				}
			}
			maxPage := c.o.MaxPage
			if maxPage == 0 {
				maxPage = Size1G
			}
			for _, m := range ms {
				if m.Size > maxPage || m.HPA != c.hpa+(m.GPA-c.gpa) || m.GPA&(m.Size-1) != 0 || m.HPA&(m.Size-1) != 0 {
					t.Errorf("%v %s: bad leaf %v", f, c.name, m)
				}
			}
			switch c.name {
			case "hpa only 2M aligned", "no 1G":
				if ms[0].Size != Size2M {
					t.Errorf("%v %s: first leaf %v, want 2 MiB", f, c.name, ms[0])
				}
			case "only 4K":
				if len(ms) != 1024 {
					t.Errorf("%v %s: %d leaves, want 1024", f, c.name, len(ms))
				}
			}
			if r := ranges(tbl); len(r) != 1 || r[0] != (Mapping{c.gpa, c.hpa, c.size, RWX, WB}) {
				t.Errorf("%v %s: Ranges = %v", f, c.name, r)
			}
			checkTables(t, tbl, fa)
		}
	}
}

func TestMapErrors(t *testing.T) {
	for _, f := range formats {
		tbl, fa := newTable(t, f, Options{})
		mustMap(t, tbl, 0x20_0000, 0x100_0000, Size2M, RW, WB)
		before := mappings(tbl)
		live := fa.nLive
		for _, c := range []struct {
			gpa, hpa, size uint64
			want           error
		}{
			{0x1001, 0, Size4K, ErrAlign},
			{0, 0x1001, Size4K, ErrAlign},
			{0, 0, 0x1800, ErrAlign},
			{0, 0, 0, ErrRange},
			{GPASpace, 0, Size4K, ErrRange},
			{GPASpace - Size4K, 0, 2 * Size4K, ErrRange},
			{0, 1 << 52, Size4K, ErrRange},
			{0, 1<<52 - Size4K, 2 * Size4K, ErrRange},
			{0x3f_f000, 0, Size4K, ErrOverlap},          // last page
			{0x1f_f000, 0, 2 * Size4K, ErrOverlap},      // straddles the start
			{0, 0, Size1G, ErrOverlap},                  // covers it
			{0x20_0000, 0x100_0000, Size2M, ErrOverlap}, // identical
		} {
			if err := tbl.Map(c.gpa, c.hpa, c.size, RW, WB); !errors.Is(err, c.want) {
				t.Errorf("%v Map(%#x, %#x, %#x) error %v, want %v", f, c.gpa, c.hpa, c.size, err, c.want)
			}
		}
		if got := mappings(tbl); !slices.Equal(got, before) || fa.nLive != live {
			t.Errorf("%v: failed Maps changed the table: %v, %d pages", f, got, fa.nLive)
		}
		// Neighbours are fine, and the last page of the GPA space.
		mustMap(t, tbl, 0x1f_f000, 0, Size4K, RW, WB)
		mustMap(t, tbl, 0x40_0000, 0, Size4K, RW, WB)
		mustMap(t, tbl, GPASpace-Size4K, 1<<52-Size4K, Size4K, RW, WB)
		translate(t, tbl, GPASpace-1, 1<<52-1, RW, Size4K)
		unmapped(t, tbl, GPASpace)
		unmapped(t, tbl, ^uint64(0))
		checkTables(t, tbl, fa)

		for _, err := range []error{
			tbl.Unmap(0x1000, 0x800), tbl.Protect(0x800, Size4K, RW), tbl.Coalesce(0, 0x10),
		} {
			if !errors.Is(err, ErrAlign) {
				t.Errorf("%v: error %v, want ErrAlign", f, err)
			}
		}
		for _, err := range []error{
			tbl.Unmap(GPASpace, Size4K), tbl.Protect(0, 0, RW), tbl.Coalesce(GPASpace-Size2M, Size1G),
		} {
			if !errors.Is(err, ErrRange) {
				t.Errorf("%v: error %v, want ErrRange", f, err)
			}
		}
	}
}

// TestSplit maps 1 GiB and unmaps one 4 KiB page in its middle.
func TestSplit(t *testing.T) {
	for _, f := range formats {
		tbl, fa := newTable(t, f, Options{})
		const gpa, hpa = 3 * Size1G, 7 * Size1G
		mustMap(t, tbl, gpa, hpa, Size1G, RWX, WB)
		translate(t, tbl, gpa+0x1234_5678, hpa+0x1234_5678, RWX, Size1G)
		if fa.nLive != 2 { // PML4, PDPT
			t.Errorf("%v: %d tables after a 1 GiB Map, want 2", f, fa.nLive)
		}
		const hole = gpa + 0x1230_0000 + 5*Size4K
		if err := tbl.Unmap(hole, Size4K); err != nil {
			t.Fatal(err)
		}
		unmapped(t, tbl, hole)
		unmapped(t, tbl, hole+Size4K-1)
		translate(t, tbl, hole-1, hpa+(hole-1-gpa), RWX, Size4K)
		translate(t, tbl, hole+Size4K, hpa+(hole+Size4K-gpa), RWX, Size4K)
		translate(t, tbl, hole-Size2M, hpa+(hole-Size2M-gpa), RWX, Size2M)
		translate(t, tbl, hole+Size2M, hpa+(hole+Size2M-gpa), RWX, Size2M)
		translate(t, tbl, gpa, hpa, RWX, Size2M)
		translate(t, tbl, gpa+Size1G-1, hpa+Size1G-1, RWX, Size2M)
		unmapped(t, tbl, gpa+Size1G)
		if fa.nLive != 4 { // + PD, PT
			t.Errorf("%v: %d tables after the split, want 4", f, fa.nLive)
		}
		want := []Mapping{
			{gpa, hpa, hole - gpa, RWX, WB},
			{hole + Size4K, hpa + hole + Size4K - gpa, gpa + Size1G - hole - Size4K, RWX, WB},
		}
		if got := ranges(tbl); !slices.Equal(got, want) {
			t.Errorf("%v: Ranges %v, want %v", f, got, want)
		}
		if n := len(mappings(tbl)); n != 511+511 {
			t.Errorf("%v: %d leaves, want 1022", f, n)
		}
		checkTables(t, tbl, fa)

		// Fill the hole again and coalesce: back to one 1 GiB leaf.
		mustMap(t, tbl, hole, hpa+(hole-gpa), Size4K, RWX, WB)
		if err := tbl.Coalesce(gpa, Size1G); err != nil {
			t.Fatal(err)
		}
		translate(t, tbl, hole, hpa+(hole-gpa), RWX, Size1G)
		if fa.nLive != 2 {
			t.Errorf("%v: %d tables after Coalesce, want 2", f, fa.nLive)
		}
		checkTables(t, tbl, fa)

		// Unmap everything: only the root is left; Destroy frees it.
		if err := tbl.Unmap(0, GPASpace); err != nil {
			t.Fatal(err)
		}
		if fa.nLive != 1 || len(mappings(tbl)) != 0 {
			t.Errorf("%v: %d tables, %d leaves after unmapping everything", f, fa.nLive, len(mappings(tbl)))
		}
		tbl.Destroy()
		if fa.nLive != 0 {
			t.Errorf("%v: %d tables after Destroy", f, fa.nLive)
		}
		if fa.bad != "" {
			t.Error(fa.bad)
		}
	}
}

func TestUnmap(t *testing.T) {
	for _, f := range formats {
		tbl, fa := newTable(t, f, Options{})
		mustMap(t, tbl, 0, 0x1000_0000, 4*Size2M, RW, WB)
		mustMap(t, tbl, Size1G, 0x8000_0000, Size1G, RW, WB)
		// Holes are fine; a range covering several leaves and a partial
		// 2 MiB leaf at each end.
		if err := tbl.Unmap(Size2M-Size4K, 2*Size2M+2*Size4K); err != nil {
			t.Fatal(err)
		}
		translate(t, tbl, Size2M-2*Size4K, 0x1000_0000+Size2M-2*Size4K, RW, Size4K)
		unmapped(t, tbl, Size2M-Size4K)
		unmapped(t, tbl, 3*Size2M)
		translate(t, tbl, 3*Size2M+Size4K, 0x1000_0000+3*Size2M+Size4K, RW, Size4K)
		translate(t, tbl, 0, 0x1000_0000, RW, Size4K)
		// An unmapped range is a no-op.
		if err := tbl.Unmap(10*Size1G, Size1G); err != nil {
			t.Fatal(err)
		}
		checkTables(t, tbl, fa)
		// A range ending inside a 1 GiB leaf, in its second 2 MiB.
		if err := tbl.Unmap(Size1G-Size2M, Size2M+Size2M+Size4K); err != nil {
			t.Fatal(err)
		}
		unmapped(t, tbl, Size1G+Size2M)
		translate(t, tbl, Size1G+Size2M+Size4K, 0x8000_0000+Size2M+Size4K, RW, Size4K)
		translate(t, tbl, Size1G+2*Size2M, 0x8000_0000+2*Size2M, RW, Size2M)
		checkTables(t, tbl, fa)
		// Unmapping the rest of the low 1 GiB frees its tables.
		if err := tbl.Unmap(0, Size1G); err != nil {
			t.Fatal(err)
		}
		if got := mappings(tbl)[0].GPA; got != Size1G+Size2M+Size4K {
			t.Errorf("%v: first leaf at %#x", f, got)
		}
		checkTables(t, tbl, fa)
	}
}

func TestProtect(t *testing.T) {
	for _, f := range formats {
		tbl, fa := newTable(t, f, Options{})
		mustMap(t, tbl, 0, 0x4000_0000, Size1G, RWX, UC)
		live := fa.nLive
		// Same permissions: no split, nothing changes.
		if err := tbl.Protect(Size4K, Size4K, RWX); err != nil {
			t.Fatal(err)
		}
		if fa.nLive != live {
			t.Errorf("%v: Protect to the same permissions split pages", f)
		}
		if err := tbl.Protect(Size2M+Size4K, Size4K, Read); err != nil {
			t.Fatal(err)
		}
		translate(t, tbl, Size2M+Size4K, 0x4000_0000+Size2M+Size4K, Read, Size4K)
		translate(t, tbl, Size2M, 0x4000_0000+Size2M, RWX, Size4K)
		translate(t, tbl, Size2M+2*Size4K, 0x4000_0000+Size2M+2*Size4K, RWX, Size4K)
		translate(t, tbl, 0, 0x4000_0000, RWX, Size2M)
		if m, _ := tbl.Lookup(Size2M + Size4K); m.MemType != UC {
			t.Errorf("%v: Protect changed the memory type to %v", f, m.MemType)
		}
		want := uint64(0x4000_0000+Size2M+Size4K) | 0x1
		if f == NPT {
			want = uint64(0x4000_0000+Size2M+Size4K) | 0x5 | 0x18 | 1<<63
		}
		if e := entry(t, tbl, Size2M+Size4K, 1); e != want {
			t.Errorf("%v: protected entry %#x, want %#x", f, e, want)
		}
		// A whole large leaf changes in place.
		if err := tbl.Protect(4*Size2M, Size2M, RW); err != nil {
			t.Fatal(err)
		}
		translate(t, tbl, 4*Size2M+5, 0x4000_0000+4*Size2M+5, RW, Size2M)
		checkTables(t, tbl, fa)

		// Part unmapped: error, no change.
		before := mappings(tbl)
		live = fa.nLive
		if err := tbl.Protect(Size1G-Size2M-Size4K, Size2M+2*Size4K, Read); !errors.Is(err, ErrNotMapped) {
			t.Errorf("%v: Protect over a hole: %v", f, err)
		}
		if !slices.Equal(before, mappings(tbl)) || fa.nLive != live {
			t.Errorf("%v: failed Protect changed the table", f)
		}
		checkTables(t, tbl, fa)
	}
}

func TestCoalesce(t *testing.T) {
	for _, f := range formats {
		tbl, fa := newTable(t, f, Options{})
		// 512 separate 4 KiB Maps: one PT. Coalesce merges them.
		for i := range uint64(512) {
			mustMap(t, tbl, Size2M+i*Size4K, 0x60_0000+i*Size4K, Size4K, RW, WB)
		}
		if fa.nLive != 4 {
			t.Fatalf("%v: %d tables", f, fa.nLive)
		}
		// Accessed and dirty bits set by the processor are ORed.
		ad := tbl.accessDirty()
		tbl.page(entry(t, tbl, Size2M, 2) & addrMask)[7] |= ad
		// A range not covering the whole 2 MiB merges nothing.
		if err := tbl.Coalesce(Size2M, Size2M-Size4K); err != nil || fa.nLive != 4 {
			t.Errorf("%v: partial Coalesce: %v, %d tables", f, err, fa.nLive)
		}
		if err := tbl.Coalesce(0, Size1G); err != nil {
			t.Fatal(err)
		}
		if fa.nLive != 3 {
			t.Errorf("%v: %d tables after Coalesce, want 3", f, fa.nLive)
		}
		translate(t, tbl, Size2M+0x1234, 0x60_1234, RW, Size2M)
		if e := entry(t, tbl, Size2M, 2); e&ad != ad || e&pageSize == 0 {
			t.Errorf("%v: merged leaf %#x lacks PS or accessed/dirty", f, e)
		}
		checkTables(t, tbl, fa)

		// Not merged: differing permissions, misaligned HPA, a hole,
		// non-contiguous HPA.
		for i := range uint64(512) {
			p := RW
			if i == 300 {
				p = Read
			}
			mustMap(t, tbl, 2*Size2M+i*Size4K, 0x80_0000+i*Size4K, Size4K, p, WB)
			mustMap(t, tbl, 3*Size2M+i*Size4K, 0x80_1000+Size1G+i*Size4K, Size4K, RW, WB)
			if i != 7 {
				mustMap(t, tbl, 4*Size2M+i*Size4K, 0xa0_0000+i*Size4K, Size4K, RW, WB)
			}
			h := 0xc0_0000 + i*Size4K
			if i >= 256 {
				h += Size2M
			}
			mustMap(t, tbl, 5*Size2M+i*Size4K, h, Size4K, RW, WB)
		}
		live := fa.nLive
		if err := tbl.Coalesce(0, Size1G); err != nil || fa.nLive != live {
			t.Errorf("%v: Coalesce merged what it should not: %v, %d → %d tables", f, err, live, fa.nLive)
		}
		// Fix the permission: now it merges.
		if err := tbl.Protect(2*Size2M+300*Size4K, Size4K, RW); err != nil {
			t.Fatal(err)
		}
		if err := tbl.Coalesce(2*Size2M, Size2M); err != nil || fa.nLive != live-1 {
			t.Errorf("%v: Coalesce after Protect: %v, %d tables", f, err, fa.nLive)
		}
		translate(t, tbl, 2*Size2M, 0x80_0000, RW, Size2M)
		checkTables(t, tbl, fa)
	}
}

// TestCoalesce1G merges 2 MiB leaves into a 1 GiB leaf, unless 1 GiB pages
// are disabled.
func TestCoalesce1G(t *testing.T) {
	for _, f := range formats {
		for _, maxPage := range []uint64{Size1G, Size2M, Size4K} {
			tbl, fa := newTable(t, f, Options{MaxPage: maxPage})
			for i := range uint64(512) {
				mustMap(t, tbl, Size1G+i*Size2M, 2*Size1G+i*Size2M, Size2M, RWX, WB)
			}
			// One 2 MiB as 4 KiB pages: merged first, then the 1 GiB.
			if err := tbl.Unmap(Size1G+Size2M, Size2M); err != nil {
				t.Fatal(err)
			}
			for i := range uint64(512) {
				mustMap(t, tbl, Size1G+Size2M+i*Size4K, 2*Size1G+Size2M+i*Size4K, Size4K, RWX, WB)
			}
			if err := tbl.Coalesce(0, 4*Size1G); err != nil {
				t.Fatal(err)
			}
			_, _, size, _ := tbl.Translate(Size1G + Size2M)
			if size != maxPage {
				t.Errorf("%v MaxPage %#x: page size %#x after Coalesce", f, maxPage, size)
			}
			if r := ranges(tbl); len(r) != 1 || r[0] != (Mapping{Size1G, 2 * Size1G, Size1G, RWX, WB}) {
				t.Errorf("%v MaxPage %#x: Ranges %v", f, maxPage, r)
			}
			checkTables(t, tbl, fa)
		}
	}
}

func TestMappingsOrderAndStop(t *testing.T) {
	for _, f := range formats {
		tbl, _ := newTable(t, f, Options{})
		mustMap(t, tbl, 5*Size1G, 0, Size4K, RW, WB)
		mustMap(t, tbl, 0, Size4K, Size4K, RW, WB)
		mustMap(t, tbl, Size4K, 2*Size4K, Size4K, RW, UC)
		mustMap(t, tbl, 1<<40, 0, Size2M, RW, WB)
		ms := mappings(tbl)
		want := []Mapping{
			{0, Size4K, Size4K, RW, WB},
			{Size4K, 2 * Size4K, Size4K, RW, UC},
			{5 * Size1G, 0, Size4K, RW, WB},
			{1 << 40, 0, Size2M, RW, WB},
		}
		if !slices.Equal(ms, want) {
			t.Errorf("%v: Mappings %v, want %v", f, ms, want)
		}
		if r := ranges(tbl); !slices.Equal(r, want) {
			t.Errorf("%v: Ranges %v, want %v", f, r, want)
		}
		n := 0
		tbl.Mappings(func(Mapping) bool { n++; return n < 2 })
		if n != 2 {
			t.Errorf("%v: Mappings went on after false: %d calls", f, n)
		}
		n = 0
		tbl.Ranges(func(Mapping) bool { n++; return false })
		if n != 1 {
			t.Errorf("%v: Ranges went on after false: %d calls", f, n)
		}
		if m := want[3]; m.End() != 1<<40+Size2M {
			t.Errorf("End = %#x", m.End())
		}
	}
}

// TestOutOfMemory runs each operation with too few pages: the error wraps
// the allocator's, and the table is as before.
func TestOutOfMemory(t *testing.T) {
	for _, f := range formats {
		tbl, fa := newTable(t, f, Options{})
		mustMap(t, tbl, Size1G, 4*Size1G, Size1G, RWX, WB)
		mustMap(t, tbl, 0, 0, Size2M, RWX, WB)
		before := mappings(tbl)
		live := fa.nLive
		same := func(what string) {
			t.Helper()
			if got := mappings(tbl); !slices.Equal(got, before) || fa.nLive != live {
				t.Errorf("%v %s: table changed: %d → %d pages, %v", f, what, live, fa.nLive, got)
			}
			checkTables(t, tbl, fa)
		}
		for extra := range 3 {
			fa.limit = live + extra
			// Needs PDPT, PD and PT under a new PML4 entry.
			if err := tbl.Map(1<<40, 0, Size1G+Size4K, RW, WB); !errors.Is(err, errOOM) {
				t.Errorf("%v: Map with %d spare pages: %v", f, extra, err)
			}
			same("Map")
			// Needs a PD and two PTs.
			if err := tbl.Unmap(Size1G+Size4K, Size2M); !errors.Is(err, errOOM) {
				t.Errorf("%v: Unmap with %d spare pages: %v", f, extra, err)
			}
			same("Unmap")
			if err := tbl.Protect(Size1G+Size4K, Size2M, Read); !errors.Is(err, errOOM) {
				t.Errorf("%v: Protect with %d spare pages: %v", f, extra, err)
			}
			same("Protect")
		}
		// Enough pages: all succeed.
		fa.limit = live + 3
		if err := tbl.Unmap(Size1G+Size4K, Size2M); err != nil {
			t.Fatal(err)
		}
		if fa.nLive != live+3 {
			t.Errorf("%v: %d pages after Unmap, want %d", f, fa.nLive, live+3)
		}
		checkTables(t, tbl, fa)
		fa.limit = -1
	}
}

func TestBadPageFromAllocator(t *testing.T) {
	tbl, fa := newTable(t, EPT, Options{})
	fa.badPage = true
	if err := tbl.Map(0, 0, Size4K, RW, WB); !errors.Is(err, ErrBadPage) {
		t.Errorf("Map with a bad table page: %v", err)
	}
	checkTables(t, tbl, fa)
	if fa.nLive != 1 {
		t.Errorf("%d pages live", fa.nLive)
	}
}

func TestDestroy(t *testing.T) {
	for _, f := range formats {
		tbl, fa := newTable(t, f, Options{})
		mustMap(t, tbl, 0, 0, 3*Size1G+5*Size2M+7*Size4K, RW, WB)
		mustMap(t, tbl, 1<<47, 0, Size4K, RW, WB)
		tbl.Destroy()
		if fa.nLive != 0 || fa.bad != "" {
			t.Errorf("%v: %d pages after Destroy; %s", f, fa.nLive, fa.bad)
		}
		tbl.Destroy() // idempotent
		for _, err := range []error{
			tbl.Map(0, 0, Size4K, RW, WB), tbl.Unmap(0, Size4K), tbl.Protect(0, Size4K, RW), tbl.Coalesce(0, Size4K),
		} {
			if !errors.Is(err, ErrDestroyed) {
				t.Errorf("%v: after Destroy: %v", f, err)
			}
		}
		unmapped(t, tbl, 0)
		if len(mappings(tbl)) != 0 || fa.bad != "" {
			t.Errorf("%v: Mappings after Destroy; %s", f, fa.bad)
		}
	}
}

// TestNoAllocs checks that Translate, Lookup, Mappings and Map (and Unmap)
// in a region whose tables exist do not allocate Go heap memory, nor do
// splits and merges beyond the Allocator's pages.
func TestNoAllocs(t *testing.T) {
	for _, f := range formats {
		tbl, _ := newTable(t, f, Options{})
		mustMap(t, tbl, 0, 0x1000_0000, Size4K, RW, WB)
		mustMap(t, tbl, Size1G, 0x4000_0000, Size1G, RWX, WB)
		var sink uint64
		if n := testing.AllocsPerRun(100, func() {
			h, _, _, _ := tbl.Translate(0x123)
			h2, _, _, _ := tbl.Translate(Size1G + 0x12345)
			_, _, _, ok := tbl.Translate(5 * Size1G)
			m, _ := tbl.Lookup(Size1G)
			if ok {
				h++
			}
			sink += h + h2 + m.HPA
		}); n != 0 {
			t.Errorf("%v: Translate allocates %v times", f, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			for i := uint64(1); i < 16; i++ {
				if err := tbl.Map(i*Size4K, i*Size4K, Size4K, RW, WB); err != nil {
					panic(err)
				}
			}
			if err := tbl.Unmap(Size4K, 15*Size4K); err != nil {
				panic(err)
			}
		}); n != 0 {
			t.Errorf("%v: Map/Unmap in a prepared region allocates %v times", f, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			tbl.Mappings(func(m Mapping) bool { sink += m.HPA; return true })
			tbl.Ranges(func(m Mapping) bool { sink += m.Size; return true })
		}); n != 0 {
			t.Errorf("%v: Mappings and Ranges allocate %v times", f, n)
		}
		// Splits and merges: the table pages come from the Allocator
		// (whose free list the first run fills), nothing from the heap.
		if n := testing.AllocsPerRun(100, func() {
			const hole = Size1G + Size2M + 5*Size4K
			if err := tbl.Protect(hole-Size4K, Size4K, Read); err != nil {
				panic(err)
			}
			if err := tbl.Unmap(hole, Size4K); err != nil {
				panic(err)
			}
			if err := tbl.Map(hole, 0x4000_0000+Size2M+5*Size4K, Size4K, RWX, WB); err != nil {
				panic(err)
			}
			if err := tbl.Protect(hole-Size4K, Size4K, RWX); err != nil {
				panic(err)
			}
			if err := tbl.Coalesce(Size1G, Size1G); err != nil {
				panic(err)
			}
		}); n != 0 {
			t.Errorf("%v: split and merge cycle allocates %v times", f, n)
		}
		translate(t, tbl, Size1G+Size2M, 0x4000_0000+Size2M, RWX, Size1G)
		_ = sink
	}
}

// TestThreeLevels: a 3-level table (Options.Levels 3, for VT-d units with
// a 39-bit address width) has a PDPT root whose entries map 1 GiB each,
// refuses GPAs from 2^39 on, maps 2 MiB and 4 KiB pages below it, splits
// and frees as the 4-level table does, and has no EPTP.
func TestThreeLevels(t *testing.T) {
	a := newFakeAlloc()
	tb, err := NewOptions(EPT, a, Options{Levels: 3, MaxPage: Size2M})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Map(1<<39-Size4K, 0x1000, 2*Size4K, Read|Write, WB); !errors.Is(err, ErrRange) {
		t.Fatalf("map across 2^39: %v", err)
	}
	if err := tb.Map(0x4000_0000, 0x20_0000, Size2M+Size4K, Read|Write, WB); err != nil {
		t.Fatal(err)
	}
	root := a.Page(tb.Root())
	pd := root[1] & addrMask // GPA 1 GiB: the root's second entry points at a PD
	if root[1]&eptTable != eptTable || a.Page(pd)[0]&pageSize == 0 {
		t.Fatalf("root[1] %#x, pd[0] %#x: want a table entry and a 2 MiB leaf", root[1], a.Page(pd)[0])
	}
	if hpa, _, size, ok := tb.Translate(0x4020_0123); !ok || hpa != 0x40_0123 || size != Size4K {
		t.Fatalf("translate: %#x %#x %v", hpa, size, ok)
	}
	if _, _, _, ok := tb.Translate(1 << 39); ok {
		t.Fatal("translated 2^39")
	}
	if err := tb.Unmap(0x4010_0000, Size4K); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := tb.Translate(0x4010_0000); ok {
		t.Fatal("unmapped page still translates")
	}
	if hpa, _, size, ok := tb.Translate(0x4010_1000); !ok || hpa != 0x30_1000 || size != Size4K {
		t.Fatalf("after the split: %#x %#x %v", hpa, size, ok)
	}
	if _, err := tb.EPTP(); !errors.Is(err, ErrOption) {
		t.Fatalf("EPTP of a 3-level table: %v", err)
	}
	if err := tb.Unmap(0, 1<<39); err != nil {
		t.Fatal(err)
	}
	tb.Destroy()
	if a.nLive != 0 || a.bad != "" {
		t.Fatalf("%d pages live after Destroy; %s", a.nLive, a.bad)
	}
	if _, err := NewOptions(NPT, a, Options{Levels: 5}); !errors.Is(err, ErrOption) {
		t.Fatalf("5 levels: %v", err)
	}
}
