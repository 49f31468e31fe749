package vmx

import (
	"errors"
	"fmt"

	"gohv/x86"
)

// IA32_VMX_BASIC fields (SDM Vol. 3D A.1).
const (
	basicRevisionMask   = 0x7fff_ffff
	basicMemTypeShift   = 50
	memTypeWB           = 6
	basicTrueControls   = 1 << 55
	miscPreemptRateMask = 0x1f // IA32_VMX_MISC 4:0: TSC bits per preemption-timer tick
)

// Control bits (SDM Vol. 3C 25.6-25.8).
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
	procCR8LoadExiting   = 1 << 19
	procCR8StoreExiting  = 1 << 20
	procUseTPRShadow     = 1 << 21
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

// EPT/VPID capabilities (IA32_VMX_EPT_VPID_CAP, SDM Vol. 3D A.10).
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

// preemptCycles is how many TSC cycles a guest may run before the
// VMX-preemption timer forces an exit, whatever it does with IF: the root
// keeps the CPU even where an emulator holds host interrupts back from a
// guest that runs with IF=0 (Bochs).
const preemptCycles = 2_000_000

// Controls is what the backend asked for and what it got.
type Controls struct {
	Pin, Proc, Proc2, Exit, Entry uint32
	Report                        []string // one line per control word: asked, allowed, used
}

// adjust fits wanted control bits to a capability MSR value: the low half
// holds the bits that must be 1, the high half those that may be 1.
func adjust(name string, capability uint64, want, optional uint32, rep *[]string) (uint32, error) {
	must, may := uint32(capability), uint32(capability>>32)
	v := (want|optional)&may | must
	*rep = append(*rep, fmt.Sprintf("%s: asked %#x (+%#x optional), CPU requires %#x and allows %#x, using %#x", name, want, optional, must, may, v))
	if missing := want &^ may; missing != 0 {
		return 0, fmt.Errorf("vmx: %s: the CPU cannot set required bits %#x (allowed %#x)", name, missing, may)
	}
	return v, nil
}

// chooseControls computes the control words from the capability MSRs (the
// TRUE ones where the CPU has them) and the EPT capabilities.
func (b *Backend) chooseControls() error {
	pin, proc, exit, entry := uint32(x86.MsrVMXPinbased), uint32(x86.MsrVMXProcbased), uint32(x86.MsrVMXExit), uint32(x86.MsrVMXEntry)
	if b.basic&basicTrueControls != 0 {
		pin, proc, exit, entry = x86.MsrVMXTruePinbased, x86.MsrVMXTrueProcbased, x86.MsrVMXTrueExit, x86.MsrVMXTrueEntry
	}
	var err error
	rep := &b.ctl.Report
	if b.ctl.Pin, err = adjust("pin-based", x86.RDMSR(pin), pinExtIntExiting|pinNMIExiting, pinPreemptTimer, rep); err != nil {
		return err
	}
	if b.ctl.Pin&pinPreemptTimer != 0 {
		b.preemptTicks = preemptCycles >> (x86.RDMSR(x86.MsrVMXMisc) & miscPreemptRateMask)
	}
	procCap := x86.RDMSR(proc)
	// CR8 must not reach the host's TPR: with a TPR shadow the guest's
	// CR8 lives in the virtual-APIC page (no exits, a TPR-threshold exit
	// when it drops below a held-back interrupt); without one, CR8 loads
	// and stores exit.
	procWant := uint32(procHLTExiting | procMWAITExiting | procRDPMCExiting |
		procUseIOBitmaps | procUseMSRBitmaps | procMONITORExiting | procSecondary)
	if uint32(procCap>>32)&procUseTPRShadow != 0 && uint32(procCap)&(procCR8LoadExiting|procCR8StoreExiting) == 0 {
		procWant |= procUseTPRShadow
	} else {
		procWant |= procCR8LoadExiting | procCR8StoreExiting
	}
	if b.ctl.Proc, err = adjust("primary processor-based", procCap, procWant, 0, rep); err != nil {
		return err
	}
	if uint32(procCap>>32)&procIntWindowExiting == 0 {
		return errors.New("vmx: the CPU has no interrupt-window exiting")
	}
	if b.ctl.Proc2, err = adjust("secondary processor-based", x86.RDMSR(x86.MsrVMXProcbased2), proc2EPT|proc2Unrestrict, proc2VPID, rep); err != nil {
		return fmt.Errorf("%w (gohv needs EPT and unrestricted guest)", err)
	}
	if b.ctl.Exit, err = adjust("VM-exit", x86.RDMSR(exit), exitHostAddrSpace|exitSavePAT|exitLoadPAT|exitSaveEFER|exitLoadEFER, 0, rep); err != nil {
		return err
	}
	entryCap := x86.RDMSR(entry)
	if b.ctl.Entry, err = adjust("VM-entry", entryCap, entryLoadPAT|entryLoadEFER, 0, rep); err != nil {
		return err
	}
	if uint32(entryCap>>32)&entryIA32e == 0 {
		return errors.New("vmx: the CPU cannot enter IA-32e mode guests")
	}
	b.ctl.Entry &^= entryIA32e // set per entry from the guest's EFER.LMA
	b.eptCap = x86.RDMSR(x86.MsrVMXEPTVPIDCap)
	if b.eptCap&capWalk4 == 0 || b.eptCap&(capWB|capUC) == 0 || b.eptCap&capINVEPT == 0 {
		return fmt.Errorf("vmx: EPT capabilities %#x lack a 4-level walk, a usable memory type or INVEPT", b.eptCap)
	}
	return nil
}
