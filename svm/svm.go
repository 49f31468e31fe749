package svm

import (
	"errors"
	"fmt"
	"sync"

	"gohv/hv"
	"gohv/x86"
)

// MSRs (APM Vol. 2 15.30).
const (
	msrEFER     = 0xc000_0080
	msrVMCR     = 0xc001_0114
	msrHSAVEPA  = 0xc001_0117
	eferSVME    = 1 << 12
	vmcrSVMDIS  = 1 << 4
	vmcrLock    = 1 << 3
	cpuidSVMBit = 1 << 2 // CPUID 8000_0001h ECX
)

// Features are the SVM capabilities of CPUID 8000_000Ah.
type Features struct {
	Revision   uint32
	NASID      uint32 // number of ASIDs
	NestedPage bool   // EDX bit 0
	NRIPSave   bool   // EDX bit 3: the VMCB has the next RIP on intercepts
	VMCBClean  bool   // EDX bit 5
	Decode     bool   // EDX bit 7: decode assists
}

// ErrNoSVM is returned on a CPU without AMD-V.
var ErrNoSVM = errors.New("svm: the CPU has no AMD-V (CPUID 8000_0001h ECX.SVM clear)")

// Detect reports the CPU's SVM features, or why SVM cannot be used.
func Detect() (Features, error) {
	var f Features
	maxExt, _, _, _ := x86.CPUID(0x8000_0000, 0)
	if maxExt < 0x8000_000a {
		return f, ErrNoSVM
	}
	if _, _, ecx, _ := x86.CPUID(0x8000_0001, 0); ecx&cpuidSVMBit == 0 {
		return f, ErrNoSVM
	}
	if x86.RDMSR(msrVMCR)&vmcrSVMDIS != 0 {
		return f, errors.New("svm: AMD-V is disabled by the firmware (VM_CR.SVMDIS set" +
			lockNote() + "); enable SVM/virtualization in the BIOS setup")
	}
	eax, ebx, _, edx := x86.CPUID(0x8000_000a, 0)
	f = Features{Revision: eax & 0xff, NASID: ebx, NestedPage: edx&1 != 0,
		NRIPSave: edx&(1<<3) != 0, VMCBClean: edx&(1<<5) != 0, Decode: edx&(1<<7) != 0}
	if !f.NestedPage {
		return f, errors.New("svm: the CPU has AMD-V without nested paging (CPUID 8000_000Ah EDX.NP clear); gohv needs NPT")
	}
	if f.NASID < 2 {
		return f, fmt.Errorf("svm: CPUID reports %d ASIDs; need at least 2", f.NASID)
	}
	return f, nil
}

func lockNote() string {
	if x86.RDMSR(msrVMCR)&vmcrLock != 0 {
		return " and locked"
	}
	return ""
}

// Backend is SVM enabled on this CPU. gohv runs its VPs on the boot CPU
// only, so there is one host save area.
type Backend struct {
	mem      hv.HostMemory
	feat     Features
	hsave    uint64     // VM_HSAVE_PA
	hostVMCB uint64     // VMSAVE/VMLOAD area for the host's FS/GS/TR/syscall MSRs
	iopm     uint64     // 3 pages, every port intercepted
	msrpm    uint64     // 2 pages
	mu       sync.Mutex // guards the ASID pool
	nextASID uint32
	freeASID []uint32
}

// Enable turns on EFER.SVME and sets up the host save area and the
// permission maps shared by every VP.
func Enable(mem hv.HostMemory, msr hv.MSRPolicy) (*Backend, error) {
	f, err := Detect()
	if err != nil {
		return nil, err
	}
	b := &Backend{mem: mem, feat: f, nextASID: 1}
	if b.hsave, err = mem.AllocPage(); err != nil {
		return nil, fmt.Errorf("svm: host save area: %w", err)
	}
	if b.hostVMCB, err = mem.AllocPage(); err != nil {
		return nil, fmt.Errorf("svm: host VMSAVE area: %w", err)
	}
	if b.iopm, err = hv.AllocContiguous(mem, 3); err != nil {
		return nil, fmt.Errorf("svm: I/O permission map: %w", err)
	}
	if b.msrpm, err = hv.AllocContiguous(mem, 2); err != nil {
		return nil, fmt.Errorf("svm: MSR permission map: %w", err)
	}
	// Every port exits: the core emulates the devices it has and reads
	// all ones from the rest.
	for i := 0; i < 3; i++ {
		p := mem.Page(b.iopm + uint64(i)*hv.PageSize)
		for j := range p {
			p[j] = 0xff
		}
	}
	fillMSRPM(func(off int) *byte {
		return &mem.Page(b.msrpm + uint64(off/hv.PageSize)*hv.PageSize)[off%hv.PageSize]
	}, msr)
	x86.WRMSR(msrEFER, x86.RDMSR(msrEFER)|eferSVME)
	x86.WRMSR(msrHSAVEPA, b.hsave)
	return b, nil
}

// MSR permission map ranges (APM Vol. 2 15.11): two bits per MSR, read
// intercept then write intercept.
var msrpmRanges = [...]struct{ base, off uint32 }{
	{0x0000_0000, 0x0000},
	{0xc000_0000, 0x0800},
	{0xc001_0000, 0x1000},
}

// msrpmBit returns the byte offset and bit of msr's read intercept in the
// MSR permission map, or ok=false for an MSR outside the three ranges
// (always intercepted).
func msrpmBit(msr uint32) (off int, bit uint, ok bool) {
	for _, r := range msrpmRanges {
		if msr >= r.base && msr < r.base+0x2000 {
			n := msr - r.base
			return int(r.off + n/4), uint(n%4) * 2, true
		}
	}
	return 0, 0, false
}

func fillMSRPM(at func(off int) *byte, msr hv.MSRPolicy) {
	for off := 0; off < 0x2000; off++ {
		*at(off) = 0xff
	}
	if msr == nil {
		return
	}
	for _, r := range msrpmRanges {
		for n := uint32(0); n < 0x2000; n++ {
			m := r.base + n
			off, bit, _ := msrpmBit(m)
			if msr.PassThroughMSR(m, false) {
				*at(off) &^= 1 << bit
			}
			if msr.PassThroughMSR(m, true) {
				*at(off) &^= 1 << (bit + 1)
			}
		}
	}
}

func (b *Backend) Name() string                  { return "AMD-V" }
func (b *Backend) NestedFormat() hv.NestedFormat { return hv.FormatNPT }
func (b *Backend) Features() Features            { return b.feat }

func (b *Backend) allocASID() (uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.freeASID); n > 0 {
		a := b.freeASID[n-1]
		b.freeASID = b.freeASID[:n-1]
		return a, nil
	}
	if b.nextASID >= b.feat.NASID {
		return 0, fmt.Errorf("svm: all %d ASIDs in use", b.feat.NASID-1)
	}
	b.nextASID++
	return b.nextASID - 1, nil
}

func (b *Backend) releaseASID(a uint32) {
	b.mu.Lock()
	b.freeASID = append(b.freeASID, a)
	b.mu.Unlock()
}
