// Package vmx is gohv's Intel VT-x backend: detection and VMXON, the VMCS
// (field encodings as named constants from the Intel SDM Vol. 3 Appendix
// B), controls computed from the capability MSRs, the VMLAUNCH/VMRESUME
// loop, exit decoding, EPT through package ept, VPID.
package vmx

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"gohv/hv"
	"gohv/x86"
)

// MSRs (Intel SDM Vol. 4; Vol. 3 Appendix A).
const (
	msrFeatureControl = 0x3a
	msrVMXBasic       = 0x480
	msrPinCtls        = 0x481
	msrProcCtls       = 0x482
	msrExitCtls       = 0x483
	msrEntryCtls      = 0x484
	msrMisc           = 0x485
	msrCR0Fixed0      = 0x486
	msrCR0Fixed1      = 0x487
	msrCR4Fixed0      = 0x488
	msrCR4Fixed1      = 0x489
	msrProcCtls2      = 0x48b
	msrEPTVPIDCap     = 0x48c
	msrTruePinCtls    = 0x48d
	msrTrueProcCtls   = 0x48e
	msrTrueExitCtls   = 0x48f
	msrTrueEntryCtls  = 0x490

	featureLock       = 1 << 0
	featureVMXOutSMX  = 1 << 2
	cr4VMXE           = 1 << 13
	basicTrueControls = 1 << 55
)

// Control bits (SDM Vol. 3, 24.6-24.8).
const (
	pinExtIntExiting = 1 << 0
	pinNMIExiting    = 1 << 3
	pinPreemptTimer  = 1 << 6

	procIntWindowExiting = 1 << 2
	procHLTExiting       = 1 << 7
	procINVLPGExiting    = 1 << 9
	procMWAITExiting     = 1 << 10
	procRDPMCExiting     = 1 << 11
	procCR3LoadExiting   = 1 << 15
	procCR3StoreExiting  = 1 << 16
	procUseIOBitmaps     = 1 << 25
	procUseMSRBitmaps    = 1 << 28
	procMONITORExiting   = 1 << 29
	procSecondary        = 1 << 31

	proc2EPT        = 1 << 1
	proc2VPID       = 1 << 5
	proc2Unrestrict = 1 << 7

	exitHostAddrSpace = 1 << 9
	exitSavePAT       = 1 << 18
	exitLoadPAT       = 1 << 19
	exitSaveEFER      = 1 << 20
	exitLoadEFER      = 1 << 21

	entryIA32e    = 1 << 9
	entryLoadPAT  = 1 << 14
	entryLoadEFER = 1 << 15
)

// EPT/VPID capabilities (IA32_VMX_EPT_VPID_CAP, SDM Vol. 3 A.10).
const (
	capWalk4         = 1 << 6
	capUC            = 1 << 8
	capWB            = 1 << 14
	capINVEPT        = 1 << 20
	capINVEPTSingle  = 1 << 25
	capINVEPTAll     = 1 << 26
	capINVVPID       = 1 << 32
	capINVVPIDSingle = 1 << 41
	capINVVPIDAll    = 1 << 42
)

// Controls is what the backend asked for and what it got.
type Controls struct {
	Pin, Proc, Proc2, Exit, Entry uint32
	Report                        []string // one line per control word: asked, allowed, used
}

// Backend is VMX enabled on this CPU (VMXON done).
type Backend struct {
	mem                  hv.HostMemory
	ctl                  Controls
	revision             uint32
	cr0Fixed0, cr0Fixed1 uint64
	cr4Fixed0, cr4Fixed1 uint64
	eptCap               uint64
	preemptTicks         uint64 // VMX-preemption timer value per entry, 0 when not in use
	vmxon                uint64
	ioBitmaps            uint64 // A and B, 2 contiguous pages
	msrBitmap            uint64
	host                 hostState

	mu       sync.Mutex
	nextVPID uint16
	freeVPID []uint16
}

// ErrNoVMX is returned on a CPU without VT-x.
var ErrNoVMX = errors.New("vmx: the CPU has no Intel VT-x (CPUID.1:ECX.VMX clear)")

// adjust fits wanted control bits to a capability MSR: the low half holds
// the bits that must be 1, the high half those that may be 1.
func adjust(name string, msr uint32, want, optional uint32, rep *[]string) (uint32, error) {
	c := x86.RDMSR(msr)
	must, may := uint32(c), uint32(c>>32)
	v := (want|optional)&may | must
	*rep = append(*rep, fmt.Sprintf("%s: asked %#x (+%#x optional), CPU requires %#x and allows %#x, using %#x", name, want, optional, must, may, v))
	if missing := want &^ may; missing != 0 {
		return 0, fmt.Errorf("vmx: %s: the CPU cannot set required bits %#x (allowed %#x)", name, missing, may)
	}
	return v, nil
}

// Enable checks for VT-x, sets IA32_FEATURE_CONTROL if the firmware left it
// unlocked, sets CR4.VMXE and the CR0/CR4 fixed bits, executes VMXON and
// builds the I/O and MSR bitmaps shared by every VP.
func Enable(mem hv.HostMemory, msr hv.MSRPolicy) (*Backend, error) {
	if _, _, ecx, _ := x86.CPUID(1, 0); ecx&(1<<5) == 0 {
		return nil, ErrNoVMX
	}
	fc := x86.RDMSR(msrFeatureControl)
	if fc&featureLock == 0 {
		x86.WRMSR(msrFeatureControl, fc|featureLock|featureVMXOutSMX)
	} else if fc&featureVMXOutSMX == 0 {
		return nil, errors.New("vmx: VT-x is disabled and locked by the firmware (IA32_FEATURE_CONTROL lock set, VMX outside SMX clear); enable Intel Virtualization Technology in the BIOS setup")
	}
	b := &Backend{mem: mem, nextVPID: 1}
	basic := x86.RDMSR(msrVMXBasic)
	b.revision = uint32(basic) & 0x7fff_ffff
	if basic>>53&0xf != 6 {
		return nil, fmt.Errorf("vmx: VMCS memory type %d is not write-back", basic>>53&0xf)
	}
	pin, proc, exit, entry := uint32(msrPinCtls), uint32(msrProcCtls), uint32(msrExitCtls), uint32(msrEntryCtls)
	if basic&basicTrueControls != 0 {
		pin, proc, exit, entry = msrTruePinCtls, msrTrueProcCtls, msrTrueExitCtls, msrTrueEntryCtls
	}
	var err error
	rep := &b.ctl.Report
	if b.ctl.Pin, err = adjust("pin-based", pin, pinExtIntExiting|pinNMIExiting, pinPreemptTimer, rep); err != nil {
		return nil, err
	}
	if b.ctl.Pin&pinPreemptTimer != 0 {
		// A VM exit at least every ~2 million TSC cycles whatever the guest
		// does with IF: the root keeps the CPU even where an emulator holds
		// host interrupts back from a guest that runs with IF=0 (Bochs).
		b.preemptTicks = 2_000_000 >> (x86.RDMSR(msrMisc) & 0x1f)
	}
	if b.ctl.Proc, err = adjust("primary processor-based", proc,
		procHLTExiting|procMWAITExiting|procRDPMCExiting|procUseIOBitmaps|procUseMSRBitmaps|procMONITORExiting|procSecondary, 0, rep); err != nil {
		return nil, err
	}
	if uint32(x86.RDMSR(proc)>>32)&procIntWindowExiting == 0 {
		return nil, errors.New("vmx: the CPU has no interrupt-window exiting")
	}
	if b.ctl.Proc2, err = adjust("secondary processor-based", msrProcCtls2, proc2EPT|proc2Unrestrict, proc2VPID, rep); err != nil {
		return nil, fmt.Errorf("%w (gohv needs EPT and unrestricted guest)", err)
	}
	if b.ctl.Exit, err = adjust("VM-exit", exit, exitHostAddrSpace|exitSavePAT|exitLoadPAT|exitSaveEFER|exitLoadEFER, 0, rep); err != nil {
		return nil, err
	}
	if b.ctl.Entry, err = adjust("VM-entry", entry, entryLoadPAT|entryLoadEFER, 0, rep); err != nil {
		return nil, err
	}
	if uint32(x86.RDMSR(entry)>>32)&entryIA32e == 0 {
		return nil, errors.New("vmx: the CPU cannot enter IA-32e mode guests")
	}
	b.ctl.Entry &^= entryIA32e // set per entry from the guest's EFER.LMA
	b.eptCap = x86.RDMSR(msrEPTVPIDCap)
	if b.eptCap&capWalk4 == 0 || b.eptCap&(capWB|capUC) == 0 || b.eptCap&capINVEPT == 0 {
		return nil, fmt.Errorf("vmx: EPT capabilities %#x lack a 4-level walk, a usable memory type or INVEPT", b.eptCap)
	}
	b.cr0Fixed0, b.cr0Fixed1 = x86.RDMSR(msrCR0Fixed0), x86.RDMSR(msrCR0Fixed1)
	b.cr4Fixed0, b.cr4Fixed1 = x86.RDMSR(msrCR4Fixed0), x86.RDMSR(msrCR4Fixed1)

	if b.vmxon, err = mem.AllocPage(); err != nil {
		return nil, fmt.Errorf("vmx: VMXON region: %w", err)
	}
	*(*uint32)(unsafe.Pointer(mem.Page(b.vmxon))) = b.revision
	if b.ioBitmaps, err = hv.AllocContiguous(mem, 2); err != nil {
		return nil, fmt.Errorf("vmx: I/O bitmaps: %w", err)
	}
	if b.msrBitmap, err = mem.AllocPage(); err != nil {
		return nil, fmt.Errorf("vmx: MSR bitmap: %w", err)
	}
	for i := 0; i < 2; i++ {
		p := mem.Page(b.ioBitmaps + uint64(i)*hv.PageSize)
		for j := range p {
			p[j] = 0xff // every port exits
		}
	}
	fillMSRBitmap(mem.Page(b.msrBitmap), msr)

	f := x86.CLI()
	cr0 := x86.ReadCR0()
	x86.WriteCR0(cr0 | b.cr0Fixed0&uint64(uint32(b.cr0Fixed1)))
	x86.WriteCR4(x86.ReadCR4() | cr4VMXE | b.cr4Fixed0)
	pa := b.vmxon
	st := vmxon(&pa)
	if st == 0 {
		b.host = readHostState()
	}
	x86.RestoreFlags(f)
	if st != 0 {
		return nil, fmt.Errorf("vmx: VMXON failed (status %d: %s)", st, [...]string{"", "VMfailInvalid", "VMfailValid"}[st])
	}
	return b, nil
}

// fillMSRBitmap sets the exit bit of every MSR but the policy's
// pass-through ones (SDM Vol. 3, 24.6.9: read-low, read-high, write-low,
// write-high quarters of one page).
func fillMSRBitmap(p *[4096]byte, msr hv.MSRPolicy) {
	for i := range p {
		p[i] = 0xff
	}
	if msr == nil {
		return
	}
	for _, base := range []uint32{0, 0xc000_0000} {
		for n := uint32(0); n < 0x2000; n++ {
			off := n / 8
			if base != 0 {
				off += 0x400
			}
			if msr.PassThroughMSR(base+n, false) {
				p[off] &^= 1 << (n % 8)
			}
			if msr.PassThroughMSR(base+n, true) {
				p[off+0x800] &^= 1 << (n % 8)
			}
		}
	}
}

func (b *Backend) Name() string                  { return "Intel VT-x" }
func (b *Backend) NestedFormat() hv.NestedFormat { return hv.FormatEPT }

// ControlReport lists the control words asked for and granted.
func (b *Backend) ControlReport() string { return strings.Join(b.ctl.Report, "\n") }

// Features summarises the capabilities in use.
func (b *Backend) Features() string {
	return fmt.Sprintf("VMCS revision %#x, EPT (WB=%v), VPID=%v, unrestricted guest, TRUE controls=%v",
		b.revision, b.eptCap&capWB != 0, b.ctl.Proc2&proc2VPID != 0, x86.RDMSR(msrVMXBasic)&basicTrueControls != 0)
}

func (b *Backend) allocVPID() uint16 {
	if b.ctl.Proc2&proc2VPID == 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.freeVPID); n > 0 {
		v := b.freeVPID[n-1]
		b.freeVPID = b.freeVPID[:n-1]
		return v
	}
	if b.nextVPID == 0xffff {
		return 0 // VPID 0 is the host's: fall back to flushing on every switch
	}
	b.nextVPID++
	return b.nextVPID - 1
}

func (b *Backend) releaseVPID(v uint16) {
	if v == 0 {
		return
	}
	b.mu.Lock()
	b.freeVPID = append(b.freeVPID, v)
	b.mu.Unlock()
}

// hostState is what every VMCS's host-state area holds (the CPU's own
// state, the same for every VP on this CPU).
type hostState struct {
	cr0, cr3, cr4                        uint64
	cs, ss, ds, es, fs, gs, tr           uint16
	gdtBase, idtBase, trBase             uint64
	efer, pat                            uint64
	sysenterCS, sysenterESP, sysenterEIP uint64
	gsBase                               uint64
}

func readHostState() hostState {
	var h hostState
	h.cr0, h.cr3, h.cr4 = x86.ReadCR0(), x86.ReadCR3(), x86.ReadCR4()
	h.cs, h.ss, h.ds, h.es, h.fs, h.gs, h.tr = x86.Selectors()
	var gdt, idt [10]byte
	x86.DescTables(&gdt, &idt)
	h.gdtBase = *(*uint64)(unsafe.Pointer(&gdt[2]))
	h.idtBase = *(*uint64)(unsafe.Pointer(&idt[2]))
	// TR base from its 16-byte system descriptor in the GDT.
	d := (*[2]uint64)(x86.Ptr(uintptr(h.gdtBase + uint64(h.tr&^7))))
	h.trBase = d[0]>>16&0xff_ffff | (d[0]>>56&0xff)<<24 | (d[1]&0xffff_ffff)<<32
	h.efer, h.pat = x86.RDMSR(0xc000_0080), x86.RDMSR(0x277)
	h.sysenterCS, h.sysenterESP, h.sysenterEIP = x86.RDMSR(0x174), x86.RDMSR(0x175), x86.RDMSR(0x176)
	h.gsBase = x86.RDMSR(0xc000_0101)
	return h
}
