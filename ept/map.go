package ept

import "fmt"

// Map maps [gpa, gpa+size) to [hpa, hpa+size) with permissions perm and
// memory type mt. gpa, hpa and size must be multiples of 4 KiB; the range
// must lie below GPASpace and the HPAs below 2^52.
//
// At each step Map uses the largest page — 1 GiB, 2 MiB or 4 KiB, no
// larger than Options.MaxPage — that the alignment of both the GPA and the
// HPA and the length still to map allow.
//
// No part of the range may be mapped already: then Map returns ErrOverlap
// and changes nothing (to change a mapping, Unmap then Map, or Protect).
// If the Allocator runs out, Map removes what it added, frees the table
// pages it obtained and returns the Allocator's error wrapped: the mappings
// are as before.
func (t *Table) Map(gpa, hpa, size uint64, perm Perm, mt MemType) error {
	if err := t.checkMap(gpa, hpa, size, perm, mt); err != nil {
		return fmt.Errorf("ept: map gpa %#x size %#x to hpa %#x: %w", gpa, size, hpa, err)
	}
	end := gpa + size
	if t.anyMapped(t.page(t.root), t.levels, gpa, end) {
		return fmt.Errorf("ept: map gpa %#x size %#x to hpa %#x: %w", gpa, size, hpa, ErrOverlap)
	}
	bits := t.leafBits(perm, mt)
	for a := gpa; a < end; {
		h := hpa + (a - gpa)
		level := t.pick(a, h, end-a)
		if err := t.install(a, h, level, bits); err != nil {
			// The range held no leaf before, so every leaf in it is
			// this call's, and no leaf straddles its edges: unmapping it
			// needs no split and removes exactly what was added,
			// including tables left empty by the failed step.
			t.unmap(t.page(t.root), t.levels, gpa, end, &reserve{})
			return fmt.Errorf("ept: map gpa %#x size %#x to hpa %#x: at gpa %#x: %w", gpa, size, hpa, a, err)
		}
		a += span(level)
	}
	return nil
}

// checkMap validates Map's arguments.
func (t *Table) checkMap(gpa, hpa, size uint64, perm Perm, mt MemType) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := t.checkRange(gpa, size); err != nil {
		return err
	}
	if hpa&(Size4K-1) != 0 {
		return ErrAlign
	}
	if hpa >= hpaSpace || size > hpaSpace-hpa {
		return ErrRange
	}
	return t.check(perm, mt)
}

// pick is the level of the largest leaf that can map gpa to hpa with
// remaining bytes left to map.
func (t *Table) pick(gpa, hpa, remaining uint64) int {
	for l := t.maxLevel; l > 1; l-- {
		s := span(l)
		if gpa&(s-1) == 0 && hpa&(s-1) == 0 && remaining >= s {
			return l
		}
	}
	return 1
}

// anyMapped reports whether any page in [lo, hi) is mapped, within tbl at
// level. A present table entry wholly inside the range means yes: tables
// below the root are never empty.
func (t *Table) anyMapped(tbl *[512]uint64, level int, lo, hi uint64) bool {
	s := span(level)
	for lo < hi {
		next := lo&^(s-1) + s
		e := tbl[index(lo, level)]
		if t.present(e) {
			if isLeaf(e, level) || lo&(s-1) == 0 && hi >= next {
				return true
			}
			if t.anyMapped(t.page(e&addrMask), level-1, lo, min(hi, next)) {
				return true
			}
		}
		lo = next
	}
	return false
}

// install writes a leaf at level mapping gpa to hpa with attributes bits,
// creating the tables above it. The slot and the path to it must hold no
// leaf (Map checked). A table created here stays empty if a later
// allocation on the same path fails; Map's rollback frees it.
func (t *Table) install(gpa, hpa uint64, level int, bits uint64) error {
	tbl := t.page(t.root)
	for l := t.levels; l > level; l-- {
		slot := &tbl[index(gpa, l)]
		e := *slot
		if !t.present(e) {
			child, err := t.alloc()
			if err != nil {
				return err
			}
			e = t.tableEntry(child)
			store(slot, e)
		} else if isLeaf(e, l) {
			return ErrOverlap // excluded by anyMapped
		}
		tbl = t.page(e & addrMask)
	}
	slot := &tbl[index(gpa, level)]
	if t.present(*slot) {
		return ErrOverlap // excluded by anyMapped
	}
	store(slot, leafAt(hpa, level, bits))
	return nil
}
