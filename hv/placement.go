package hv

import (
	"fmt"

	"gohv/hv/vcpu"
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
// While other CPUs are online the boot CPU runs no VP: it keeps the root's
// services, and — an open bug, issue 14's note — a Linux guest's VPs on
// the boot CPU with application processors online crashed the machine
// under QEMU: right after a #VMEXIT the boot CPU faulted fetching the
// instruction after VMRUN, with intact page tables and host state, then
// triple-faulted on the guest's TR. The same VPs on any application
// processor ran; timing-dependent (README, "Host CPUs").

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
// configuration's choice, which must be online), else the least loaded.
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
		if h.usable(i) && (best < 0 || h.placed[i] < h.placed[best]) {
			best = i
		}
	}
	if best < 0 {
		return -1, fmt.Errorf("no host CPU is online")
	}
	h.placed[best]++
	return best, nil
}

// usableCPU says whether a VP may run on host CPU i, and why not.
func (h *Hypervisor) usableCPU(i int) error {
	switch {
	case h.usable(i):
		return nil
	case i == 0 && h.Host.CPUOnline(0):
		return fmt.Errorf("host CPU 0 (the boot CPU) runs no VP while other CPUs are online")
	}
	return fmt.Errorf("host CPU %d is not online", i)
}

// usable reports whether a VP may run on host CPU i: an online CPU, and
// not the boot CPU while another is online. Must not allocate.
func (h *Hypervisor) usable(i int) bool {
	if i < 0 || i >= vcpu.MaxHostCPUs || !h.Host.CPUOnline(i) {
		return false
	}
	if i == 0 {
		for j := 1; j < vcpu.MaxHostCPUs; j++ {
			if h.Host.CPUOnline(j) {
				return false
			}
		}
	}
	return true
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
