package hv

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"gohv/hv/tlfs"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// The Hyper-V hypervisor interface a partition sees (TLFS 2-3, 12): the
// CPUID leaves, the partition-wide synthetic MSRs (guest OS ID, hypercall
// page, reference time and its TSC page, frequencies, crash registers) and
// the per-VP ones that are not the SynIC's (VP index, VP runtime, VP
// assist page).

// What gohv implements of the TLFS, and so advertises: nothing more.
const (
	hvPrivilegesLow = tlfs.AccessVpRunTimeReg | tlfs.AccessPartitionReferenceCounter | tlfs.AccessSynicRegs |
		tlfs.AccessSyntheticTimerRegs | tlfs.AccessHypercallMsrs | tlfs.AccessVpIndex | tlfs.AccessPartitionReferenceTsc |
		tlfs.AccessFrequencyRegs | tlfs.AccessGuestIdleReg
	hvPrivilegesHigh = tlfs.PostMessages | tlfs.SignalEvents
	hvFeatures       = tlfs.FeatureFrequencyRegs | tlfs.FeatureGuestCrashRegs | tlfs.FeatureDirectSyntheticTimers
	// Guests EOI SINT vectors themselves; they flush other VPs' TLBs
	// with HvCallFlushVirtualAddressSpace/List, send IPIs with
	// HvCallSendSyntheticClusterIpi, and may use the Ex forms with an
	// HV_VP_SET (partitionCalls serves all six). Those three were once
	// held back: Linux guests on VT-x segfaulted with them on. The cause
	// was the VMX backend's, not theirs: it did not keep the guest's CR2
	// across exits, so a page-fault handler could read an address another
	// guest or a host page fault had written (hvtest's
	// cr2-across-partitions). The recommendations changed the guests'
	// timing, not their correctness: with the backend fixed they pass.
	hvRecommendations = tlfs.RecommendDeprecateAutoEoi | tlfs.RecommendHypercallRemoteFlush |
		tlfs.RecommendSyntheticClusterIpi | tlfs.RecommendExProcessorMasks
	hvMaxLeaf = tlfs.CPUIDHardwareFeatures
	// gohv's version as CPUID 0x40000002 reports it: build, major.minor.
	hvBuild, hvMajor, hvMinor = 1, 0, 1
	// Hardware features the hypervisor uses (CPUID 0x40000006.EAX): MSR
	// bitmaps (bit 1) and second-level address translation (bit 3).
	hvHardwareFeatures = 1<<1 | 1<<3
)

// hypervLeaves adds CPUID 0x40000000-0x40000006 to the model.
func (m *CPUModel) hypervLeaves() {
	sig := []byte(tlfs.VendorSignature)
	le := func(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 }
	m.add(tlfs.CPUIDVendorAndMaxFunction, 0, hvMaxLeaf, le(sig[0:4]), le(sig[4:8]), le(sig[8:12]))
	m.add(tlfs.CPUIDInterface, 0, tlfs.InterfaceSignature, 0, 0, 0)
	m.add(tlfs.CPUIDVersion, 0, hvBuild, hvMajor<<16|hvMinor, 0, 0)
	m.add(tlfs.CPUIDFeatures, 0, hvPrivilegesLow, hvPrivilegesHigh, 0, hvFeatures)
	m.add(tlfs.CPUIDEnlightenmentInfo, 0, hvRecommendations, tlfs.NeverNotifyLongSpinWait, 0, 0)
	// Up to MaxVPs VPs per partition, over up to MaxHostCPUs host CPUs
	// (logical processors).
	m.add(tlfs.CPUIDImplementationLimits, 0, MaxVPs, vcpu.MaxHostCPUs, 0, 0)
	m.add(tlfs.CPUIDHardwareFeatures, 0, hvHardwareFeatures, 0, 0, 0)
}

// ErrGuestCrash: the guest reported a crash through HV_X64_MSR_CRASH_CTL.
// The error carries the five crash parameters.
var ErrGuestCrash = errors.New("the guest reported a crash")

// GuestCrashError is a crash the guest reported, with HV_X64_MSR_CRASH_P0-P4
// (Linux: the error code, the guest OS ID, RIP, RAX or the message GPA,
// RSP or the message length) and the message when it gave one.
type GuestCrashError struct {
	VP      int
	P       [5]uint64
	Message string
}

func (e *GuestCrashError) Error() string {
	s := fmt.Sprintf("vp %d: %v: P0 %#x P1 %#x P2 %#x P3 %#x P4 %#x", e.VP, ErrGuestCrash, e.P[0], e.P[1], e.P[2], e.P[3], e.P[4])
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *GuestCrashError) Is(target error) bool { return target == ErrGuestCrash }

// crashMessageMax bounds how much of a crash message the root reads.
const crashMessageMax = 4096

// hyperv is a partition's Hyper-V state. Guarded by mu: every VP of the
// partition may write it.
type hyperv struct {
	// guestOSID is HV_X64_MSR_GUEST_OS_ID; hypercalls raise #UD while it
	// is zero. Read lock-free on every hypercall; written under mu.
	guestOSID atomic.Uint64

	mu        sync.Mutex
	hypercall uint64 // HV_X64_MSR_HYPERCALL as the guest last wrote it (accepted bits)
	refTSC    uint64 // HV_X64_MSR_REFERENCE_TSC
	crash     [5]uint64
	// warned: the hypercall page (bit 0) and the reference TSC page
	// (bit 1) were once placed outside RAM and said so on the console. A
	// guest may write the MSRs in a loop; the root's console gets one
	// line each, not one per write.
	warned uint8

	// Reference time: TscScale and TscOffset make ((TSC*scale)>>64)+offset
	// count 100 ns from the partition's creation (TLFS 12.7). Fixed at
	// creation: the TSC rate is constant.
	scale  uint64
	offset int64
}

func (p *Partition) initHyperV() {
	host := p.hv.Host
	p.hyperv.scale = tlfs.RefTSCScale(host.TSCHz())
	p.hyperv.offset = -int64(tlfs.RefTime(host.TSC(), p.hyperv.scale, 0))
}

// ReferenceTime is the partition's reference time: 100 ns units since it
// was created, the value of HV_X64_MSR_TIME_REF_COUNT and of its reference
// TSC page. Monotonic. Safe from any goroutine.
func (p *Partition) ReferenceTime() uint64 {
	return tlfs.RefTime(p.hv.Host.TSC(), p.hyperv.scale, p.hyperv.offset)
}

// hypervMSR reports whether msr is a synthetic MSR this file serves.
func hypervMSR(msr uint32) bool {
	switch msr {
	case tlfs.MsrGuestOSID, tlfs.MsrHypercall, tlfs.MsrVPIndex, tlfs.MsrVPRuntime, tlfs.MsrTimeRefCount,
		tlfs.MsrReferenceTSC, tlfs.MsrTSCFrequency, tlfs.MsrAPICFrequency, tlfs.MsrVPAssistPage, tlfs.MsrCrashCtl,
		tlfs.MsrGuestIdle:
		return true
	}
	return msr >= tlfs.MsrCrashP0 && msr <= tlfs.MsrCrashP4
}

// readHyperVMSR serves RDMSR of a synthetic MSR; errGP raises #GP. VP
// thread; must not allocate.
func (vp *VP) readHyperVMSR(msr uint32) (uint64, error) {
	h := &vp.p.hyperv
	switch msr {
	case tlfs.MsrVPIndex:
		return uint64(vp.index), nil
	case tlfs.MsrVPRuntime:
		return vp.runtime(), nil
	case tlfs.MsrTimeRefCount:
		return vp.p.ReferenceTime(), nil
	case tlfs.MsrTSCFrequency:
		return vp.p.hv.Host.TSCHz(), nil
	case tlfs.MsrAPICFrequency:
		return LAPICTimerHz, nil
	case tlfs.MsrVPAssistPage:
		return vp.vpAssist, nil
	case tlfs.MsrCrashCtl:
		return tlfs.CrashNotify | tlfs.CrashMessage, nil // what the partition may report
	case tlfs.MsrGuestIdle:
		return 0, nil // the read then idles the VP (guestIdle)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case msr == tlfs.MsrGuestOSID:
		return h.guestOSID.Load(), nil
	case msr == tlfs.MsrHypercall:
		return h.hypercall, nil
	case msr == tlfs.MsrReferenceTSC:
		return h.refTSC, nil
	case msr >= tlfs.MsrCrashP0 && msr <= tlfs.MsrCrashP4:
		return h.crash[msr-tlfs.MsrCrashP0], nil
	}
	return 0, errGP
}

// Bits of the overlay MSRs a guest may set: enable, (for HYPERCALL) lock,
// and the GPFN below MAXPHYADDR.
func (vp *VP) overlayWritable(lockBit uint64) uint64 {
	return tlfs.OverlayEnable | lockBit | (uint64(1)<<vp.p.hv.Model.PhysAddrBits()-1)&^(x86.PageSize-1)
}

// writeHyperVMSR serves WRMSR of a synthetic MSR; errGP raises #GP. VP
// thread.
func (vp *VP) writeHyperVMSR(msr uint32, v uint64) error {
	p, h := vp.p, &vp.p.hyperv
	switch msr {
	case tlfs.MsrVPIndex, tlfs.MsrVPRuntime, tlfs.MsrTimeRefCount, tlfs.MsrTSCFrequency, tlfs.MsrAPICFrequency, tlfs.MsrGuestIdle:
		return errGP // read-only
	case tlfs.MsrVPAssistPage:
		// Stored and read back; the page itself is used only with the
		// APIC-access recommendation, which gohv does not make.
		if v&^vp.overlayWritable(0) != 0 {
			return errGP
		}
		vp.vpAssist = v
		return nil
	case tlfs.MsrCrashCtl:
		if v&^(tlfs.CrashNotify|tlfs.CrashMessage) != 0 {
			return errGP
		}
		if v&tlfs.CrashNotify != 0 {
			vp.guestCrash(v&tlfs.CrashMessage != 0)
		}
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case msr == tlfs.MsrGuestOSID:
		h.guestOSID.Store(v)
		if v == 0 {
			// TLFS 3.13: the hypercall page is disabled while the guest
			// OS ID is zero.
			h.hypercall &^= tlfs.OverlayEnable
		}
	case msr == tlfs.MsrHypercall:
		if h.hypercall&tlfs.HypercallLocked != 0 {
			return nil // locked until reset: writes are ignored
		}
		if v&^vp.overlayWritable(tlfs.HypercallLocked) != 0 {
			return errGP
		}
		if h.guestOSID.Load() == 0 {
			v &^= tlfs.OverlayEnable // cannot be enabled before the guest identifies itself
		}
		h.hypercall = v
		if v&tlfs.OverlayEnable != 0 {
			p.writeHypercallPage(v &^ (x86.PageSize - 1))
		}
	case msr == tlfs.MsrReferenceTSC:
		if v&^vp.overlayWritable(0) != 0 {
			return errGP
		}
		h.refTSC = v
		if v&tlfs.OverlayEnable != 0 {
			p.writeRefTSCPage(v &^ (x86.PageSize - 1))
		}
	case msr >= tlfs.MsrCrashP0 && msr <= tlfs.MsrCrashP4:
		h.crash[msr-tlfs.MsrCrashP0] = v
	default:
		return errGP
	}
	return nil
}

// writeHypercallPage puts the hypercall code (the backend's instruction,
// then RET) at the start of the page at gpa. gohv writes it into the
// guest's RAM, as KVM does, rather than overlaying the page: the guest
// reads and executes it as the TLFS describes, and a guest that overwrites
// it breaks only its own hypercalls. A page outside RAM gets nothing (the
// guest's calls through it then fault in the guest). Called with h.mu held.
func (p *Partition) writeHypercallPage(gpa uint64) {
	var code [4]byte
	insn := p.hv.Backend.HypercallInstruction()
	copy(code[:], insn[:])
	code[3] = 0xc3 // RET
	if err := p.Mem.WriteRAM(gpa, code[:]); err != nil && p.hyperv.warnOnce(warnedHypercall) {
		p.log.Warn("hypercall page outside RAM (said once per partition)", "gpa", fmt.Sprintf("%#x", gpa))
	}
}

// writeRefTSCPage fills the reference TSC page at gpa (sequence 1, the
// partition's scale and offset), written into the guest's RAM like the
// hypercall page. Called with h.mu held.
func (p *Partition) writeRefTSCPage(gpa uint64) {
	var page [24]byte
	tlfs.PutRefTSCPage(page[:], 1, p.hyperv.scale, p.hyperv.offset)
	if err := p.Mem.WriteRAM(gpa, page[:]); err != nil && p.hyperv.warnOnce(warnedRefTSC) {
		p.log.Warn("reference TSC page outside RAM (said once per partition)", "gpa", fmt.Sprintf("%#x", gpa))
	}
}

// Bits of hyperv.warned.
const (
	warnedHypercall = 1 << iota
	warnedRefTSC
)

// warnOnce reports whether the warning bit was not yet set, and sets it.
// Called with h.mu held.
func (h *hyperv) warnOnce(bit uint8) bool {
	first := h.warned&bit == 0
	h.warned |= bit
	return first
}

// guestCrash ends the partition with the crash the guest reported: the
// parameters, and the message text when P3/P4 give one in its RAM.
func (vp *VP) guestCrash(withMessage bool) {
	h := &vp.p.hyperv
	h.mu.Lock()
	e := &GuestCrashError{VP: vp.index, P: h.crash}
	h.mu.Unlock()
	if withMessage && e.P[4] > 0 {
		msg := make([]byte, min(e.P[4], crashMessageMax))
		if vp.p.Mem.ReadRAM(e.P[3], msg) == nil {
			e.Message = string(printable(msg))
		}
	}
	vp.p.crash(vp.index, e)
}

// printable keeps a guest's text readable on the console.
func printable(b []byte) []byte {
	out := b[:0]
	for _, c := range b {
		switch {
		case c == 0:
			return out
		case c == '\n' || c >= 0x20 && c < 0x7f:
			out = append(out, c)
		default:
			out = append(out, '.')
		}
	}
	return out
}

// runtime is HV_X64_MSR_VP_RUNTIME: the VP's time since the partition
// was created, less what it spent halted, in 100 ns units.
func (vp *VP) runtime() uint64 {
	t := vp.p.ReferenceTime()
	halted := uint64(vp.haltedNanos / 100)
	if halted > t {
		return 0
	}
	return t - halted
}
