package hv

import (
	"encoding/binary"
	"fmt"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// Placement of VPs on host CPUs. Each VP runs on one host CPU from its
// start to its end (its thread is bound there, and the backend's state for
// it — a VMCS, a host save area — belongs to that CPU): the CPU a
// partition's configuration names for it, or else the online CPU with the
// fewest VPs, the highest-numbered of equals. A partition's VPs are placed
// in VP order when it starts, before their threads run: a guest's CPUs
// 0, 1, ... get different host CPUs as far as there are, in the order the
// guest numbers them.
//
// By default the boot CPU gets no VP while other CPUs are online: it keeps
// the root's services. A configuration may name it, except under QEMU's
// TCG (qemuTCG) with other CPUs online. There QEMU 7.2 has a data race on
// its first CPU's hidden flags: every FXRSTOR, XRSTOR, FRSTOR or FLDENV
// that another virtual CPU executes clears HF2_IGNNE in the *first* CPU's
// env->hflags2 from its own thread with a plain read-modify-write
// (cpu_set_fpus -> cpu_clear_ignne, target/i386/tcg/fpu_helper.c), while
// that CPU updates the same word without a lock in VMRUN, #VMEXIT, STGI and
// CLGI. When the other thread's write lands across the #VMEXIT that clears
// HF2_NPT_MASK, the bit comes back: CPU 0 is in host mode with nested
// paging still on, walks the host's CR3 through the guest's nested tables,
// faults fetching the instruction after VMRUN, and triple-faults because
// the guest's TR is still loaded (README, "Host CPUs"). Real processors,
// and QEMU's other CPUs, have no such write.

// HostCPUs is the host's processors as the core places VPs on them:
// metal's in the image, one CPU in host tests.
type HostCPUs interface {
	// CPUOnline reports whether host CPU i (0 to vcpu.MaxHostCPUs-1)
	// runs threads.
	CPUOnline(i int) bool
	// PinThread binds the calling thread to CPU cpu (-1: any CPU again)
	// and returns once it runs there.
	PinThread(cpu int) error
	// CurrentCPU is the CPU running the caller (a thread PinThread bound).
	CurrentCPU() int
	// KickCPU interrupts host CPU cpu (nothing if it runs the caller): a
	// VP in guest mode there exits. Never blocks; must not allocate.
	KickCPU(cpu int)
}

// placeVP picks the host CPU for a VP: want if it is not -1 (a
// configuration's choice, which must be usable), else the least loaded,
// leaving the boot CPU out while another is online.
func (h *Hypervisor) placeVP(want int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if want >= 0 {
		if err := h.usableCPU(want); err != nil {
			return -1, err
		}
		h.placed[want]++
		return want, nil
	}
	best := -1
	for i := vcpu.MaxHostCPUs - 1; i >= 0; i-- {
		if h.autoCPU(i) && (best < 0 || h.placed[i] < h.placed[best]) {
			best = i
		}
	}
	if best < 0 {
		return -1, fmt.Errorf("no host CPU is online")
	}
	h.placed[best]++
	return best, nil
}

// usableCPU says whether a configuration may put a VP on host CPU i, and
// why not: an online CPU, and not the boot CPU under QEMU's TCG while
// another is online.
func (h *Hypervisor) usableCPU(i int) error {
	switch {
	case i < 0 || i >= vcpu.MaxHostCPUs || !h.Host.CPUOnline(i):
		return fmt.Errorf("host CPU %d is not online", i)
	case i == 0 && h.tcg && h.othersOnline():
		return fmt.Errorf("host CPU 0 (the boot CPU) runs no VP under QEMU TCG while other CPUs are online: QEMU's other CPUs race on its SVM state")
	}
	return nil
}

// autoCPU reports whether placement and migration may choose host CPU i
// for a VP no configuration pins: an online CPU, and not the boot CPU
// while another is online (it keeps the root's services). Must not
// allocate.
func (h *Hypervisor) autoCPU(i int) bool {
	if i < 0 || i >= vcpu.MaxHostCPUs || !h.Host.CPUOnline(i) {
		return false
	}
	return i != 0 || !h.othersOnline()
}

// othersOnline reports whether a host CPU besides the boot CPU is online.
func (h *Hypervisor) othersOnline() bool {
	for j := 1; j < vcpu.MaxHostCPUs; j++ {
		if h.Host.CPUOnline(j) {
			return true
		}
	}
	return false
}

// qemuTCG reports whether cpuid is QEMU's TCG emulator: the hypervisor bit,
// and "TCGTCGTCGTCG" at CPUID 4000_0000h (QEMU's tcg-cpuid property, on by
// default). A real processor has neither.
func qemuTCG(cpuid func(leaf, sub uint32) (eax, ebx, ecx, edx uint32)) bool {
	if _, _, c, _ := cpuid(x86.CPUIDFeatures, 0); c&x86.CPUID1ECXHypervisor == 0 {
		return false
	}
	_, b, c, d := cpuid(x86.CPUIDHypervisorBase, 0)
	var sig [12]byte
	binary.LittleEndian.PutUint32(sig[0:], b)
	binary.LittleEndian.PutUint32(sig[4:], c)
	binary.LittleEndian.PutUint32(sig[8:], d)
	return string(sig[:]) == "TCGTCGTCGTCG"
}

// unplaceVP forgets a VP that left host CPU cpu.
func (h *Hypervisor) unplaceVP(cpu int) {
	h.mu.Lock()
	h.placed[cpu]--
	h.mu.Unlock()
}

// PlacedVPs is how many running VPs each host CPU holds.
func (h *Hypervisor) PlacedVPs() [vcpu.MaxHostCPUs]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.placed
}
