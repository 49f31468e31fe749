package ept

import (
	"math/rand"
	"testing"
)

// permsFor lists the permission sets valid for a format.
func permsFor(f Format) []Perm {
	if f == EPT {
		return []Perm{Read, RW, RWX, Exec, Read | Exec, RWX | ExecUser}
	}
	return []Perm{Read, RW, Read | Exec, RWX}
}

// mtsFor lists the memory types valid for a format.
func mtsFor(f Format) []MemType {
	if f == EPT {
		return []MemType{WB, UC, WT, WC}
	}
	return []MemType{WB, UC, WT, WB}
}

// hpaFor derives an HPA for gpa: mostly gpa plus an offset that keeps (or
// deliberately breaks) 1 GiB or 2 MiB alignment, so large pages, splits
// and merges all happen, and a Map after an Unmap often restores a
// mergeable run. Returns the HPA and whether it breaks 2 MiB alignment.
func hpaFor(gpa uint64, sel int, rnd uint64) (uint64, bool) {
	switch sel % 5 {
	case 0:
		return gpa, false
	case 1:
		return gpa + 16*Size1G, false
	case 2:
		return gpa + 16*Size1G + Size2M, false
	case 3:
		return gpa + 16*Size1G + Size4K, true
	}
	return rnd % (1 << 40) &^ (Size4K - 1), true
}

// space is the GPA window the property test works in.
const space = 8 * Size1G

// randomOp makes an op over [0, space) with alignments and sizes biased
// towards 2 MiB and 1 GiB boundaries. It often copies the permissions and
// memory type of the mapping next to the range from the model, so runs
// become uniform again and Coalesce finds work.
func randomOp(r *rand.Rand, f Format, md *model) op {
	var o op
	switch n := r.Intn(100); {
	case n < 40:
		o.kind = opMap
	case n < 65:
		o.kind = opUnmap
	case n < 85:
		o.kind = opProtect
	default:
		o.kind = opCoalesce
	}
	switch n := r.Intn(100); {
	case n < 45:
		o.gpa = uint64(r.Int63n(int64(space/Size4K))) * Size4K
	case n < 70:
		o.gpa = uint64(r.Int63n(int64(space/Size2M))) * Size2M
	case n < 85:
		o.gpa = uint64(r.Int63n(int64(space/Size1G))) * Size1G
	default: // just before or after a 2 MiB or 1 GiB boundary
		b := uint64(r.Int63n(int64(space/Size2M))) * Size2M
		if r.Intn(2) == 0 {
			b = uint64(r.Int63n(int64(space/Size1G))) * Size1G
		}
		o.gpa = b + uint64(r.Intn(8))*Size4K
		if r.Intn(2) == 0 && b >= 8*Size4K {
			o.gpa = b - uint64(r.Intn(8)+1)*Size4K
		}
	}
	switch n := r.Intn(100); {
	case n < 35:
		o.size = uint64(r.Intn(16)+1) * Size4K
	case n < 60:
		o.size = uint64(r.Intn(4)+1) * Size2M
	case n < 70:
		o.size = uint64(r.Intn(4)+1)*Size2M + uint64(r.Intn(5)-2)*Size4K
	case n < 82:
		o.size = Size1G
	case n < 88:
		o.size = Size1G + Size2M + Size4K
	case n < 94:
		o.size = uint64(r.Intn(3)+2) * Size1G
	default:
		o.size = uint64(r.Intn(64<<8)+1) * Size4K
	}
	if o.size > space-o.gpa {
		o.size = space - o.gpa
	}
	var odd bool
	o.hpa, odd = hpaFor(o.gpa, r.Intn(5), r.Uint64())
	if odd && o.size > 8*Size2M && o.kind == opMap {
		// Keep 4 KiB leaves few enough that every op can be checked.
		o.size = 8 * Size2M
	}
	ps := permsFor(f)
	o.perm = ps[r.Intn(len(ps))]
	mts := mtsFor(f)
	o.mt = mts[r.Intn(len(mts))]
	if r.Intn(3) != 0 {
		o.mt = WB
	}
	if r.Intn(2) == 0 {
		// Match a neighbour: Map the hole it left with its own HPA
		// arithmetic, or Protect back to its permissions.
		if m, ok := md.lookup(o.gpa - Size4K); ok {
			o.perm, o.mt = m.Perm, m.MemType
			if o.kind == opMap {
				o.hpa = m.HPA + (o.gpa - m.GPA)
			}
		} else if m, ok := md.lookup(o.gpa + o.size); ok {
			o.perm, o.mt = m.Perm, m.MemType
			if o.kind == opMap && m.HPA >= o.size {
				o.hpa = m.HPA - o.size
			}
		}
	}
	if o.kind != opCoalesce && len(md.ext) > 1 && r.Intn(4) == 0 {
		healOp(r, md, &o)
	}
	if o.kind == opCoalesce && r.Intn(2) == 0 {
		o.gpa = uint64(r.Int63n(int64(space/Size1G))) * Size1G
		o.size = space - o.gpa
	}
	o.spare = -1
	if r.Intn(20) == 0 {
		o.spare = r.Intn(4)
	}
	return o
}

// healOp turns o into an op that makes two neighbouring extents of the
// model one run again, if they allow it: Protect the second to the first's
// permissions, or Map the gap between them continuing the first's HPAs.
// Without these, random ops almost never leave a 2 MiB region uniform.
func healOp(r *rand.Rand, md *model, o *op) {
	i := r.Intn(len(md.ext)-1) + 1
	a, b := md.ext[i-1], md.ext[i]
	switch {
	case b.GPA == a.End():
		o.kind, o.gpa, o.size, o.perm = opProtect, b.GPA, b.Size, a.Perm
	case b.GPA-a.End() <= 16*Size2M:
		o.kind, o.gpa, o.size = opMap, a.End(), b.GPA-a.End()
		o.hpa, o.perm, o.mt = a.HPA+a.Size, a.Perm, a.MemType
	}
}

func TestProperty(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 500
	}
	for _, c := range []struct {
		f Format
		o Options
	}{
		{NPT, Options{}},
		{EPT, Options{}},
		{EPT, Options{MaxPage: Size2M, IgnorePAT: true}},
	} {
		t.Run(c.f.String(), func(t *testing.T) {
			r := rand.New(rand.NewSource(int64(c.f)*1000 + int64(c.o.MaxPage>>20)))
			h := newHarness(t, c.f, c.o)
			var mapped, failed, merged int
			for range n {
				o := randomOp(r, c.f, &h.md)
				live := h.fa.nLive
				ok, oom := len(h.md.ext), h.oom
				h.apply(o)
				if o.kind == opCoalesce && h.fa.nLive < live {
					merged++
				}
				if o.kind == opMap && len(h.md.ext) > ok {
					mapped++
				}
				if h.oom > oom {
					failed++
				}
				var samples [8]uint64
				for i := range samples {
					samples[i] = uint64(r.Int63n(int64(space)))
				}
				h.check(o, samples[:]...)
			}
			t.Logf("%d ops: %d Maps succeeded, %d Coalesces freed tables, %d ops refused for lack of pages; %d tables at the end",
				n, mapped, merged, failed, h.fa.nLive)
			if mapped == 0 || merged == 0 || failed == 0 {
				t.Errorf("the op mix does not exercise everything")
			}
			h.finish()
		})
	}
}
