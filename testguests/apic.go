package testguests

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"gohv/hv"
)

// The APIC test guests (apic_amd64.s) check a partition's local APIC and
// I/O APIC from the inside. They share one interrupt handler, which every
// vector from 16 up reaches through a stub (apicenv.go), and a data page at
// APICData through which they and the root talk: the root writes
// parameters and per-vector actions before the start; the guest stores
// its results, its current step and a log of every interrupt its handler
// took, which the root reads back (ReadAPICState) once the guest ended.

// Declarations for vet: guest code, never called in the host.
func apicHandler()
func apicTimerOneShot()
func apicTimerPeriodic()
func apicTSCDeadline()
func apicSelfIPI()
func apicTPR()
func apicEOINesting()
func apicX2APIC()
func apicIOAPIC()
func apicTimerStorm()
func apicIPIFlood()
func apicNoEOI()
func apicBaseInRAM()
func apicReservedBits()
func apicIllegalVector()
func apicBench()
func apicX2APICPage()
func apicHold()
func apicSMPHostile()
func apicSMPAP()
func apicSMPEntry()

func apicBlobAddrs(p *[numAPICBlobs]uintptr)
func apicText(dst *[apicBlobLimit]byte, from uintptr) (n int)

// APICProgram names an APIC test guest; apic_amd64.s documents each one's
// steps, parameters and results.
type APICProgram int

const (
	apicBlobHandler   APICProgram = iota
	APICTimerOneShot              // one-shot timer runs at several divide values
	APICTimerPeriodic             // periodic timer ticks, then stopped
	APICTSCDeadline               // TSC-deadline mode: fires once, past deadlines, disarming
	APICSelfIPI                   // xAPIC ICR and x2APIC SELF_IPI/ICR to itself
	APICTPR                       // TPR and CR8 masking by class
	APICEOINesting                // a higher class nests; EOIs retire in order
	APICX2APIC                    // IA32_APIC_BASE transitions, x2APIC MSRs, the page
	APICIOAPIC                    // COM1's IRQ 4 through I/O APIC pin 4
	APICTimerStorm                // a one-tick periodic timer, forever
	APICIPIFlood                  // floods of self-IPIs
	APICNoEOI                     // never an EOI, then halted
	APICBaseInRAM                 // IA32_APIC_BASE on the guest's own RAM
	APICReservedBits              // x2APIC MSR accesses that must #GP
	APICIllegalVector             // vectors 0-15 and the ESR
	APICBench                     // self-IPI and timer round trips
	APICX2APICPage                // the xAPIC page read in x2APIC mode
	APICHold                      // self-IPIs whose handler keeps interrupts off for a while
	APICSMPHostile                // the hostile SMP guest's BSP (smp.go); LoadSMPHostile loads it
	apicBlobSMPAP                 // its application processor's program
	apicBlobSMPEntry              // the 64-bit entry its trampoline jumps to
	numAPICBlobs
)

// apicBlobLimit bounds a blob's size (APIC_BLOB_LIMIT in the assembly).
const apicBlobLimit = 16384

// The data page (guest-physical; the same numbers are #defines in
// apic_amd64.s, kept equal by TestAPICLayoutMatchesAssembly).
const (
	APICData = DataBase // the data page's base

	apicMode      = 0x00 // u64: 0 xAPIC, 1 x2APIC: how the handler EOIs
	apicCount     = 0x08 // u64: interrupts the handler took
	apicDepth     = 0x10 // u64: handlers running
	apicStep      = 0x18 // u64: the step the guest is at
	apicLAPICHz   = 0x20 // u64: RSI at entry
	apicTSCHz     = 0x28 // u64: RDI at entry
	apicTSCms     = 0x30 // u64: TSC ticks per millisecond
	apicScratch   = 0x40 // a record for interrupts past the log's capacity
	apicActions   = 0x100
	apicChain     = 0x200
	apicParams    = 0x600
	apicResults   = 0x800
	apicLog       = 0x1000
	apicTable     = 0x30000
	apicBenchArea = 0x40000

	// APICLogCap is how many interrupts the log holds; the count goes on.
	APICLogCap = 4096
	// APICParamSlots and APICResultSlots are the sizes, in u64s, of the
	// parameter and result areas.
	APICParamSlots  = (apicResults - apicParams) / 8
	APICResultSlots = (apicLog - apicResults) / 8
	// APICTableCap is how many reserved-bit cases fit in the table.
	APICTableCap = (apicBenchArea - apicTable) / 24
	// APICRAMPage is the RAM page APICBaseInRAM moves the LAPIC onto.
	APICRAMPage = 0x300000

	apicRecordSize = 32
	apicStateSize  = apicLog + APICLogCap*apicRecordSize
	apicAfter      = 0x100 // a record's vector field: the after-chain record
)

// APICAction is what the shared handler does for a vector, besides
// logging it.
type APICAction uint8

const (
	// ActSnapshot records ISR (vectors 0x40-0x7f) and PPR, read through
	// the page (or the MSRs in x2APIC mode), in the record.
	ActSnapshot APICAction = 1 << iota
	// ActNoEOI returns without an EOI.
	ActNoEOI
	// ActChain sends the vector's chain as self-IPIs, lets them in (STI,
	// a short spin, CLI) and appends an After record before its EOI.
	ActChain
	// ActHold keeps interrupts disabled in the handler for 8 ms of TSC
	// before its EOI, with no exit: across host time slices and whatever
	// the processor (or its emulator) does in between.
	ActHold
)

// APICRecord is one interrupt the shared handler took. Every field is
// what the guest wrote: evidence to check, not to trust.
type APICRecord struct {
	TSC    uint64 // the guest's TSC at the handler's entry (After: once the chain was let in)
	Vector uint8
	After  bool   // the record ActChain appends after its chained interrupts
	Depth  uint32 // handlers running, this one included: 1 when not nested
	ISR    uint64 // ActSnapshot: in-service vectors 0x40-0x7f, bit i for vector 0x40+i
	PPR    uint32 // ActSnapshot: the processor priority
}

// InService reports whether the snapshot shows vector v (0x40-0x7f) in
// service.
func (r APICRecord) InService(v uint8) bool {
	return v >= 0x40 && v < 0x80 && r.ISR&(1<<(v-0x40)) != 0
}

func (r APICRecord) String() string {
	after := ""
	if r.After {
		after = " after"
	}
	return fmt.Sprintf("%#x%s depth %d isr %#x ppr %#x", r.Vector, after, r.Depth, r.ISR, r.PPR)
}

// APICState is what an APIC guest left in its data page.
type APICState struct {
	Step    uint64 // the step it reached (its exit status, when it failed)
	Count   uint64 // interrupts its handler took
	Depth   uint64 // handlers still running (non-zero only if it ended inside one)
	Results [APICResultSlots]uint64
	Log     []APICRecord // the first min(Count, APICLogCap) interrupts
}

// Vectors lists the logged vectors in order, After records as vector|0x100.
func (s *APICState) Vectors() []uint16 {
	v := make([]uint16, len(s.Log))
	for i, r := range s.Log {
		v[i] = uint16(r.Vector)
		if r.After {
			v[i] |= apicAfter
		}
	}
	return v
}

// ReadAPICState reads an APIC guest's data page from its partition's RAM.
func ReadAPICState(m *hv.GuestMemory) (APICState, error) {
	page := make([]byte, apicStateSize)
	if err := m.ReadRAM(APICData, page); err != nil {
		return APICState{}, fmt.Errorf("testguests: apic data page: %w", err)
	}
	return ParseAPICState(page)
}

// ParseAPICState decodes a data page (at least the control area, results
// and as many records as the count says). Guest-controlled: the count is
// clamped to the log's capacity and a record with bits set outside its
// fields is an error naming it.
func ParseAPICState(page []byte) (APICState, error) {
	var s APICState
	if len(page) < apicLog {
		return s, fmt.Errorf("testguests: apic data page: %d bytes, want at least %d", len(page), apicLog)
	}
	le := binary.LittleEndian
	s.Step, s.Count, s.Depth = le.Uint64(page[apicStep:]), le.Uint64(page[apicCount:]), le.Uint64(page[apicDepth:])
	for i := range s.Results {
		s.Results[i] = le.Uint64(page[apicResults+8*i:])
	}
	n := min(s.Count, APICLogCap)
	if have := uint64(len(page)-apicLog) / apicRecordSize; n > have {
		return s, fmt.Errorf("testguests: apic log: %d records counted, %d bytes hold %d", n, len(page), have)
	}
	s.Log = make([]APICRecord, n)
	for i := range s.Log {
		b := page[apicLog+apicRecordSize*i:]
		vec := le.Uint32(b[8:])
		if vec&^(0xff|apicAfter) != 0 {
			return s, fmt.Errorf("testguests: apic log record %d: vector field %#x", i, vec)
		}
		s.Log[i] = APICRecord{
			TSC:    le.Uint64(b),
			Vector: uint8(vec),
			After:  vec&apicAfter != 0,
			Depth:  le.Uint32(b[12:]),
			ISR:    le.Uint64(b[16:]),
			PPR:    le.Uint32(b[24:]),
		}
	}
	return s, nil
}

// SetAPICParams writes the guest's parameters (at most APICParamSlots).
// Call before the partition starts.
func SetAPICParams(m *hv.GuestMemory, v ...uint64) error {
	if len(v) > APICParamSlots {
		return fmt.Errorf("testguests: %d apic parameters, room for %d", len(v), APICParamSlots)
	}
	return writeU64s(m, APICData+apicParams, v)
}

// SetAPICAction sets what the handler does for vector v; chain (at most
// four vectors, for ActChain) is what it sends. Call before the partition
// starts.
func SetAPICAction(m *hv.GuestMemory, v uint8, a APICAction, chain ...uint8) error {
	if len(chain) > 4 {
		return fmt.Errorf("testguests: a chain of %d vectors, room for 4", len(chain))
	}
	var c [4]byte
	copy(c[:], chain)
	if err := m.WriteRAM(APICData+apicActions+uint64(v), []byte{byte(a)}); err != nil {
		return err
	}
	return m.WriteRAM(APICData+apicChain+4*uint64(v), c[:])
}

// APICMSRCase is one MSR access APICReservedBits expects to raise #GP.
type APICMSRCase struct {
	Name  string
	MSR   uint32
	Value uint64 // for a write
	Write bool
}

// SetAPICMSRCases writes the table of APICReservedBits and its length
// (parameter 0).
func SetAPICMSRCases(m *hv.GuestMemory, cases []APICMSRCase) error {
	if len(cases) > APICTableCap {
		return fmt.Errorf("testguests: %d msr cases, room for %d", len(cases), APICTableCap)
	}
	t := make([]uint64, 0, 3*len(cases))
	for _, c := range cases {
		w := uint64(0)
		if c.Write {
			w = 1
		}
		t = append(t, uint64(c.MSR), c.Value, w)
	}
	if err := writeU64s(m, APICData+apicTable, t); err != nil {
		return err
	}
	return SetAPICParams(m, uint64(len(cases)))
}

// ReadAPICBench reads the n iterations APICBench stored: for each, the
// trigger's TSC, the handler's entry and the return to the interrupted
// code.
func ReadAPICBench(m *hv.GuestMemory, n int) ([][3]uint64, error) {
	b := make([]byte, 24*n)
	if err := m.ReadRAM(APICData+apicBenchArea, b); err != nil {
		return nil, fmt.Errorf("testguests: apic bench results: %w", err)
	}
	r := make([][3]uint64, n)
	for i := range r {
		for j := range r[i] {
			r[i][j] = binary.LittleEndian.Uint64(b[24*i+8*j:])
		}
	}
	return r, nil
}

// apicCode returns an APIC blob's machine code, end marker included.
func apicCode(b APICProgram) ([]byte, error) {
	if b < 0 || b >= numAPICBlobs {
		return nil, fmt.Errorf("testguests: no apic blob %d", b)
	}
	var addrs [numAPICBlobs]uintptr
	apicBlobAddrs(&addrs)
	var buf [apicBlobLimit]byte
	n := apicText(&buf, addrs[b])
	if n == 0 || !bytes.HasSuffix(buf[:n], endMarker) {
		return nil, fmt.Errorf("testguests: apic blob %d has no end marker in %d bytes", b, apicBlobLimit)
	}
	return append([]byte(nil), buf[:n]...), nil
}
