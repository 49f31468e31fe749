package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gohv/guests"
	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/metal"
	"gohv/x86"
)

// runHVTest runs the child-partition checks (kernel command line word
// "hvtest"): each prints one check line; the result is true when all pass.
func runHVTest() bool {
	h, err := startHypervisor()
	if err != nil {
		fmt.Printf("gohv: check hypervisor-enable FAIL %v\n", err)
		return false
	}
	ok := true
	check := func(name string, pass bool, format string, args ...any) {
		st := "PASS"
		if !pass {
			st, ok = "FAIL", false
		}
		fmt.Printf("gohv: check %s %s %s\n", name, st, fmt.Sprintf(format, args...))
	}
	pagesBefore := metal.HypervisorPages()
	want := selectedChecks()

	// 1. CPUID, MSR, port I/O and hypercall exits.
	if want("exits-roundtrip") {
		p, r, err := runGuest(h, "exits", 4<<20, guests.Exits, guests.Options{}, nil, 10*time.Second)
		check("exits-roundtrip", err == nil && stoppedWith(r, 0), "%v (err %v)", r, err)
		destroy(p)
	}

	// 2. MMIO through the instruction emulator.
	if want("mmio-emulation") {
		dev := &testDevice{}
		for i := range dev.mem {
			dev.mem[i] = byte(i*7 + 3)
		}
		p, r, err := runGuest(h, "mmio", 4<<20, guests.MMIO, guests.Options{}, func(p *hv.Partition) error {
			p.VP(0).Regs().GPR[x86.RBX] = mmioBase
			return p.AddMMIO(mmioBase, 4096, dev)
		}, 10*time.Second)
		check("mmio-emulation", err == nil && stoppedWith(r, 0) && dev.accesses >= 20,
			"%v; %d device accesses for mov (8/16/32/64-bit, immediate and register), movzx, movsx, rep stos, rep movs, lods, add (err %v)", r, dev.accesses, err)
		destroy(p)
	}

	// Event injection: external interrupts honour IF, the STI shadow and
	// wake a halted VP.
	if want("interrupt-injection") {
		p, r, err := runGuest(h, "irq", 4<<20, guests.Interrupts, guests.Options{}, func(p *hv.Partition) error {
			p.AddPort(0xe1, 2, irqDevice{p.VP(0)})
			return nil
		}, 10*time.Second)
		var detail string
		if p != nil {
			vp := p.VP(0)
			detail = fmt.Sprintf("%d injected, %d interrupt-window exits, %d HLT sleeps", vp.Injected, vp.Exits[vcpu.ExitInterruptWindow], vp.HLTSleeps)
		}
		check("interrupt-injection", err == nil && stoppedWith(r, 0), "%v; %s (err %v)", r, detail, err)
		destroy(p)
	}

	// 3. Isolation.
	if want("isolation") {
		ierr := isolation(h)
		check("isolation", ierr == nil, "%v", errOr(ierr, "two partitions kept their patterns; probes outside RAM and at the root's canary page ended their partitions"))
	}

	// 4. A triple fault stops only its partition.
	if want("triple-fault") {
		tf, err1 := startGuest(h, "triple", 4<<20, guests.TripleFault, guests.Options{NoIDT: true}, nil)
		ex, err2 := startGuest(h, "bystander", 4<<20, guests.Exits, guests.Options{}, nil)
		var rt, rb hv.Result
		if err1 == nil && err2 == nil {
			rt, rb = waitFor(tf, 10*time.Second), waitFor(ex, 10*time.Second)
		}
		check("triple-fault", err1 == nil && err2 == nil && rt.State == hv.StateCrashed &&
			errors.Is(rt.Err, hv.ErrTripleFault) && stoppedWith(rb, 0),
			"faulting partition %v; bystander %v (errors %v, %v)", rt, rb, err1, err2)
		destroy(tf)
		destroy(ex)
	}

	// 5. A spinning guest and a halted one are stopped by the root.
	if want("stop-spin-halt") {
		sp, err1 := startGuest(h, "spin", 4<<20, guests.Spin, guests.Options{}, nil)
		ht, err2 := startGuest(h, "halt", 4<<20, guests.Halt, guests.Options{}, nil)
		pass := err1 == nil && err2 == nil
		var detail string
		if pass {
			time.Sleep(200 * time.Millisecond)
			t0 := time.Now()
			sp.Stop("the check is done")
			ht.Stop("the check is done")
			released := true
			for _, q := range []*hv.Partition{sp, ht} {
				select {
				case <-q.Done():
				case <-time.After(5 * time.Second):
					released = false
				}
			}
			d := time.Since(t0)
			hvp := ht.VP(0)
			pass = released && sp.Result().State == hv.StateStopped && ht.Result().State == hv.StateStopped &&
				hvp.HLTSleeps > 0 && hvp.Exits[vcpu.ExitHLT] == 1
			detail = fmt.Sprintf("both VP threads released %v after Stop; spinning VP took %d host-interrupt exits, halted VP %d HLT exit(s) and slept %d time(s)",
				d.Round(time.Microsecond), sp.VP(0).Exits[vcpu.ExitInterrupt], hvp.Exits[vcpu.ExitHLT], hvp.HLTSleeps)
		}
		check("stop-spin-halt", pass, "%s (errors %v, %v)", detail, err1, err2)
		destroy(sp)
		destroy(ht)
	}

	// 6. A Multiboot kernel.
	if want("multiboot-kernel") {
		const ram = 16 << 20
		p, err := h.NewPartition(hv.Config{Name: "multiboot", RAMBytes: ram, Console: partitionConsole})
		var r hv.Result
		if err == nil {
			if err = hv.LoadMultiboot(p, guests.MultibootKernel(), "mbtest"); err == nil {
				p.Start()
				r = waitFor(p, 10*time.Second)
			}
		}
		check("multiboot-kernel", err == nil && stoppedWith(r, ram>>20-1),
			"%v, want status %#x (its mem_upper in MiB) (err %v)", r, ram>>20-1, err)
		destroy(p)
	}

	// Real mode (CR0.PE clear).
	if want("real-mode") {
		p, err := h.NewPartition(hv.Config{Name: "real", RAMBytes: 1 << 20, Console: partitionConsole})
		var r hv.Result
		if err == nil {
			if err = guests.LoadRealMode(p); err == nil {
				p.Start()
				r = waitFor(p, 10*time.Second)
			}
		}
		check("real-mode", err == nil && stoppedWith(r, guests.RealModeStatus), "16-bit code at 0000:7C00: %v (err %v)", r, err)
		destroy(p)
	}

	// 7. Hostile state.
	if want("hostile") {
		p, r, err := runGuest(h, "hostile", 4<<20, guests.Hostile, guests.Options{}, nil, 10*time.Second)
		check("hostile-state", err == nil && stoppedWith(r, 0), "reserved EFER bits, EFER.SVME, LME under paging, VMRUN, XSETBV: %v (err %v)", r, err)
		destroy(p)
		p, r, err = runGuest(h, "badcr4", 4<<20, guests.BadCR4, guests.Options{}, nil, 10*time.Second)
		check("hostile-cr4", err == nil && (stoppedWith(r, 13) || r.State == hv.StateCrashed && errors.Is(r.Err, hv.ErrInvalidState)),
			"reserved CR4 bit: %v (err %v)", r, err)
		destroy(p)
		p, r, err = runGuest(h, "badcr3", 4<<20, guests.BadCR3, guests.Options{}, nil, 10*time.Second)
		check("hostile-cr3", err == nil && (stoppedWith(r, 13) || r.State == hv.StateCrashed && errors.Is(r.Err, hv.ErrOutsideMemory)),
			"CR3 outside the partition's RAM: %v (err %v)", r, err)
		destroy(p)
	}

	// An entry failure names the field and stops only its partition.
	if want("entry-failure") {
		var field string
		p, r, err := runGuest(h, "badstate", 4<<20, guests.Exits, guests.Options{}, func(p *hv.Partition) error {
			if field = p.VP(0).BreakGuestStateForTest(); field == "" {
				return fmt.Errorf("the backend cannot break its guest state")
			}
			return nil
		}, 10*time.Second)
		var ise *hv.InvalidStateError
		check("entry-failure", err == nil && r.State == hv.StateCrashed && errors.As(r.Err, &ise) && strings.Contains(ise.Detail, field),
			"corrupted %s: %v (err %v)", field, r, err)
		destroy(p)
	}

	leaked := int64(metal.HypervisorPages()) - int64(pagesBefore)
	check("pages-returned", leaked == 0, "%d hypervisor pages still held after every partition was destroyed", leaked)
	return ok
}

// selectedChecks reads "hvtest=name,name" from the command line: only
// those checks run (all of them for a plain "hvtest").
func selectedChecks() func(string) bool {
	for _, a := range os.Args[1:] {
		if list, ok := strings.CutPrefix(a, "hvtest="); ok {
			names := strings.Split(list, ",")
			return func(n string) bool { return slices.Contains(names, n) }
		}
	}
	return func(string) bool { return true }
}

func stoppedWith(r hv.Result, status uint32) bool { return r.PoweredOffWith(status) }

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func destroy(p *hv.Partition) {
	if p != nil {
		p.Destroy()
	}
}

func startGuest(h *hv.Hypervisor, name string, ram uint64, prog guests.Program, o guests.Options,
	setup func(p *hv.Partition) error) (*hv.Partition, error) {
	p, err := h.NewPartition(hv.Config{Name: name, RAMBytes: ram, Console: partitionConsole})
	if err != nil {
		return nil, err
	}
	if err := guests.Load(p, prog, o); err == nil && setup != nil {
		err = setup(p)
	}
	if err != nil {
		p.Start()
		p.Stop("setup failed")
		p.Destroy()
		return nil, err
	}
	p.Start()
	return p, nil
}

func waitFor(p *hv.Partition, timeout time.Duration) hv.Result {
	select {
	case <-p.Done():
	case <-time.After(timeout):
		p.Stop(fmt.Sprintf("timed out after %v", timeout))
		p.Wait()
	}
	return p.Result()
}

// isolation runs two partitions that fill their RAM with different patterns
// at the same time, then two that probe outside their RAM: one at a
// guest-physical address beyond it, one at the host-physical address of a
// root page holding a canary. The probes must end their partitions; the
// patterns and the canary must be intact.
func isolation(h *hv.Hypervisor) error {
	const ram = 8 << 20
	pat := [2]uint64{0xa5a5_0001_5a5a_0001, 0xa5a5_0002_5a5a_0002}
	var ps [2]*hv.Partition
	for i := range ps {
		var err error
		ps[i], err = startGuest(h, fmt.Sprintf("fill%d", i), ram, guests.Pattern, guests.Options{}, func(p *hv.Partition) error {
			r := p.VP(0).Regs()
			r.GPR[x86.RBX], r.GPR[x86.RSI], r.GPR[x86.RDI] = pat[i], guests.DataBase, ram
			return nil
		})
		if err != nil {
			return err
		}
		defer ps[i].Destroy()
	}
	for i, p := range ps {
		if r := waitFor(p, 20*time.Second); !stoppedWith(r, 0) {
			return fmt.Errorf("fill%d: %v", i, r)
		}
		buf := make([]byte, ram-guests.DataBase)
		if err := p.Mem.ReadRAM(guests.DataBase, buf); err != nil {
			return err
		}
		for off := 0; off < len(buf); off += 8 {
			if v := binary.LittleEndian.Uint64(buf[off:]); v != pat[i] {
				return fmt.Errorf("fill%d: RAM at %#x holds %#x, want %#x", i, guests.DataBase+off, v, pat[i])
			}
		}
	}
	// The canary must sit above the probing guest's RAM, or the probe would
	// read the guest's own page at that address and show nothing.
	var canary uint64
	var err error
	var below []uint64
	for canary < ram && err == nil {
		var pa uint64
		if pa, err = metal.AllocPage(); err == nil && pa < ram {
			below = append(below, pa)
		} else if err == nil {
			canary = pa
		}
	}
	for _, pa := range below {
		metal.FreePage(pa)
	}
	if err != nil {
		return err
	}
	defer metal.FreePage(canary)
	cp := metal.PhysPage(canary)
	for i := range cp {
		cp[i] = 0xc3
	}
	for _, probe := range []uint64{ram + 16<<20, canary} {
		p, err := startGuest(h, "probe", ram, guests.Pattern, guests.Options{}, func(p *hv.Partition) error {
			r := p.VP(0).Regs()
			r.GPR[x86.RBX], r.GPR[x86.RSI], r.GPR[x86.RDI], r.GPR[x86.R8] = 1, guests.DataBase, guests.DataBase+4096, probe
			return nil
		})
		if err != nil {
			return err
		}
		r := waitFor(p, 10*time.Second)
		p.Destroy()
		if r.State != hv.StateCrashed || !errors.Is(r.Err, hv.ErrOutsideMemory) {
			return fmt.Errorf("probe of %#x: %v, want the partition ended for an access outside its memory map", probe, r)
		}
		fmt.Printf("gohv: isolation probe of gpa %#x ended its partition: %v\n", probe, r.Err)
	}
	for i := range cp {
		if cp[i] != 0xc3 {
			return errors.New("the root's canary page changed")
		}
	}
	return nil
}

const mmioBase = 0xc000_0000

// testDevice is 4 KiB of device memory behind MMIO.
type testDevice struct {
	mem      [4096]byte
	accesses int
}

func (d *testDevice) ReadMMIO(off uint64, b []byte) {
	d.accesses++
	copy(b, d.mem[off:])
}

func (d *testDevice) WriteMMIO(off uint64, b []byte) {
	d.accesses++
	copy(d.mem[off:], b)
}

// irqDevice lets the interrupt test guest ask for interrupts: a write to
// port 0xe1 queues vector 0x30 now, to 0xe2 vector 0x31 after 20 ms.
type irqDevice struct{ vp *hv.VP }

func (d irqDevice) In(port uint16, size int) uint32 { return 0 }
func (d irqDevice) Out(port uint16, size int, v uint32) {
	if port == 0xe1 {
		d.vp.Interrupt(0x30)
		return
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		d.vp.Interrupt(0x31)
	}()
}
