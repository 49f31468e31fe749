package ept

// Mapping is one leaf of a table, or (from Ranges) a run of leaves.
type Mapping struct {
	GPA, HPA, Size uint64
	Perm           Perm
	MemType        MemType
}

// End is the first GPA after m.
func (m Mapping) End() uint64 { return m.GPA + m.Size }

// Lookup returns the leaf that maps gpa.
// It does not allocate.
func (t *Table) Lookup(gpa uint64) (m Mapping, ok bool) {
	if t.dead || gpa >= t.space() {
		return Mapping{}, false
	}
	e, level, ok := t.leafEntry(gpa)
	if !ok {
		return Mapping{}, false
	}
	s := span(level)
	p, mt := t.decode(e)
	return Mapping{GPA: gpa &^ (s - 1), HPA: frame(e, level), Size: s, Perm: p, MemType: mt}, true
}

// Translate walks the table for gpa as the processor would: the HPA gpa
// maps to (with gpa's offset in its page), the permissions, and the size of
// the page that maps it. ok is false if gpa is unmapped or beyond
// GPASpace.
// It does not allocate.
func (t *Table) Translate(gpa uint64) (hpa uint64, perm Perm, pageSize uint64, ok bool) {
	m, ok := t.Lookup(gpa)
	if !ok {
		return 0, 0, 0, false
	}
	return m.HPA + (gpa - m.GPA), m.Perm, m.Size, true
}

// Mappings calls fn for every leaf, in GPA order, until fn returns false.
// fn must not change the table. Mappings itself does not allocate.
func (t *Table) Mappings(fn func(m Mapping) bool) {
	if !t.dead {
		t.walk(t.page(t.root), t.levels, 0, fn)
	}
}

// walk visits the table at level whose coverage starts at base. It returns
// false once fn has asked to stop. Recursion is at most four deep.
func (t *Table) walk(tbl *[512]uint64, level int, base uint64, fn func(m Mapping) bool) bool {
	s := span(level)
	for i, e := range tbl {
		if !t.present(e) {
			continue
		}
		gpa := base + uint64(i)*s
		if isLeaf(e, level) {
			p, mt := t.decode(e)
			if !fn(Mapping{GPA: gpa, HPA: frame(e, level), Size: s, Perm: p, MemType: mt}) {
				return false
			}
			continue
		}
		if !t.walk(t.page(e&addrMask), level-1, gpa, fn) {
			return false
		}
	}
	return true
}

// Ranges calls fn, in GPA order until it returns false, for every maximal
// run of leaves that are adjacent in GPA, contiguous in HPA and have the
// same permissions and memory type: the mappings as the caller made them,
// whatever page sizes hold them.
func (t *Table) Ranges(fn func(m Mapping) bool) {
	var cur Mapping
	stopped := false
	t.Mappings(func(m Mapping) bool {
		if cur.Size != 0 && m.GPA == cur.End() && m.HPA == cur.HPA+cur.Size &&
			m.Perm == cur.Perm && m.MemType == cur.MemType {
			cur.Size += m.Size
			return true
		}
		if cur.Size != 0 && !fn(cur) {
			stopped = true
			return false
		}
		cur = m
		return true
	})
	if !stopped && cur.Size != 0 {
		fn(cur)
	}
}
