package emul

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"gohv/x86"
)

const mm = 0xd0000000 // the fake MMIO window's base

func rd(width int, gpa, v uint64) mmioAccess { return mmioAccess{false, gpa, width, v} }
func wr(width int, gpa, v uint64) mmioAccess { return mmioAccess{true, gpa, width, v} }

const ones = ^uint64(0)

type emuCase struct {
	name   string
	mode   Mode // 0 means Mode64
	code   []byte
	rip    uint64 // 0 means 0x1000
	regs   map[int]uint64
	flags  uint64
	segs   map[Seg]uint64
	setup  func(s *State, m *fakeMem)
	mmio   map[uint64]uint64 // MMIO read values by GPA
	ram    map[uint64][]byte // RAM contents by GPA
	noRIP  bool              // RIP must stay (error or incomplete)
	newRIP uint64            // expected RIP when not rip+len(code); 0 = that

	wantLog   []mmioAccess
	wantRegs  map[int]uint64
	flagMask  uint64
	wantFlags uint64
	wantRAM   map[uint64][]byte
	wantErr   func(t *testing.T, err error)
	check     func(t *testing.T, s *State, m *fakeMem, res Result)
}

func isPF(addr uint64, code uint32) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var pf *PageFault
		if !errors.As(err, &pf) || pf.Addr != addr || pf.Code != code {
			t.Fatalf("err = %v, want #PF at %#x code %#x", err, addr, code)
		}
	}
}

func isExc(vec uint8) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ex *Exception
		if !errors.As(err, &ex) || ex.Vector != vec {
			t.Fatalf("err = %v, want exception %d", err, vec)
		}
	}
}

func isUnsupported(text string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("err = %v, want unsupported", err)
		}
		if !strings.Contains(err.Error(), text) {
			t.Fatalf("err = %q, want it to contain %q", err, text)
		}
	}
}

var errDevice = errors.New("device error")

// isErr wants err to wrap target, or any non-nil error when target is nil.
func isErr(target error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if err == nil || (target != nil && !errors.Is(err, target)) {
			t.Fatalf("err = %v, want %v", err, target)
		}
	}
}

func runCase(t *testing.T, tc emuCase) {
	t.Helper()
	m := newFakeMem()
	s := &State{Mode: Mode64, RIP: 0x1000, RFLAGS: 2}
	if tc.mode != 0 {
		s.Mode = tc.mode
	}
	if tc.rip != 0 {
		s.RIP = tc.rip
	}
	for i, v := range tc.regs {
		s.GPR[i] = v
	}
	s.RFLAGS |= tc.flags
	for sg, b := range tc.segs {
		s.SegBase[sg] = b
	}
	for g, v := range tc.mmio {
		m.mmioVal[g] = v
	}
	for g, b := range tc.ram {
		for i, c := range b {
			m.ram[g+uint64(i)] = c
		}
	}
	if tc.setup != nil {
		tc.setup(s, m)
	}
	// Code lives at CS.base+RIP (linear), through the page map.
	codeLA := s.RIP
	switch s.Mode {
	case Mode32:
		codeLA = (s.SegBase[SegCS] + s.RIP) & 0xffffffff
	case Mode16:
		codeLA = (s.SegBase[SegCS] + s.RIP&0xffff) & 0xffffffff
	}
	m.put(codeLA, tc.code)
	before := *s

	res, err := Emulate(s, m)
	for _, e := range m.errs {
		t.Errorf("memory rule violated: %s", e)
	}
	if tc.wantErr != nil {
		tc.wantErr(t, err)
	} else if err != nil {
		t.Fatalf("Emulate: %v", err)
	}
	wantRIP := before.RIP + uint64(len(tc.code))
	switch s.Mode {
	case Mode16:
		wantRIP &= 0xffff
	case Mode32:
		wantRIP &= 0xffffffff
	}
	if tc.newRIP != 0 {
		wantRIP = tc.newRIP
	}
	if tc.noRIP || tc.wantErr != nil {
		wantRIP = before.RIP
	}
	if s.RIP != wantRIP {
		t.Errorf("RIP = %#x, want %#x", s.RIP, wantRIP)
	}
	if err == nil && !res.Incomplete && res.Len != len(tc.code) {
		t.Errorf("Len = %d, want %d", res.Len, len(tc.code))
	}
	if len(m.log) != 0 || len(tc.wantLog) != 0 {
		if !reflect.DeepEqual(m.log, tc.wantLog) {
			t.Errorf("MMIO log = %v, want %v", m.log, tc.wantLog)
		}
	}
	for i := range s.GPR {
		want, ok := tc.wantRegs[i]
		if !ok {
			want = before.GPR[i]
		}
		if s.GPR[i] != want {
			t.Errorf("GPR[%d] = %#x, want %#x", i, s.GPR[i], want)
		}
	}
	if got := s.RFLAGS & tc.flagMask; got != tc.wantFlags {
		t.Errorf("RFLAGS&%#x = %#x, want %#x", tc.flagMask, got, tc.wantFlags)
	}
	if tc.flagMask == 0 && s.RFLAGS != before.RFLAGS {
		t.Errorf("RFLAGS = %#x, want unchanged %#x", s.RFLAGS, before.RFLAGS)
	}
	for g, want := range tc.wantRAM {
		got := make([]byte, len(want))
		for i := range got {
			got[i] = m.ram[g+uint64(i)]
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("RAM at %#x = % x, want % x", g, got, want)
		}
	}
	if tc.check != nil {
		tc.check(t, s, m, res)
	}
}

// allEmuCases is every table case, for the fuzz corpus.
func allEmuCases() []emuCase {
	return slices.Concat(moveCases, operandCases, aluCases, accessCases, stringCases, decodeCases)
}

func TestEmulateUserAndAC(t *testing.T) {
	for _, c := range []struct {
		cpl             uint8
		flags           uint64
		fetchAcc, ldAcc Access
	}{
		{0, 0, AccessFetch, AccessWrite},
		{0, x86.RFLAGSAC, AccessFetch, AccessWrite | AccessAC},
		{3, x86.RFLAGSAC, AccessFetch | AccessUser, AccessWrite | AccessUser},
	} {
		m := newFakeMem()
		m.put(0x1000, []byte{0x89, 0x08}) // mov [rax], ecx
		s := &State{Mode: Mode64, RIP: 0x1000, CPL: c.cpl, RFLAGS: 2 | c.flags}
		s.GPR[x86.RAX] = mm
		if _, err := Emulate(s, m); err != nil {
			t.Fatal(err)
		}
		want := []xlateCall{{0x1000, c.fetchAcc}, {mm, c.ldAcc}}
		if !reflect.DeepEqual(m.xlates, want) {
			t.Errorf("cpl %d flags %#x: translates %+v, want %+v", c.cpl, c.flags, m.xlates, want)
		}
	}
}

func TestEmulateClearsRF(t *testing.T) {
	m := newFakeMem()
	m.put(0x1000, []byte{0x89, 0x08}) // mov [rax], ecx
	s := &State{Mode: Mode64, RIP: 0x1000, RFLAGS: 2 | x86.RFLAGSRF}
	s.GPR[x86.RAX] = mm
	if _, err := Emulate(s, m); err != nil {
		t.Fatal(err)
	}
	if s.RFLAGS != 2 {
		t.Errorf("RFLAGS = %#x, want 2", s.RFLAGS)
	}
}

func TestEmulateBadMode(t *testing.T) {
	s := &State{Mode: 8}
	if _, err := Emulate(s, newFakeMem()); err == nil {
		t.Fatal("no error for mode 8")
	}
}

func TestModeFromCS(t *testing.T) {
	if ModeFromCS(true, true, false) != Mode64 || ModeFromCS(true, false, true) != Mode32 ||
		ModeFromCS(false, true, true) != Mode32 || ModeFromCS(false, false, false) != Mode16 {
		t.Fatal("ModeFromCS")
	}
}

// allocMem is a Memory that does not allocate, for measuring Emulate.
type allocMem struct {
	code [16]byte
}

func (m *allocMem) Translate(la uint64, acc Access) (uint64, error) { return la, nil }
func (m *allocMem) Read(gpa uint64, b []byte) error {
	if gpa == 0x1000 {
		copy(b, m.code[:])
		return nil
	}
	for i := range b {
		b[i] = 0x5a
	}
	return nil
}
func (m *allocMem) Write(gpa uint64, b []byte) error { return nil }

func TestEmulateAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		code []byte
	}{
		{"mov [rax],ecx", []byte{0x89, 0x08}},                               // mov [rax], ecx
		{"mov eax,[rbx+rcx*4+8]", []byte{0x8b, 0x44, 0x8b, 0x08}},           // mov eax, [rbx+rcx*4+8]
		{"mov dword [rax],imm", []byte{0xc7, 0x00, 0x78, 0x56, 0x34, 0x12}}, // mov dword [rax], 0x12345678
		{"rep stosd", []byte{0xf3, 0xab}},                                   // rep stosd
		{"add [rax],ecx", []byte{0x01, 0x08}},                               // add [rax], ecx
	} {
		m := &allocMem{}
		copy(m.code[:], c.code)
		s := &State{Mode: Mode64}
		run := func() {
			s.RIP = 0x1000
			s.GPR[x86.RAX] = mm
			s.GPR[x86.RCX] = 4
			s.GPR[x86.RDI] = mm
			if _, err := Emulate(s, m); err != nil {
				t.Fatal(err)
			}
		}
		got := testing.AllocsPerRun(200, run)
		dec := decodeAllocs(m.code[:])
		t.Logf("%s: %.0f allocs per Emulate, of which x86asm.Decode %.0f", c.name, got, dec)
		if got > dec {
			t.Errorf("%s: Emulate allocates %.0f times beyond x86asm.Decode's %.0f", c.name, got-dec, dec)
		}
	}
}

// decodeAllocs is what x86asm.Decode allocates for code in 64-bit mode: the
// emulator's only allowance.
func decodeAllocs(code []byte) float64 {
	return testing.AllocsPerRun(200, func() { _, _ = x86asm.Decode(code[:15], 64) })
}

func BenchmarkEmulateMovStore(b *testing.B) {
	m := &allocMem{}
	copy(m.code[:], []byte{0x89, 0x08}) // mov [rax], ecx
	s := &State{Mode: Mode64}
	b.ReportAllocs()
	for b.Loop() {
		s.RIP = 0x1000
		s.GPR[x86.RAX] = mm
		if _, err := Emulate(s, m); err != nil {
			b.Fatal(err)
		}
	}
}
