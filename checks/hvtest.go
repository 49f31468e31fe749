package checks

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/metal"
	"gohv/root/loader"
	"gohv/testguests"
	"gohv/x86"
)

// HVTest runs child partitions on the CPU's virtualization extension
// (AMD-V or VT-x): exits, MMIO emulation, interrupt injection, isolation,
// triple faults, stopping spinning and halted VPs, a Multiboot kernel, real
// mode, hostile state, a named entry failure, each VP's own CR2, and no
// page leaked.
var HVTest = Suite{
	Word:  "hvtest",
	Setup: openHypervisor,
	Checks: []Check{
		{"exits-roundtrip", checkExits},
		{"mmio-emulation", checkMMIO},
		{"interrupt-injection", checkInterrupts},
		{"isolation", checkIsolation},
		{"triple-fault", checkTripleFault},
		{"stop-spin-halt", checkStopSpinHalt},
		{"multiboot-kernel", checkMultiboot},
		{"real-mode", checkRealMode},
		{"hostile-state", checkHostileState},
		{"hostile-cr4", checkHostileCR4},
		{"hostile-cr3", checkHostileCR3},
		{"entry-failure", checkEntryFailure},
		{"cr2-across-partitions", checkCR2AcrossPartitions},
		{"lapic-timer-oneshot", checkTimerOneShot},
		{"lapic-timer-periodic", checkTimerPeriodic},
		{"tsc-deadline", checkTSCDeadline},
		{"self-ipi", checkSelfIPI},
		{"tpr-masking", checkTPRMasking},
		{"eoi-nesting", checkEOINesting},
		{"interrupt-once", checkInterruptOnce},
		{"x2apic-mode", checkX2APICMode},
		{"ioapic-com1", checkIOAPICCOM1},
		{"apic-hostile", checkAPICHostile},
		{"hyperv-discovery", checkHyperVDiscovery},
		{"hyperv-reftime", checkHyperVRefTime},
		{"synic-message", checkSynICMessage},
		{"synic-event", checkSynICEvent},
		{"synic-timers", checkSynICTimers},
		{"hyperv-crash", checkHyperVCrash},
		{"hyperv-hostile", checkHyperVHostile},
		{"smp-hostile", checkSMPHostile},
		{"smp-ipi-flush", checkSMPIPIFlush},
		{"gc-pause-spinning", checkGCPauseSpinning},
		{"vp-migrate", checkVPMigrate},
		{"overcommit", checkOvercommit},
		{"pages-returned", checkPagesReturned}, // last: every partition is gone
	},
}

func openHypervisor(env *Env) error {
	h, err := env.OpenHypervisor()
	if err != nil {
		return err
	}
	env.hv = h
	env.pagesBefore = metal.HypervisorPages()
	return nil
}

func fmtErr(format string, args ...any) error { return fmt.Errorf(format, args...) }

// checkExits: CPUID, MSR, port I/O and hypercall round trips, checked by
// the guest.
func checkExits(env *Env) (string, error) {
	p, r, err := env.run("exits", 4<<20, testguests.Exits, testguests.Options{}, nil, 10*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	return r.String(), poweredOff(r, 0, "exits guest")
}

// checkMMIO: loads, stores and string instructions on an MMIO range go
// through the instruction emulator to the device.
func checkMMIO(env *Env) (string, error) {
	dev := &testDevice{}
	for i := range dev.mem {
		dev.mem[i] = byte(i*7 + 3)
	}
	p, r, err := env.run("mmio", 4<<20, testguests.MMIO, testguests.Options{}, func(p *hv.Partition) error {
		p.VP(0).Regs().GPR[x86.RBX] = mmioBase
		return p.AddMMIO(mmioBase, 4096, dev)
	}, 10*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	if err := poweredOff(r, 0, "mmio guest"); err != nil {
		return "", err
	}
	if dev.accesses < 20 {
		return "", fmtErr("only %d device accesses", dev.accesses)
	}
	return fmt.Sprintf("%v; %d device accesses for mov (8/16/32/64-bit, immediate and register), movzx, movsx, rep stos, rep movs, lods, add",
		r, dev.accesses), nil
}

// checkInterrupts: external interrupts honour IF and the STI shadow and
// wake a halted VP.
func checkInterrupts(env *Env) (string, error) {
	p, r, err := env.run("irq", 4<<20, testguests.Interrupts, testguests.Options{}, func(p *hv.Partition) error {
		p.AddPort(0xe1, 2, irqDevice{p.VP(0)})
		return nil
	}, 10*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	vp := p.VP(0)
	detail := fmt.Sprintf("%v; %d injected, %d interrupt-window exits, %d HLT sleeps",
		r, vp.Injected, vp.Exits[vcpu.ExitInterruptWindow], vp.HLTSleeps)
	return detail, poweredOff(r, 0, "interrupt guest")
}

// checkTripleFault: a triple fault stops only its partition.
func checkTripleFault(env *Env) (string, error) {
	tf, err1 := env.start("triple", 4<<20, testguests.TripleFault, testguests.Options{NoIDT: true}, nil)
	defer destroy(tf)
	ex, err2 := env.start("bystander", 4<<20, testguests.Exits, testguests.Options{}, nil)
	defer destroy(ex)
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	rt, rb := tf.WaitOrStop(10*time.Second), ex.WaitOrStop(10*time.Second)
	detail := fmt.Sprintf("faulting partition %v; bystander %v", rt, rb)
	if rt.State != hv.StateCrashed || !errors.Is(rt.Err, hv.ErrTripleFault) {
		return "", fmtErr("%s: want the faulting partition crashed by a triple fault", detail)
	}
	return detail, poweredOff(rb, 0, "bystander")
}

// checkStopSpinHalt: the root stops a spinning guest and a halted one, and
// both VP threads are released.
func checkStopSpinHalt(env *Env) (string, error) {
	sp, err1 := env.start("spin", 4<<20, testguests.Spin, testguests.Options{}, nil)
	defer destroy(sp)
	ht, err2 := env.start("halt", 4<<20, testguests.Halt, testguests.Options{}, nil)
	defer destroy(ht)
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	sp.Stop("the check is done")
	ht.Stop("the check is done")
	for _, q := range []*hv.Partition{sp, ht} {
		select {
		case <-q.Done():
		case <-time.After(5 * time.Second):
			return "", fmtErr("partition %s still running 5 s after Stop", q.Name)
		}
	}
	d := time.Since(t0)
	hvp := ht.VP(0)
	detail := fmt.Sprintf("both VP threads released %v after Stop; spinning VP took %d host-interrupt exits, halted VP %d HLT exit(s) and slept %d time(s)",
		d.Round(time.Microsecond), sp.VP(0).Exits[vcpu.ExitInterrupt], hvp.Exits[vcpu.ExitHLT], hvp.HLTSleeps)
	for _, q := range []*hv.Partition{sp, ht} {
		if r := q.Result(); r.State != hv.StateStopped || !errors.Is(r.Err, hv.ErrStopRequested) {
			return "", fmtErr("%s: %s %v, want stopped on request", detail, q.Name, r)
		}
	}
	if hvp.HLTSleeps == 0 || hvp.Exits[vcpu.ExitHLT] != 1 {
		return "", fmtErr("%s: want one HLT exit and at least one sleep", detail)
	}
	return detail, nil
}

// checkMultiboot: a Multiboot kernel boots in protected mode and reports
// its mem_upper.
func checkMultiboot(env *Env) (string, error) {
	const ram = 16 << 20
	p, err := env.hv.NewPartition(hv.Config{Name: "multiboot", RAMBytes: ram, Console: env.Out})
	if err != nil {
		return "", err
	}
	defer p.Destroy()
	if err := loader.LoadMultiboot(p, testguests.MultibootKernel(), "mbtest"); err != nil {
		return "", err
	}
	p.Start()
	r := p.WaitOrStop(10 * time.Second)
	return fmt.Sprintf("%v, want status %#x (its mem_upper in MiB)", r, ram>>20-1), poweredOff(r, ram>>20-1, "multiboot kernel")
}

// checkRealMode: 16-bit code with CR0.PE clear (unrestricted guest on
// VT-x).
func checkRealMode(env *Env) (string, error) {
	p, err := env.hv.NewPartition(hv.Config{Name: "real", RAMBytes: 1 << 20, Console: env.Out})
	if err != nil {
		return "", err
	}
	defer p.Destroy()
	if err := testguests.LoadRealMode(p); err != nil {
		return "", err
	}
	p.Start()
	r := p.WaitOrStop(10 * time.Second)
	return fmt.Sprintf("16-bit code at 0000:7C00: %v", r), poweredOff(r, testguests.RealModeStatus, "real-mode guest")
}

// checkHostileState: reserved EFER bits, EFER.SVME, LME under paging,
// VMRUN and XSETBV are refused with exceptions the guest checks.
func checkHostileState(env *Env) (string, error) {
	p, r, err := env.run("hostile", 4<<20, testguests.Hostile, testguests.Options{}, nil, 10*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("reserved EFER bits, EFER.SVME, LME under paging, VMRUN, XSETBV: %v", r), poweredOff(r, 0, "hostile guest")
}

// checkHostileCR4: a reserved CR4 bit raises #GP (status 13), or — where
// the hardware checks CR4 at entry instead (QEMU's SVM) — ends the
// partition with a refused guest state.
func checkHostileCR4(env *Env) (string, error) {
	p, r, err := env.run("badcr4", 4<<20, testguests.BadCR4, testguests.Options{}, nil, 10*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("reserved CR4 bit: %v", r)
	if r.PoweredOffWith(x86.VectorGP) || r.State == hv.StateCrashed && errors.Is(r.Err, hv.ErrInvalidState) {
		return detail, nil
	}
	return "", fmtErr("%s: want #GP in the guest or a refused entry", detail)
}

// checkHostileCR3: CR3 outside the partition's RAM raises #GP or ends the
// partition for an access outside its memory.
func checkHostileCR3(env *Env) (string, error) {
	p, r, err := env.run("badcr3", 4<<20, testguests.BadCR3, testguests.Options{}, nil, 10*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("CR3 outside the partition's RAM: %v", r)
	if r.PoweredOffWith(x86.VectorGP) || r.State == hv.StateCrashed && errors.Is(r.Err, hv.ErrOutsideMemory) {
		return detail, nil
	}
	return "", fmtErr("%s: want #GP or the partition ended for an access outside its memory", detail)
}

// checkEntryFailure: an entry that fails on a deliberately broken
// guest-state field (the backend's test seam) is reported by name and
// stops only that partition.
func checkEntryFailure(env *Env) (string, error) {
	var field string
	p, r, err := env.run("badstate", 4<<20, testguests.Exits, testguests.Options{}, func(p *hv.Partition) error {
		if field = p.VP(0).BreakGuestStateForTest(); field == "" {
			return fmtErr("the backend cannot break its guest state")
		}
		return nil
	}, 10*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("corrupted %s: %v", field, r)
	var ise *hv.InvalidStateError
	if r.State != hv.StateCrashed || !errors.As(r.Err, &ise) || !strings.Contains(ise.Detail, field) {
		return "", fmtErr("%s: want a refused entry naming %s", detail, field)
	}
	return detail, nil
}

// checkPagesReturned: every page the partitions took is back.
func checkPagesReturned(env *Env) (string, error) {
	leaked := int64(metal.HypervisorPages()) - int64(env.pagesBefore)
	if leaked != 0 {
		return "", fmtErr("%d hypervisor pages still held after every partition was destroyed", leaked)
	}
	return "0 hypervisor pages still held after every partition was destroyed", nil
}
