package emul

import (
	"reflect"
	"testing"

	"gohv/x86"
)

// portAccess is one call the fake port device saw.
type portAccess struct {
	In   bool
	Port uint16
	Size int
	V    uint32
}

func pin(port uint16, size int, v uint32) portAccess  { return portAccess{true, port, size, v} }
func pout(port uint16, size int, v uint32) portAccess { return portAccess{false, port, size, v} }

// fakePorts is a port device: In answers with vals in turn (then with
// 0x44332211), and every call is logged.
type fakePorts struct {
	vals []uint32
	log  []portAccess
}

func (d *fakePorts) In(port uint16, size int) uint32 {
	v := uint32(0x44332211)
	if len(d.vals) > 0 {
		v, d.vals = d.vals[0], d.vals[1:]
	}
	v &= 0xffff_ffff >> (32 - 8*size)
	d.log = append(d.log, pin(port, size, v))
	return v
}

func (d *fakePorts) Out(port uint16, size int, v uint32) {
	d.log = append(d.log, pout(port, size, v))
}

type ioCase struct {
	name  string
	mode  Mode   // 0 means Mode64
	code  []byte // the bytes at CS:RIP
	rip   uint64 // 0 means 0x1000
	io    PortString
	regs  map[int]uint64
	flags uint64
	segs  map[Seg]uint64
	ram   map[uint64][]byte
	in    []uint32 // what the device's In returns, in turn
	noDev bool     // pass a nil device
	setup func(s *State, m *fakeMem)

	wantPorts  []portAccess
	wantRegs   map[int]uint64
	wantRAM    map[uint64][]byte
	wantLog    []mmioAccess // MMIO accesses
	wantIters  int
	incomplete bool
	wantLen    int // 0: len(code)
	wantErr    func(*testing.T, error)
}

const com1 = 0x3f8

func runIOCase(t *testing.T, tc ioCase) {
	t.Helper()
	m := newFakeMem()
	s := &State{Mode: Mode64, RIP: 0x1000, RFLAGS: 2 | tc.flags}
	if tc.mode != 0 {
		s.Mode = tc.mode
	}
	if tc.rip != 0 {
		s.RIP = tc.rip
	}
	for i, v := range tc.regs {
		s.GPR[i] = v
	}
	for sg, b := range tc.segs {
		s.SegBase[sg] = b
	}
	for g, b := range tc.ram {
		for i, c := range b {
			m.ram[g+uint64(i)] = c
		}
	}
	if tc.setup != nil {
		tc.setup(s, m)
	}
	codeLA := (s.SegBase[SegCS] + s.RIP) & 0xffffffff
	if s.Mode == Mode64 {
		codeLA = s.RIP
	}
	m.put(codeLA, tc.code)
	dev := &fakePorts{vals: tc.in}
	var pio PortIO = dev
	if tc.noDev {
		pio = nil
	}
	before := *s

	res, err := StringIO(s, m, pio, tc.io)

	for _, e := range m.errs {
		t.Errorf("memory rule violated: %s", e)
	}
	if tc.wantErr != nil {
		tc.wantErr(t, err)
	} else if err != nil {
		t.Fatalf("StringIO: %v", err)
	}
	if s.RIP != before.RIP || s.RFLAGS != before.RFLAGS {
		t.Errorf("RIP/RFLAGS = %#x/%#x, want them unchanged (%#x/%#x)", s.RIP, s.RFLAGS, before.RIP, before.RFLAGS)
	}
	if s.Mode != before.Mode || s.SegBase != before.SegBase || s.CPL != before.CPL {
		t.Errorf("StringIO changed mode, segment bases or CPL")
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
	if !reflect.DeepEqual(dev.log, tc.wantPorts) && (len(dev.log) != 0 || len(tc.wantPorts) != 0) {
		t.Errorf("port log = %v, want %v", dev.log, tc.wantPorts)
	}
	if !reflect.DeepEqual(m.log, tc.wantLog) && (len(m.log) != 0 || len(tc.wantLog) != 0) {
		t.Errorf("MMIO log = %v, want %v", m.log, tc.wantLog)
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
	if res.Iterations != tc.wantIters || res.Incomplete != tc.incomplete {
		t.Errorf("Iterations/Incomplete = %d/%v, want %d/%v", res.Iterations, res.Incomplete, tc.wantIters, tc.incomplete)
	}
	if err == nil {
		wantLen := tc.wantLen
		if wantLen == 0 {
			wantLen = len(tc.code)
		}
		if res.Len != wantLen {
			t.Errorf("Len = %d, want %d", res.Len, wantLen)
		}
	}
}

var (
	outsb = PortString{Port: com1, Size: 1}
	insb  = PortString{Port: com1, Size: 1, In: true}
)

func rep(p PortString) PortString { p.Rep = true; return p }
func sized(p PortString, n int) PortString {
	p.Size = n
	return p
}

var ioCases = []ioCase{
	// ---- sizes and directions ----
	{name: "outsb", code: []byte{0x6e}, io: outsb, // outsb
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RCX: 7}, ram: map[uint64][]byte{0x5000: {0xab}},
		wantPorts: []portAccess{pout(com1, 1, 0xab)},
		wantRegs:  map[int]uint64{x86.RSI: 0x5001}, wantIters: 1},
	{name: "rep outsw", code: []byte{0x66, 0xf3, 0x6f}, io: rep(sized(outsb, 2)), // rep outsw
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RCX: 2}, ram: map[uint64][]byte{0x5000: {1, 2, 3, 4}},
		wantPorts: []portAccess{pout(com1, 2, 0x0201), pout(com1, 2, 0x0403)},
		wantRegs:  map[int]uint64{x86.RSI: 0x5004, x86.RCX: 0}, wantIters: 2},
	{name: "rep outsd", code: []byte{0xf3, 0x6f}, io: rep(sized(outsb, 4)), // rep outsd
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RCX: 1}, ram: map[uint64][]byte{0x5000: {1, 2, 3, 4, 5}},
		wantPorts: []portAccess{pout(com1, 4, 0x04030201)},
		wantRegs:  map[int]uint64{x86.RSI: 0x5004, x86.RCX: 0}, wantIters: 1},
	{name: "insb", code: []byte{0x6c}, io: insb, in: []uint32{0x5a}, // insb
		regs:      map[int]uint64{x86.RDI: 0x6000},
		wantPorts: []portAccess{pin(com1, 1, 0x5a)},
		wantRegs:  map[int]uint64{x86.RDI: 0x6001}, wantRAM: map[uint64][]byte{0x6000: {0x5a, 0}}, wantIters: 1},
	{name: "rep insw", code: []byte{0x66, 0xf3, 0x6d}, io: rep(sized(insb, 2)), in: []uint32{0x1122, 0x3344}, // rep insw
		regs:      map[int]uint64{x86.RDI: 0x6000, x86.RCX: 2},
		wantPorts: []portAccess{pin(com1, 2, 0x1122), pin(com1, 2, 0x3344)},
		wantRegs:  map[int]uint64{x86.RDI: 0x6004, x86.RCX: 0}, wantRAM: map[uint64][]byte{0x6000: {0x22, 0x11, 0x44, 0x33, 0}}, wantIters: 2},
	{name: "insd into mmio", code: []byte{0x6d}, io: sized(insb, 4), in: []uint32{0xcafef00d}, // insd
		regs:      map[int]uint64{x86.RDI: mm + 8},
		wantPorts: []portAccess{pin(com1, 4, 0xcafef00d)},
		wantLog:   []mmioAccess{wr(4, mm+8, 0xcafef00d)},
		wantRegs:  map[int]uint64{x86.RDI: mm + 12}, wantIters: 1},
	{name: "outsb from mmio", code: []byte{0x6e}, io: outsb, // outsb
		regs:      map[int]uint64{x86.RSI: mm},
		wantLog:   []mmioAccess{rd(1, mm, 0x11)},
		wantPorts: []portAccess{pout(com1, 1, 0x11)},
		wantRegs:  map[int]uint64{x86.RSI: mm + 1}, wantIters: 1},

	// ---- no device ----
	{name: "insb without a device reads all ones", code: []byte{0x6c}, io: insb, noDev: true, // insb
		regs: map[int]uint64{x86.RDI: 0x6000}, wantRegs: map[int]uint64{x86.RDI: 0x6001},
		wantRAM: map[uint64][]byte{0x6000: {0xff, 0}}, wantIters: 1},
	{name: "rep insw without a device", code: []byte{0x66, 0xf3, 0x6d}, io: rep(sized(insb, 2)), noDev: true, // rep insw
		regs: map[int]uint64{x86.RDI: 0x6000, x86.RCX: 2}, wantRegs: map[int]uint64{x86.RDI: 0x6004, x86.RCX: 0},
		wantRAM: map[uint64][]byte{0x6000: {0xff, 0xff, 0xff, 0xff, 0}}, wantIters: 2},
	{name: "insd without a device", code: []byte{0x6d}, io: sized(insb, 4), noDev: true, // insd
		regs: map[int]uint64{x86.RDI: 0x6000}, wantRegs: map[int]uint64{x86.RDI: 0x6004},
		wantRAM: map[uint64][]byte{0x6000: {0xff, 0xff, 0xff, 0xff, 0}}, wantIters: 1},
	{name: "outsb without a device", code: []byte{0x6e}, io: outsb, noDev: true, // outsb
		regs: map[int]uint64{x86.RSI: 0x5000}, wantRegs: map[int]uint64{x86.RSI: 0x5001}, wantIters: 1},

	// ---- DF ----
	{name: "rep insw backwards", code: []byte{0x66, 0xf3, 0x6d}, io: rep(sized(insb, 2)), flags: x86.RFLAGSDF, in: []uint32{0x1122, 0x3344}, // rep insw
		regs:      map[int]uint64{x86.RDI: 0x6002, x86.RCX: 2},
		wantPorts: []portAccess{pin(com1, 2, 0x1122), pin(com1, 2, 0x3344)},
		wantRegs:  map[int]uint64{x86.RDI: 0x5ffe, x86.RCX: 0}, wantRAM: map[uint64][]byte{0x6000: {0x44, 0x33, 0x22, 0x11}}, wantIters: 2},
	{name: "rep outsb backwards", code: []byte{0xf3, 0x6e}, io: rep(outsb), flags: x86.RFLAGSDF, // rep outsb
		regs: map[int]uint64{x86.RSI: 0x5002, x86.RCX: 3}, ram: map[uint64][]byte{0x5000: {1, 2, 3}},
		wantPorts: []portAccess{pout(com1, 1, 3), pout(com1, 1, 2), pout(com1, 1, 1)},
		wantRegs:  map[int]uint64{x86.RSI: 0x4fff, x86.RCX: 0}, wantIters: 3},

	// ---- address sizes ----
	{name: "a16 mode16 wraps di and keeps the upper bits", mode: Mode16, code: []byte{0xf3, 0x6c}, io: rep(insb), in: []uint32{1, 2}, // rep insb
		regs: map[int]uint64{x86.RDI: 0xabcdffff, x86.RCX: 0x55550002}, segs: map[Seg]uint64{SegES: 0x20000},
		wantPorts: []portAccess{pin(com1, 1, 1), pin(com1, 1, 2)},
		wantRegs:  map[int]uint64{x86.RDI: 0xabcd0001, x86.RCX: 0x55550000},
		wantRAM:   map[uint64][]byte{0x2ffff: {1}, 0x20000: {2}}, wantIters: 2},
	{name: "a16 in mode32 via 0x67", mode: Mode32, code: []byte{0x67, 0xf3, 0x6e}, io: rep(outsb), // rep outsb
		regs: map[int]uint64{x86.RSI: 0x1234fffe, x86.RCX: 0x10002}, segs: map[Seg]uint64{SegDS: 0x30000},
		ram:       map[uint64][]byte{0x3fffe: {7, 8}},
		wantPorts: []portAccess{pout(com1, 1, 7), pout(com1, 1, 8)},
		wantRegs:  map[int]uint64{x86.RSI: 0x12340000, x86.RCX: 0x10000}, wantIters: 2},
	{name: "a32 mode32 with segment bases", mode: Mode32, code: []byte{0xf3, 0x6c}, io: rep(insb), in: []uint32{9}, // rep insb
		regs: map[int]uint64{x86.RDI: 0x100, x86.RCX: 1}, segs: map[Seg]uint64{SegES: 0x6000, SegDS: 0x9000},
		wantPorts: []portAccess{pin(com1, 1, 9)},
		wantRegs:  map[int]uint64{x86.RDI: 0x101, x86.RCX: 0}, wantRAM: map[uint64][]byte{0x6100: {9}}, wantIters: 1},
	{name: "a32 in mode64 via 0x67 zero-extends", code: []byte{0x67, 0xf3, 0x6e}, io: rep(outsb), // rep outsb
		regs: map[int]uint64{x86.RSI: 0xffffffff00005000, x86.RCX: 0xffffffff00000002}, ram: map[uint64][]byte{0x5000: {5, 6}},
		wantPorts: []portAccess{pout(com1, 1, 5), pout(com1, 1, 6)},
		wantRegs:  map[int]uint64{x86.RSI: 0x5002, x86.RCX: 0}, wantIters: 2},
	{name: "a64 ignores ds and es bases", code: []byte{0xf3, 0x6d}, io: rep(sized(insb, 4)), in: []uint32{0x01020304}, // rep insd
		regs: map[int]uint64{x86.RDI: 0x1_0000_6000, x86.RCX: 1}, segs: map[Seg]uint64{SegES: 0x1000, SegDS: 0x2000},
		wantPorts: []portAccess{pin(com1, 4, 0x01020304)},
		wantRegs:  map[int]uint64{x86.RDI: 0x1_0000_6004, x86.RCX: 0}, wantRAM: map[uint64][]byte{0x1_0000_6000: {4, 3, 2, 1}}, wantIters: 1},
	{name: "outs honours a segment override", mode: Mode32, code: []byte{0x64, 0x6e}, io: outsb, // outsb dx, fs:[esi]
		regs: map[int]uint64{x86.RSI: 0x10}, segs: map[Seg]uint64{SegFS: 0x7000, SegDS: 0x9000},
		ram:       map[uint64][]byte{0x7010: {0x77}},
		wantPorts: []portAccess{pout(com1, 1, 0x77)},
		wantRegs:  map[int]uint64{x86.RSI: 0x11}, wantIters: 1},

	// ---- REP count ----
	{name: "rep with rcx 0 does nothing", code: []byte{0xf3, 0x6c}, io: rep(insb), // rep insb
		regs: map[int]uint64{x86.RDI: 0x6000}},
	{name: "without rep rcx is left alone", code: []byte{0x6c}, io: insb, in: []uint32{3}, // insb
		regs: map[int]uint64{x86.RDI: 0x6000, x86.RCX: 0}, wantPorts: []portAccess{pin(com1, 1, 3)},
		wantRegs: map[int]uint64{x86.RDI: 0x6001}, wantIters: 1},
	{name: "the exit's rep decides, not the bytes", code: []byte{0x00, 0x00}, io: rep(outsb), // add [rax], al
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RCX: 2}, ram: map[uint64][]byte{0x5000: {1, 2}},
		wantPorts: []portAccess{pout(com1, 1, 1), pout(com1, 1, 2)},
		wantRegs:  map[int]uint64{x86.RSI: 0x5002, x86.RCX: 0}, wantIters: 2},
	{name: "limit stops with progress", code: []byte{0xf3, 0x6e}, io: rep(outsb), // rep outsb
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RCX: 5}, ram: map[uint64][]byte{0x5000: {1, 2, 3}},
		setup:     func(s *State, m *fakeMem) { s.RepLimit = 2 },
		wantPorts: []portAccess{pout(com1, 1, 1), pout(com1, 1, 2)},
		wantRegs:  map[int]uint64{x86.RSI: 0x5002, x86.RCX: 3}, wantIters: 2, incomplete: true},

	// ---- pages ----
	{name: "insd straddles two pages", code: []byte{0x6d}, io: sized(insb, 4), in: []uint32{0x44332211}, // insd
		regs:      map[int]uint64{x86.RDI: 0x7ffe},
		setup:     func(s *State, m *fakeMem) { m.pages[0x8000] = 0x20000 },
		wantPorts: []portAccess{pin(com1, 4, 0x44332211)},
		wantRegs:  map[int]uint64{x86.RDI: 0x8002}, wantRAM: map[uint64][]byte{0x7ffe: {0x11, 0x22}, 0x20000: {0x33, 0x44}}, wantIters: 1},
	{name: "outsw straddles ram and mmio", code: []byte{0x66, 0x6f}, io: sized(outsb, 2), // outsw
		regs:      map[int]uint64{x86.RSI: 0x8fff},
		ram:       map[uint64][]byte{0x8fff: {0xaa}},
		setup:     func(s *State, m *fakeMem) { m.pages[0x9000] = mm },
		wantLog:   []mmioAccess{rd(1, mm, 0x11)},
		wantPorts: []portAccess{pout(com1, 2, 0x11aa)},
		wantRegs:  map[int]uint64{x86.RSI: 0x9001}, wantIters: 1},
	{name: "instruction straddles two pages", rip: 0x1fff, code: []byte{0xf3, 0x6e}, io: rep(outsb), // rep outsb
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RCX: 1}, ram: map[uint64][]byte{0x5000: {4}},
		setup:     func(s *State, m *fakeMem) { m.pages[0x2000] = 0x30000 },
		wantPorts: []portAccess{pout(com1, 1, 4)},
		wantRegs:  map[int]uint64{x86.RSI: 0x5001, x86.RCX: 0}, wantIters: 1},

	// ---- faults ----
	{name: "#PF mid-rep keeps the completed iterations", code: []byte{0xf3, 0x6c}, io: rep(insb), in: []uint32{1, 2, 3}, // rep insb
		regs:      map[int]uint64{x86.RDI: 0x7ffe, x86.RCX: 4},
		setup:     func(s *State, m *fakeMem) { m.fault[0x8000] = x86.PFErrWrite },
		wantErr:   isPF(0x8000, x86.PFErrWrite),
		wantPorts: []portAccess{pin(com1, 1, 1), pin(com1, 1, 2)},
		wantRegs:  map[int]uint64{x86.RDI: 0x8000, x86.RCX: 2}, wantRAM: map[uint64][]byte{0x7ffe: {1, 2}}, wantIters: 2},
	{name: "#PF on the second page of an operand touches no device", code: []byte{0x6d}, io: sized(insb, 4), // insd
		regs:    map[int]uint64{x86.RDI: 0x7ffe},
		setup:   func(s *State, m *fakeMem) { m.fault[0x8000] = x86.PFErrWrite | x86.PFErrPresent },
		wantErr: isPF(0x8000, x86.PFErrWrite|x86.PFErrPresent)},
	{name: "#PF on the outs source", code: []byte{0xf3, 0x6e}, io: rep(outsb), // rep outsb
		regs:    map[int]uint64{x86.RSI: 0x5000, x86.RCX: 2},
		setup:   func(s *State, m *fakeMem) { m.fault[0x5000] = x86.PFErrUser },
		wantErr: isPF(0x5000, x86.PFErrUser)},
	{name: "non-canonical rdi #GP", code: []byte{0x6c}, io: insb, // insb
		regs: map[int]uint64{x86.RDI: 0x0000_8000_0000_0000}, wantErr: isExc(x86.VectorGP)},
	{name: "memory error ends it", code: []byte{0x6c}, io: insb, in: []uint32{1}, // insb
		regs:      map[int]uint64{x86.RDI: mm},
		setup:     func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantPorts: []portAccess{pin(com1, 1, 1)},
		wantErr:   isErr(errDevice)},
	{name: "undecodable bytes at rip", code: []byte{0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66}, io: insb,
		wantErr: isUnsupported("(bad)")},
	{name: "bad size", code: []byte{0x6c}, io: sized(insb, 8), wantErr: isErr(nil)},
}

func TestStringIO(t *testing.T) {
	for _, tc := range ioCases {
		t.Run(tc.name, func(t *testing.T) { runIOCase(t, tc) })
	}
}

// TestStringIOResumes runs a REP OUTSB longer than the per-call cap the way
// the hypervisor does: each call stops after DefaultRepLimit iterations
// with RIP unchanged, and calling again continues where it stopped.
func TestStringIOResumes(t *testing.T) {
	const n = 2*DefaultRepLimit + 100
	m := newFakeMem()
	m.put(0x1000, []byte{0xf3, 0x6e}) // rep outsb
	for i := 0; i < n; i++ {
		m.ram[0x10000+uint64(i)] = byte(i)
	}
	s := &State{Mode: Mode64, RIP: 0x1000}
	s.GPR[x86.RSI], s.GPR[x86.RCX] = 0x10000, n
	dev := &fakePorts{}
	var calls []int
	for range 4 {
		res, err := StringIO(s, m, dev, rep(outsb))
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, res.Iterations)
		if !res.Incomplete {
			break
		}
		if s.RIP != 0x1000 {
			t.Fatalf("RIP moved to %#x on an incomplete call", s.RIP)
		}
	}
	if want := []int{DefaultRepLimit, DefaultRepLimit, 100}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("iterations per call %v, want %v", calls, want)
	}
	if s.GPR[x86.RCX] != 0 || s.GPR[x86.RSI] != 0x10000+n || len(dev.log) != n {
		t.Fatalf("rcx %d rsi %#x, %d port writes", s.GPR[x86.RCX], s.GPR[x86.RSI], len(dev.log))
	}
	for i, a := range dev.log {
		if a != pout(com1, 1, uint32(byte(i))) {
			t.Fatalf("port write %d = %v", i, a)
		}
	}
}

// TestStringIOAccessKinds checks the translations INS and OUTS ask for:
// writes for INS, reads for OUTS, user accesses at CPL 3 and AC-marked
// supervisor accesses with RFLAGS.AC set.
func TestStringIOAccessKinds(t *testing.T) {
	for _, c := range []struct {
		cpl   uint8
		flags uint64
		io    PortString
		data  Access
	}{
		{0, 0, insb, AccessWrite},
		{0, 0, outsb, AccessRead},
		{0, x86.RFLAGSAC, insb, AccessWrite | AccessAC},
		{3, x86.RFLAGSAC, outsb, AccessUser},
	} {
		m := newFakeMem()
		m.put(0x1000, []byte{0x6c})
		s := &State{Mode: Mode64, RIP: 0x1000, CPL: c.cpl, RFLAGS: 2 | c.flags}
		s.GPR[x86.RSI], s.GPR[x86.RDI] = 0x5000, 0x6000
		if _, err := StringIO(s, m, &fakePorts{}, c.io); err != nil {
			t.Fatal(err)
		}
		fetch := AccessFetch
		if c.cpl == 3 {
			fetch |= AccessUser
		}
		la := uint64(0x6000)
		if !c.io.In {
			la = 0x5000
		}
		want := []xlateCall{{0x1000, fetch}, {la, c.data}}
		if !reflect.DeepEqual(m.xlates, want) {
			t.Errorf("cpl %d flags %#x in %v: translates %+v, want %+v", c.cpl, c.flags, c.io.In, m.xlates, want)
		}
	}
}

// allocPorts is a PortIO that does not allocate.
type allocPorts struct{ n int }

func (d *allocPorts) In(port uint16, size int) uint32     { d.n++; return 0x5a }
func (d *allocPorts) Out(port uint16, size int, v uint32) { d.n++ }

func TestStringIOAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		code []byte
		io   PortString
	}{
		{"rep insb", []byte{0xf3, 0x6c}, rep(insb)},                  // rep insb
		{"rep outsd", []byte{0xf3, 0x6f}, rep(sized(outsb, 4))},      // rep outsd
		{"outsw", []byte{0x66, 0x6f}, sized(outsb, 2)},               // outsw
		{"no device", []byte{0x66, 0xf3, 0x6d}, rep(sized(insb, 2))}, // rep insw
	} {
		m := &allocMem{}
		copy(m.code[:], c.code)
		s := &State{Mode: Mode64}
		var dev PortIO = &allocPorts{}
		if c.name == "no device" {
			dev = nil
		}
		run := func() {
			s.RIP = 0x1000
			s.GPR[x86.RCX], s.GPR[x86.RSI], s.GPR[x86.RDI] = 8, mm, mm
			if _, err := StringIO(s, m, dev, c.io); err != nil {
				t.Fatal(err)
			}
		}
		got := testing.AllocsPerRun(200, run)
		dec := decodeAllocs(m.code[:])
		if got > dec {
			t.Errorf("%s: StringIO allocates %.0f times beyond x86asm.Decode's %.0f", c.name, got-dec, dec)
		}
	}
}
