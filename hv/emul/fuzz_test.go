package emul

import (
	"errors"
	"testing"

	"gohv/x86"
)

// splitmix64 step, for deriving many values from one fuzz seed.
func mix(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// fuzzReg picks register values that often land on interesting addresses.
func fuzzReg(x *uint64) uint64 {
	v := mix(x)
	switch v >> 61 {
	case 0, 1:
		return v
	case 2:
		return mm + v&0x1fff
	case 3:
		return v & 0xffff
	case 4:
		return v&^0xfff | 0xff8 | v&7 // near a page end
	case 5:
		return mm + 0xff8 + v&7
	default:
		return v & 0xff
	}
}

// fuzzGuest builds a guest for the fuzz targets from the fuzzer's inputs:
// registers and segment bases that often land near page ends and in the
// MMIO window, a page map with faulting and MMIO pages, and code at CS:RIP
// in RAM pages of its own.
func fuzzGuest(code []byte, seed uint64, mode uint8, flags uint64, user bool) (*State, *fakeMem, uint64) {
	if len(code) > 32 {
		code = code[:32]
	}
	x := seed
	s := &State{RFLAGS: flags, RepLimit: 16}
	s.Mode = [3]Mode{Mode16, Mode32, Mode64}[mode%3]
	for i := range s.GPR {
		s.GPR[i] = fuzzReg(&x)
	}
	s.RIP = mix(&x) & 0x7fffffffffff
	if s.Mode != Mode64 {
		s.RIP &= 0xffffffff
		for i := range s.SegBase {
			if mix(&x)&1 == 0 {
				s.SegBase[i] = mix(&x) & 0xfffff000
			}
		}
	} else {
		s.SegBase[SegFS] = fuzzReg(&x)
		s.SegBase[SegGS] = fuzzReg(&x)
	}
	if user {
		s.CPL = 3
	}
	s.LA57 = mix(&x)&7 == 0

	m := newFakeMem()
	salt := mix(&x)
	m.xlate = func(page uint64) (uint64, uint32) {
		h := page ^ salt
		h = (h ^ h>>29) * 0xbf58476d1ce4e5b9
		h ^= h >> 32
		switch h & 15 {
		case 0:
			return 0, uint32(h>>8)&0x1f | 0x100
		case 1, 2, 3, 4:
			return mm + (h>>8)&0xf000, 0
		}
		return (h >> 8) & 0xfffff000, 0
	}
	// Code lives in RAM pages of its own.
	codeLA := s.RIP
	switch s.Mode {
	case Mode32:
		codeLA = (s.SegBase[SegCS] + s.RIP) & 0xffffffff
	case Mode16:
		codeLA = (s.SegBase[SegCS] + s.RIP&0xffff) & 0xffffffff
	}
	for la := codeLA &^ 0xfff; la < codeLA+16; la += 0x1000 {
		m.pages[la] = 0x100000000 + la&0xffffffff
	}
	m.put(codeLA, code)
	return s, m, x
}

func FuzzEmulate(f *testing.F) {
	for i, c := range allEmuCases() {
		mode := uint8(2)
		switch c.mode {
		case Mode16:
			mode = 0
		case Mode32:
			mode = 1
		}
		f.Add(c.code, uint64(i), mode, c.flags, false)
	}
	f.Add([]byte{0xf3, 0x48, 0xa5}, uint64(7), uint8(2), uint64(0), true)
	f.Fuzz(func(t *testing.T, code []byte, seed uint64, mode uint8, flags uint64, user bool) {
		s, m, _ := fuzzGuest(code, seed, mode, flags, user)
		before := *s

		res, err := Emulate(s, m)

		for _, e := range m.errs {
			t.Errorf("memory rule violated: %s", e)
		}
		if err != nil || res.Incomplete {
			if s.RIP != before.RIP {
				t.Errorf("RIP moved from %#x to %#x on error/incomplete (%v)", before.RIP, s.RIP, err)
			}
			if err != nil {
				_ = err.Error()
				var u *UnsupportedError
				if errors.As(err, &u) && (u.N < 1 || u.N > 15) {
					t.Errorf("UnsupportedError.N = %d", u.N)
				}
			}
		} else {
			if res.Len < 1 || res.Len > 15 {
				t.Errorf("Len = %d", res.Len)
			}
			want := before.RIP + uint64(res.Len)
			switch s.Mode {
			case Mode16:
				want &= 0xffff
			case Mode32:
				want &= 0xffffffff
			}
			if s.RIP != want {
				t.Errorf("RIP = %#x, want %#x", s.RIP, want)
			}
		}
		if res.Iterations > s.RepLimit {
			t.Errorf("Iterations = %d > limit %d", res.Iterations, s.RepLimit)
		}
		if res.Accesses > 4*s.RepLimit+4 || len(m.xlates) > 4*s.RepLimit+6 {
			t.Errorf("too much traffic: %d accesses, %d translations", res.Accesses, len(m.xlates))
		}
		if s.Mode != before.Mode || s.SegBase != before.SegBase || s.CPL != before.CPL {
			t.Errorf("Emulate changed mode, segment bases or CPL")
		}
	})
}

// FuzzStringIO runs INS and OUTS as an I/O exit would report them against
// whatever bytes sit at RIP. Beyond not panicking and keeping the memory
// rules, it checks the string-instruction invariants: RIP, RFLAGS, mode and
// segments never change; under REP, rCX (at the address size) only counts
// down, by exactly the iterations done; without REP it is untouched and one
// iteration runs; rSI or rDI moves by the iterations times the width in
// DF's direction and nothing else changes; each iteration makes exactly one
// port access, of the exit's port and size; Incomplete means the cap was
// reached with count left.
func FuzzStringIO(f *testing.F) {
	for i, c := range ioCases {
		mode := uint8(2)
		switch c.mode {
		case Mode16:
			mode = 0
		case Mode32:
			mode = 1
		}
		f.Add(c.code, uint64(i), mode, c.flags, false, c.io.Port, uint8(c.io.Size), c.io.In, c.io.Rep)
	}
	f.Add([]byte{0x67, 0xf3, 0x6d}, uint64(3), uint8(1), uint64(x86.RFLAGSDF), true, uint16(0x80), uint8(2), true, true)
	f.Add([]byte{0x64, 0xf3, 0x6e}, uint64(5), uint8(2), uint64(0), false, uint16(0xf4), uint8(0x81), false, true) // no device
	f.Fuzz(func(t *testing.T, code []byte, seed uint64, mode uint8, flags uint64, user bool, port uint16, size uint8, in, rep bool) {
		s, m, x := fuzzGuest(code, seed, mode, flags, user)
		io := PortString{Port: port, Size: []int{1, 2, 4}[size%3], In: in, Rep: rep}
		dev := &fakePorts{}
		for range 4 {
			dev.vals = append(dev.vals, uint32(mix(&x)))
		}
		var pio PortIO = dev
		if size&0x80 != 0 {
			pio = nil
		}
		before := *s

		res, err := StringIO(s, m, pio, io)

		for _, e := range m.errs {
			t.Errorf("memory rule violated: %s", e)
		}
		if err != nil {
			_ = err.Error()
		}
		if s.RIP != before.RIP || s.RFLAGS != before.RFLAGS {
			t.Errorf("RIP/RFLAGS changed: %#x/%#x -> %#x/%#x", before.RIP, before.RFLAGS, s.RIP, s.RFLAGS)
		}
		if s.Mode != before.Mode || s.SegBase != before.SegBase || s.CPL != before.CPL {
			t.Errorf("StringIO changed mode, segment bases or CPL")
		}
		n := uint64(res.Iterations)
		if res.Iterations > s.RepLimit || (!rep && n > 1) {
			t.Errorf("%d iterations (rep %v, limit %d)", n, rep, s.RepLimit)
		}
		var pf *PageFault
		var ex *Exception
		guestFault := errors.As(err, &pf) || errors.As(err, &ex)
		if err == nil || guestFault {
			if err == nil && !rep && n != 1 {
				t.Errorf("no REP, no error, %d iterations", n)
			}
			if pio != nil && uint64(len(dev.log)) != n {
				t.Errorf("%d port accesses for %d iterations", len(dev.log), n)
			}
		}
		for _, a := range dev.log {
			if a.Port != io.Port || a.Size != io.Size || a.In != io.In {
				t.Errorf("port access %v for exit %+v", a, io)
			}
		}
		if res.Incomplete && (err != nil || !rep || res.Iterations != s.RepLimit) {
			t.Errorf("Incomplete after %d iterations, err %v, rep %v", n, err, rep)
		}
		if n == 0 {
			if s.GPR != before.GPR {
				t.Errorf("registers changed without an iteration (err %v)", err)
			}
			return
		}
		// The address size is the decoded one; rather than decode again,
		// accept the first size the registers' movement fits.
		stepped, still := x86.RDI, x86.RSI
		if !in {
			stepped, still = x86.RSI, x86.RDI
		}
		delta := uint64(io.Size) * n
		if flags&x86.RFLAGSDF != 0 {
			delta = -delta
		}
		ok := false
		for _, amask := range []uint64{0xffff, 0xffff_ffff, ^uint64(0)} {
			idxOK := (s.GPR[stepped]-before.GPR[stepped])&amask == delta&amask
			cx, cx0 := s.GPR[x86.RCX]&amask, before.GPR[x86.RCX]&amask
			cxOK := s.GPR[x86.RCX] == before.GPR[x86.RCX]
			if rep {
				cxOK = cx <= cx0 && cx0-cx == n
			}
			if idxOK && cxOK {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("rep %v, %d iterations of %d bytes: %s %#x -> %#x, rcx %#x -> %#x",
				rep, n, io.Size, []string{"rsi", "rdi"}[stepped-x86.RSI], before.GPR[stepped], s.GPR[stepped], before.GPR[x86.RCX], s.GPR[x86.RCX])
		}
		for i := range s.GPR {
			if i != stepped && i != x86.RCX && s.GPR[i] != before.GPR[i] {
				t.Errorf("GPR[%d] changed: %#x -> %#x", i, before.GPR[i], s.GPR[i])
			}
		}
		if s.GPR[still] != before.GPR[still] {
			t.Errorf("the unused index register changed")
		}
	})
}

func FuzzWalk(f *testing.F) {
	long := Paging{CR0: tCR0, CR3: 0x1000, CR4: x86.CR4PAE, EFER: tEFER64}
	f.Add(long.CR0, long.CR3, long.CR4, long.EFER, uint64(la64), uint8(0), uint8(48), []byte{0x07, 0x20, 0, 0, 0, 0, 0, 0})
	f.Add(uint64(tCR0), uint64(0x1000), uint64(x86.CR4PSE), uint64(0), uint64(0x80403abc), uint8(6), uint8(36), []byte{0x87, 0, 0x40, 0, 0, 0, 0, 0})
	f.Add(uint64(tCR0), uint64(0x1020), uint64(x86.CR4PAE|x86.CR4SMEP), uint64(x86.EFERNXE), uint64(0xc0801234), uint8(16), uint8(40), []byte{0x01, 0x20, 0, 0, 0, 0, 0, 0x80})
	f.Add(uint64(tCR0), uint64(0x1000), uint64(x86.CR4PAE|x86.CR4LA57|x86.CR4SMAP), uint64(tEFER64), uint64(0x0080123456789abc), uint8(4), uint8(52), []byte{0x83, 0x20, 0, 0, 0, 0, 0, 0})
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0), uint64(0x123456789), uint8(2), uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, cr0, cr3, cr4, efer, la uint64, acc uint8, maxPhys uint8, mem []byte) {
		p := Paging{CR0: cr0, CR3: cr3, CR4: cr4, EFER: efer, MaxPhysAddr: uint(maxPhys)}
		a := Access(acc)&(AccessWrite|AccessUser|AccessFetch) | Access(acc>>5&1)*AccessAC
		reads := 0
		read := func(gpa uint64) (uint64, error) {
			reads++
			if gpa&7 != 0 {
				t.Fatalf("unaligned entry read at %#x", gpa)
			}
			if len(mem) < 8 {
				z := gpa
				return mix(&z), nil
			}
			off := int((gpa >> 3) % uint64(len(mem)/8) * 8)
			return le(mem[off : off+8]), nil
		}
		gpa, err := p.Walk(la, a, read)
		if reads > 5 {
			t.Fatalf("%d entry reads", reads)
		}
		lma := efer&x86.EFERLMA != 0
		wantLA := la
		if !lma {
			wantLA &= 0xffffffff
		}
		m := uint(maxPhys)
		switch {
		case m == 0 || m > 52:
			m = 52
		case m < 32:
			m = 32
		}
		var pf *PageFault
		var ex *Exception
		switch {
		case err == nil:
			if gpa&0xfff != la&0xfff {
				t.Fatalf("gpa %#x does not keep la %#x's page offset", gpa, la)
			}
			if cr0&x86.CR0PG != 0 {
				limit := uint64(1) << m
				if cr4&x86.CR4PAE == 0 && m > 40 {
					limit = 1 << 40
				}
				if gpa >= limit {
					t.Fatalf("gpa %#x beyond MAXPHYADDR %d", gpa, m)
				}
			} else if gpa != wantLA {
				t.Fatalf("paging off: gpa %#x, want %#x", gpa, wantLA)
			}
		case errors.As(err, &pf):
			if pf.Addr != wantLA {
				t.Fatalf("#PF addr %#x, want %#x", pf.Addr, wantLA)
			}
			c := pf.Code
			if c&^0x1f != 0 || (c&x86.PFErrRsvd != 0 && c&x86.PFErrPresent == 0) {
				t.Fatalf("bad #PF code %#x", c)
			}
			fetch := a&AccessFetch != 0
			if (c&x86.PFErrWrite != 0) != (a&AccessWrite != 0 && !fetch) || (c&x86.PFErrUser != 0) != (a&AccessUser != 0) {
				t.Fatalf("#PF code %#x does not match access %#x", c, a)
			}
			if c&x86.PFErrFetch != 0 && !fetch {
				t.Fatalf("#PF code %#x has I/D for a data access", c)
			}
		case errors.As(err, &ex):
			if !lma || ex.Vector != x86.VectorGP {
				t.Fatalf("unexpected exception %v", err)
			}
		case errors.Is(err, ErrBadPagingMode):
			if !lma || cr4&x86.CR4PAE != 0 {
				t.Fatalf("ErrBadPagingMode for lma=%v cr4=%#x", lma, cr4)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		gpa2, err2 := p.Walk(la, a, read)
		if gpa2 != gpa || (err == nil) != (err2 == nil) {
			t.Fatalf("Walk not deterministic")
		}
		// WalkAD agrees with Walk and only ever sets A/D bits, and only
		// when the walk succeeds.
		writes := 0
		cas := func(g, old, new uint64) (bool, error) {
			writes++
			if g&7 != 0 {
				t.Fatalf("unaligned cas at %#x", g)
			}
			if d := new ^ old; d&^(x86.PTEAccessed|x86.PTEDirty|(x86.PTEAccessed|x86.PTEDirty)<<32) != 0 || new&old != old {
				t.Fatalf("cas %#x -> %#x changes more than A/D", old, new)
			}
			return true, nil
		}
		reads = 0
		gpa3, err3 := p.WalkAD(la, a, read, cas)
		if gpa3 != gpa || (err == nil) != (err3 == nil) {
			t.Fatalf("WalkAD (%#x, %v) disagrees with Walk (%#x, %v)", gpa3, err3, gpa, err)
		}
		if err != nil && writes != 0 {
			t.Fatalf("WalkAD wrote %d entries on a failed walk", writes)
		}
		if writes > 5 {
			t.Fatalf("WalkAD wrote %d entries", writes)
		}
	})
}
