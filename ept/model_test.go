package ept

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
)

// model is the reference: a sorted list of disjoint extents, each a run of
// GPA pages mapped to contiguous HPAs with one permission set and memory
// type. It knows nothing of page sizes or tables.
type model struct{ ext []Mapping }

// find is the index of the first extent ending after gpa.
func (md *model) find(gpa uint64) int {
	return sort.Search(len(md.ext), func(i int) bool { return md.ext[i].End() > gpa })
}

// lookup returns the extent holding gpa.
func (md *model) lookup(gpa uint64) (Mapping, bool) {
	i := md.find(gpa)
	if i < len(md.ext) && md.ext[i].GPA <= gpa {
		return md.ext[i], true
	}
	return Mapping{}, false
}

func (md *model) overlaps(lo, hi uint64) bool {
	i := md.find(lo)
	return i < len(md.ext) && md.ext[i].GPA < hi
}

// covered reports whether every page in [lo, hi) is mapped.
func (md *model) covered(lo, hi uint64) bool {
	for i := md.find(lo); lo < hi; i++ {
		if i >= len(md.ext) || md.ext[i].GPA > lo {
			return false
		}
		lo = md.ext[i].End()
	}
	return true
}

// cut makes a an extent boundary.
func (md *model) cut(a uint64) {
	i := md.find(a)
	if i == len(md.ext) || md.ext[i].GPA >= a {
		return
	}
	e := md.ext[i]
	lo, hi := e, e
	lo.Size = a - e.GPA
	hi.GPA, hi.HPA, hi.Size = a, e.HPA+lo.Size, e.Size-lo.Size
	md.ext = slices.Insert(md.ext, i+1, hi)
	md.ext[i] = lo
}

func (md *model) mapRange(gpa, hpa, size uint64, p Perm, mt MemType) {
	i := md.find(gpa)
	md.ext = slices.Insert(md.ext, i, Mapping{gpa, hpa, size, p, mt})
}

func (md *model) unmap(lo, hi uint64) {
	md.cut(lo)
	md.cut(hi)
	i := md.find(lo)
	j := i
	for j < len(md.ext) && md.ext[j].GPA < hi {
		j++
	}
	md.ext = slices.Delete(md.ext, i, j)
}

func (md *model) protect(lo, hi uint64, p Perm) {
	md.cut(lo)
	md.cut(hi)
	for i := md.find(lo); i < len(md.ext) && md.ext[i].GPA < hi; i++ {
		md.ext[i].Perm = p
	}
}

// ranges is the model as Table.Ranges reports it: maximal runs.
func (md *model) ranges() []Mapping {
	var out []Mapping
	for _, e := range md.ext {
		if n := len(out); n > 0 {
			c := &out[n-1]
			if e.GPA == c.End() && e.HPA == c.HPA+c.Size && e.Perm == c.Perm && e.MemType == c.MemType {
				c.Size += e.Size
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// opKind names the operations the property test and the fuzzer run.
type opKind uint8

const (
	opMap opKind = iota
	opUnmap
	opProtect
	opCoalesce
	nOps
)

func (k opKind) String() string {
	return [...]string{"Map", "Unmap", "Protect", "Coalesce"}[k]
}

type op struct {
	kind           opKind
	gpa, hpa, size uint64
	perm           Perm
	mt             MemType
	spare          int // table pages the allocator may add; < 0: unlimited
}

func (o op) String() string {
	return fmt.Sprintf("%v gpa %#x size %#x hpa %#x %v %v spare %d", o.kind, o.gpa, o.size, o.hpa, o.perm, o.mt, o.spare)
}

// harness runs ops against a Table and the model together.
type harness struct {
	tb  testing.TB
	t   *Table
	fa  *fakeAlloc
	md  model
	ops int
	oom int // operations refused for lack of pages
}

func newHarness(tb testing.TB, f Format, o Options) *harness {
	t, fa := newTable(tb, f, o)
	return &harness{tb: tb, t: t, fa: fa}
}

// apply runs o on both, checking the Table's verdict against the model's:
// ErrOverlap and ErrNotMapped exactly when the model says so, the
// allocator's error only when the allocator is limited, and on any error
// no change.
func (h *harness) apply(o op) {
	h.tb.Helper()
	h.ops++
	if o.spare >= 0 {
		h.fa.limit = h.fa.nLive + o.spare
	}
	defer func() { h.fa.limit = -1 }()
	end := o.gpa + o.size
	var err, want error
	switch o.kind {
	case opMap:
		err = h.t.Map(o.gpa, o.hpa, o.size, o.perm, o.mt)
		if h.md.overlaps(o.gpa, end) {
			want = ErrOverlap
		}
	case opUnmap:
		err = h.t.Unmap(o.gpa, o.size)
	case opProtect:
		err = h.t.Protect(o.gpa, o.size, o.perm)
		if !h.md.covered(o.gpa, end) {
			want = ErrNotMapped
		}
	case opCoalesce:
		err = h.t.Coalesce(o.gpa, o.size)
	}
	switch {
	case want != nil:
		if !errors.Is(err, want) {
			h.tb.Fatalf("op %d %v: error %v, want %v", h.ops, o, err, want)
		}
	case err == nil:
		switch o.kind {
		case opMap:
			h.md.mapRange(o.gpa, o.hpa, o.size, o.perm, o.mt)
		case opUnmap:
			h.md.unmap(o.gpa, end)
		case opProtect:
			h.md.protect(o.gpa, end, o.perm)
		}
	case errors.Is(err, errOOM) && o.spare >= 0:
		h.oom++
	default:
		h.tb.Fatalf("op %d %v: %v", h.ops, o, err)
	}
}

// check compares the whole Table with the model: structure, the leaves
// (ordered, aligned, of hardware page sizes) and their runs, and
// Translate at the edges of o and at the given sample addresses.
func (h *harness) check(o op, samples ...uint64) {
	h.tb.Helper()
	checkTables(h.tb, h.t, h.fa)
	var prev uint64
	var bad Mapping
	h.t.Mappings(func(m Mapping) bool {
		if m.GPA < prev || m.Size != Size4K && m.Size != Size2M && m.Size != Size1G ||
			m.GPA&(m.Size-1) != 0 || m.HPA&(m.Size-1) != 0 {
			bad = m
			return false
		}
		prev = m.End()
		return true
	})
	if bad.Size != 0 {
		h.tb.Fatalf("after op %d %v: bad leaf %v", h.ops, o, bad)
	}
	if got, want := ranges(h.t), h.md.ranges(); !slices.Equal(got, want) {
		h.tb.Fatalf("after op %d %v:\nRanges %v\nmodel  %v", h.ops, o, got, want)
	}
	for _, a := range []uint64{o.gpa, o.gpa + o.size - 1, o.gpa + o.size, o.gpa - 1} {
		h.translate(o, a)
	}
	for _, a := range samples {
		h.translate(o, a)
	}
}

func (h *harness) translate(o op, gpa uint64) {
	h.tb.Helper()
	hpa, perm, size, ok := h.t.Translate(gpa)
	m, mok := h.md.lookup(gpa)
	if ok != mok || ok && (hpa != m.HPA+gpa-m.GPA || perm != m.Perm) {
		h.tb.Fatalf("after op %d %v: Translate(%#x) = %#x %v %#x %v; model %v %v", h.ops, o, gpa, hpa, perm, size, ok, m, mok)
	}
	if ok {
		// The page must lie inside the model's extent... not necessarily
		// one extent (runs merge), but inside a mapped run.
		base := gpa &^ (size - 1)
		if !h.md.covered(base, base+size) {
			h.tb.Fatalf("after op %d %v: Translate(%#x) page size %#x covers unmapped GPAs", h.ops, o, gpa, size)
		}
	}
}

// finish unmaps everything (only the root remains) and destroys the table
// (nothing remains).
func (h *harness) finish() {
	h.tb.Helper()
	if err := h.t.Unmap(0, GPASpace); err != nil {
		h.tb.Fatal(err)
	}
	if h.fa.nLive != 1 || len(mappings(h.t)) != 0 {
		h.tb.Fatalf("after unmapping everything: %d pages live, %d leaves", h.fa.nLive, len(mappings(h.t)))
	}
	h.t.Destroy()
	if h.fa.nLive != 0 || h.fa.bad != "" {
		h.tb.Fatalf("after Destroy: %d pages live; %s", h.fa.nLive, h.fa.bad)
	}
}
