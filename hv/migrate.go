package hv

import (
	"fmt"
	"time"
)

// Migration: a VP moves to another host CPU when it shares its own with
// another VP that is running (not halted, not waiting for a SIPI) while a
// usable CPU runs none — a guest whose busy CPUs were placed together and
// whose idle ones got CPUs of their own, or a host where a partition
// ended. VPs a partition's configuration pins (host_cpus) never move.
//
// The VP's thread moves itself at the end of a slice (yield), out of guest
// mode: the backend lets go of the old CPU there (VMX: VMCLEAR, which must
// run on the CPU that has the VMCS active), the thread is bound to the new
// CPU, and the backend takes the VP up there (VMX: VMPTRLD and the host
// state fields that differ per CPU; SVM: that CPU's host save area), with
// the guest's TLB flushed at the next entry, since entries of the VP's
// ASID or VPID that the new CPU kept from an earlier stay are stale.
// A VP moves only once it has shared its CPU with a running VP for
// migrateShared, and at most once per migrateHold, so VPs whose guest
// CPUs halt and wake often (a Linux guest's idle CPUs) do not chase each
// other around the host.

// migrateHold is the least time a VP stays on a host CPU before it moves
// again; migrateShared how long it has found another running VP on its
// CPU, at every look, before it moves.
const (
	migrateHold   = 250 * time.Millisecond
	migrateShared = 50 * time.Millisecond
)

// setBusy records that the VP is running (true) or halted or waiting for a
// SIPI (false) on its host CPU: Hypervisor.busy. VP thread.
func (vp *VP) setBusy(b bool) {
	if b == vp.busy {
		return
	}
	vp.busy = b
	d := int32(-1)
	if b {
		d = 1
	}
	if c := vp.hostCPU.Load(); c >= 0 {
		vp.p.hv.busy[c].Add(d)
	}
}

// maybeMigrate moves the VP to a host CPU that runs no VP if its own has
// run another besides it for migrateShared and it has stayed there
// migrateHold. VP thread, at a slice end (yield); must not allocate unless
// it moves.
func (vp *VP) maybeMigrate() {
	if len(vp.p.hostCPUs) > 0 {
		return
	}
	now := vp.p.hv.Host.Nanotime()
	if now-vp.movedAt < int64(migrateHold) {
		return
	}
	from := int(vp.hostCPU.Load())
	if from < 0 || vp.p.hv.busy[from].Load() < 2 {
		vp.sharedSince = 0
		return
	}
	if vp.sharedSince == 0 {
		vp.sharedSince = now
	}
	if now-vp.sharedSince < int64(migrateShared) {
		return
	}
	to := vp.p.hv.migrationTarget(from)
	if to < 0 {
		return
	}
	vp.movedAt, vp.sharedSince = now, 0
	if err := vp.migrate(from, to); err != nil {
		vp.p.crash(vp.index, fmt.Errorf("vp %d: %w: moving from host CPU %d to %d: %w", vp.index, ErrHypervisor, from, to, err))
	}
}

// migrationTarget picks the usable host CPU other than from that runs no
// VP, the one with the fewest placed there (halted ones), the
// highest-numbered of equals; -1 if there is none. Must not allocate.
func (h *Hypervisor) migrationTarget(from int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	best := -1
	for i := len(h.placed) - 1; i >= 0; i-- {
		if i == from || h.busy[i].Load() != 0 || !h.autoCPU(i) {
			continue
		}
		if best < 0 || h.placed[i] < h.placed[best] {
			best = i
		}
	}
	return best
}

// migrate moves the VP's thread and backend state from host CPU from,
// where it runs now, to CPU to. A move that fails but gets back to from is
// said on the log and the VP runs on; the error says why the VP can run
// nowhere. VP thread, out of guest mode.
func (vp *VP) migrate(from, to int) error {
	h := vp.p.hv
	busy := vp.busy
	vp.setBusy(false)
	vp.cpu.Unbind()
	err := h.Host.PinThread(to)
	if err == nil && h.Host.CurrentCPU() != to {
		err = fmt.Errorf("bound to host CPU %d, the thread runs on %d", to, h.Host.CurrentCPU())
	}
	if err == nil {
		// Before the first entry there: a VP on the old CPU that reads
		// this one's CPU as its own (syncExit) skips a wait only while
		// this one cannot be in guest mode.
		vp.hostCPU.Store(int32(to))
		if err = vp.cpu.Bind(to); err == nil {
			h.movePlaced(from, to)
			vp.ranOn.Store(int32(to))
			vp.moves.Add(1)
			vp.setBusy(busy)
			vp.p.log.Debug("vp moved", "vp", vp.index, "from", from, "to", to)
			return nil
		}
	}
	vp.hostCPU.Store(int32(from))
	if perr := h.Host.PinThread(from); perr != nil {
		return fmt.Errorf("%w; and back to host CPU %d: %w", err, from, perr)
	}
	if berr := vp.cpu.Bind(from); berr != nil {
		return fmt.Errorf("%w; and back on host CPU %d: %w", err, from, berr)
	}
	vp.setBusy(busy)
	vp.p.log.Warn("vp could not move; it stays", "vp", vp.index, "from", from, "to", to, "err", err)
	return nil
}

// movePlaced moves one VP's count from host CPU from to to.
func (h *Hypervisor) movePlaced(from, to int) {
	h.mu.Lock()
	h.placed[from]--
	h.placed[to]++
	h.mu.Unlock()
}

// HostCPU is the host CPU the VP runs on; -1 while its thread does not
// run. Any goroutine.
func (vp *VP) HostCPU() int { return int(vp.hostCPU.Load()) }

// Migrations is how many times the VP moved to another host CPU. Any
// goroutine.
func (vp *VP) Migrations() uint64 { return vp.moves.Load() }

// GuestExits is how many times the VP has left guest mode. Any goroutine.
func (vp *VP) GuestExits() uint64 { return vp.runs.Load() }
