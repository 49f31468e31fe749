package testguests

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"gohv/hv"
)

// The Hyper-V test guests (hyperv_amd64.s) do what a Hyper-V guest does —
// Linux 6.1's order is the model — and check the hypervisor's answers from
// the inside: the CPUID leaves, GUEST_OS_ID and the hypercall page, calls
// through it, the reference time and its TSC page, the SynIC's pages and
// SINTs, messages to and from the root's ports, event flags, synthetic
// timers, the crash MSRs, and hostile variants of each. They run in the
// APIC guests' environment (LoadAPIC): the shared handler logs every
// interrupt in the data page, with the guest's TSC, and EOIs it; the
// parameters go in and the results come out through the same page
// (SetAPICParams, ReadAPICState). hyperv_amd64.s documents each guest's
// steps, parameters and results.

// Declarations for vet: guest code, never called in the host.
func hvDiscovery()
func hvRefTime()
func hvSynICMessage()
func hvSynICEvent()
func hvTimers()
func hvCrash()
func hvCallTable()
func hvMSRTable()
func hvStorm()
func hvBench()

func hypervBlobAddrs(p *[numHyperVBlobs]uintptr)

// HyperVProgram names a Hyper-V test guest.
type HyperVProgram int

const (
	HVDiscovery    HyperVProgram = iota // CPUID leaves, GUEST_OS_ID, the hypercall page, VP index, frequencies
	HVRefTime                           // TIME_REF_COUNT against the TSC, the reference TSC page, read-only MSRs
	HVSynICMessage                      // SynIC set-up, posts to the root's echo port, a flood, bad inputs
	HVSynICEvent                        // signals to the root's event port and its flags back, bad inputs
	HVTimers                            // synthetic timer 0: message and direct mode, one-shot, periodic, AutoEnable, Lazy
	HVCrash                             // the crash MSRs
	HVCallTable                         // a table of hypercalls and the results they must get
	HVMSRTable                          // a table of MSR accesses and their outcomes, then what must still work
	HVStorm                             // floods, an EOM storm, period-1 timers
	HVBench                             // the Hyper-V paths' round trips
	numHyperVBlobs
)

// Guest-physical pages the Hyper-V guests place (in a 4 MiB partition, above
// the data page; the same numbers are #defines in hyperv_amd64.s, kept equal
// by TestHyperVLayoutMatchesAssembly).
const (
	HVHypercallPage = 0x38_0000 // HV_X64_MSR_HYPERCALL's page
	HVSIMPage       = 0x38_1000 // SIMP
	HVSIEFPage      = 0x38_2000 // SIEFP
	HVRefTSCPage    = 0x38_3000 // HV_X64_MSR_REFERENCE_TSC's page
	HVRefTSCPage2   = 0x38_4000 // where HVRefTime moves it
	HVInputPage     = 0x38_5000 // hypercall input; the page after it is RAM too
	HVAssistPage    = 0x38_7000 // HV_X64_MSR_VP_ASSIST_PAGE's page
	HVCrashMessage  = 0x38_8000 // free for a crash message
	// HVOutsideRAM is a guest-physical address no 4 MiB partition has.
	HVOutsideRAM = 0x1000_0000
	// HVGuestOSID is what the guests write to HV_X64_MSR_GUEST_OS_ID:
	// Linux 6.1.0's value (open source, Linux, version 6.1.0).
	HVGuestOSID = 0x8100_0006_0100_0000

	HVSINT2Vector  = 0xf3 // SINT2, VMBus's SINT, on Linux's HYPERVISOR_CALLBACK_VECTOR
	HVSINT3Vector  = 0x53 // SINT3, the timer messages' SINT
	HVSTimerVector = 0xed // the direct-mode timer's vector (Linux's HYPERV_STIMER0_VECTOR)
	HVStormVector  = 0x55 // the period-1 direct timer's vector
)

// The CPUID 0x40000003 bits hvDiscovery requires and refuses (see the
// assembly); TestHyperVLayoutMatchesAssembly pins them to hv/tlfs.
const (
	hvNeedEAX = 0xa6e
	hvNeedEBX = 0x30
	hvNeedEDX = 0x8_0500
	hvDenyEBX = 0x40_1002
)

// hvTableEntry is the size of one case in the tables of HVCallTable and
// HVMSRTable.
const hvTableEntry = 32

// HVTableCap is how many cases a table holds (the data page's table area).
const HVTableCap = (apicBenchArea - apicTable) / hvTableEntry

// HVTableResults is how many cases' results the data page keeps.
const HVTableResults = 250

// LoadHyperV sets p up as LoadAPIC does (the long-mode environment, the
// shared interrupt handler, the data page, the clock rates in RSI and RDI)
// with the Hyper-V guest prog at CodeBase.
func LoadHyperV(p *hv.Partition, prog HyperVProgram, c APICClocks) error {
	code, err := hypervCode(prog)
	if err != nil {
		return err
	}
	// LoadAPIC's environment with a placeholder program, replaced here.
	if err := LoadAPIC(p, APICTimerStorm, c); err != nil {
		return err
	}
	if m := p.Mem.RAMSize(); m < HVCrashMessage+0x1000 {
		return fmt.Errorf("testguests: partition %s needs at least %d MiB of RAM for a hyper-v guest", p.Name, (HVCrashMessage+0x1000+(1<<20)-1)>>20)
	}
	return p.Mem.WriteRAM(CodeBase, code)
}

// StartHyperV is Start for a Hyper-V guest: a partition from cfg with prog
// loaded by LoadHyperV, setup (if any) run, then started.
func StartHyperV(h *hv.Hypervisor, cfg hv.Config, prog HyperVProgram, c APICClocks, setup func(p *hv.Partition) error) (*hv.Partition, error) {
	return StartWith(h, cfg, func(p *hv.Partition) error { return LoadHyperV(p, prog, c) }, setup)
}

// HVCallCase is one hypercall of HVCallTable: the input registers and the
// RAX it must return (the status in 15:0, reps completed in 43:32).
type HVCallCase struct {
	Name         string
	RCX, RDX, R8 uint64
	Want         uint64
}

// SetHVCallCases writes HVCallTable's table and its parameters: the number
// of cases, and whether the guest sets its SynIC up first.
func SetHVCallCases(m *hv.GuestMemory, cases []HVCallCase, synic bool) error {
	t := make([]uint64, 0, 4*len(cases))
	for _, c := range cases {
		t = append(t, c.RCX, c.RDX, c.R8, c.Want)
	}
	if err := setHVTable(m, t, len(cases)); err != nil {
		return err
	}
	s := uint64(0)
	if synic {
		s = 1
	}
	return SetAPICParams(m, uint64(len(cases)), s)
}

// HVMSROp is what HVMSRTable does with one case.
type HVMSROp uint64

const (
	MSRReadGP      HVMSROp = iota // RDMSR must raise #GP
	MSRWriteGP                    // WRMSR of Value must raise #GP
	MSRWrite                      // WRMSR of Value must not fault
	MSRRead                       // RDMSR must read Want
	MSRWriteReadOK                // WRMSR of Value must not fault, then RDMSR must read Want
)

// HVMSRCase is one MSR access of HVMSRTable.
type HVMSRCase struct {
	Name  string
	MSR   uint32
	Value uint64
	Op    HVMSROp
	Want  uint64
}

// HVMSRAfter is what HVMSRTable checks once its table is done: the I/O
// APIC's version register still reads IOAPICVersion; a post of the input
// page the root wrote to PostConn (none when 0) returns PostWant; a fast
// signal of flag 1 to SignalConn (none when 0) returns SignalWant; a null
// hypercall still succeeds.
type HVMSRAfter struct {
	IOAPICVersion          uint32
	PostConn, PostWant     uint64
	SignalConn, SignalWant uint64
}

// SetHVMSRCases writes HVMSRTable's table and its parameters.
func SetHVMSRCases(m *hv.GuestMemory, cases []HVMSRCase, after HVMSRAfter) error {
	t := make([]uint64, 0, 4*len(cases))
	for _, c := range cases {
		t = append(t, uint64(c.MSR), c.Value, uint64(c.Op), c.Want)
	}
	if err := setHVTable(m, t, len(cases)); err != nil {
		return err
	}
	return SetAPICParams(m, uint64(len(cases)), uint64(after.IOAPICVersion), after.PostConn, after.PostWant, after.SignalConn, after.SignalWant)
}

func setHVTable(m *hv.GuestMemory, t []uint64, n int) error {
	if n > HVTableResults || n > HVTableCap {
		return fmt.Errorf("testguests: %d table cases, room for %d", n, min(HVTableResults, HVTableCap))
	}
	return writeU64s(m, APICData+apicTable, t)
}

// TableCase names the case a table guest's exit status points at: status
// 100+i is case i. ok is false for any other status.
func TableCase(status uint32, n int) (i int, ok bool) {
	if status < 100 || status-100 >= uint32(n) {
		return 0, false
	}
	return int(status - 100), true
}

// ReadHVBench reads n records of width u64s each that HVBench stored.
func ReadHVBench(m *hv.GuestMemory, n, width int) ([][]uint64, error) {
	b := make([]byte, 8*width*n)
	if err := m.ReadRAM(APICData+apicBenchArea, b); err != nil {
		return nil, fmt.Errorf("testguests: hyper-v bench results: %w", err)
	}
	return ParseHVBench(b, n, width), nil
}

// ParseHVBench splits the bench area into n records of width u64s.
func ParseHVBench(b []byte, n, width int) [][]uint64 {
	n = min(n, len(b)/(8*max(width, 1)))
	r := make([][]uint64, n)
	for i := range r {
		r[i] = make([]uint64, width)
		for j := range r[i] {
			r[i][j] = binary.LittleEndian.Uint64(b[8*(width*i+j):])
		}
	}
	return r
}

// HVBenchCap is how many iterations of the widest kind (16 bytes) the
// bench area holds below APICRAMPage.
const HVBenchCap = (APICRAMPage - APICData - apicBenchArea) / 16

// hypervCode returns a Hyper-V blob's machine code, end marker included.
func hypervCode(b HyperVProgram) ([]byte, error) {
	if b < 0 || b >= numHyperVBlobs {
		return nil, fmt.Errorf("testguests: no hyper-v blob %d", b)
	}
	var addrs [numHyperVBlobs]uintptr
	hypervBlobAddrs(&addrs)
	var buf [apicBlobLimit]byte
	n := apicText(&buf, addrs[b])
	if n == 0 || !bytes.HasSuffix(buf[:n], endMarker) {
		return nil, fmt.Errorf("testguests: hyper-v blob %d has no end marker in %d bytes", b, apicBlobLimit)
	}
	return append([]byte(nil), buf[:n]...), nil
}
