package checks

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"gohv/hv"
	"gohv/iommu"
	"gohv/metal"
	"gohv/metal/pci"
	"gohv/root/passthrough"
	"gohv/testguests"
)

// assignIRQ is the assigned edu device's MSI, routed through interrupt
// remapping for the iommu-assign-edu check: a metal device vector on the
// boot CPU, the unit's remapping entry delivering the device's message
// there, and the goroutine that waits on the vector and hands each
// interrupt to the device (passthrough.Device.Serve), which sends the
// guest's own message into the partition.
//
// Under QEMU 7.2 the edu device's DMA carries no requester ID
// (pci_dma_write's attributes are unspecified; its MSI has one): the
// hostile messages it writes by DMA reach intel-iommu's remapping without
// a source to check (the entry's source-id check is skipped, so only the
// entry being present matters) and amd-iommu's as the I/O APIC's
// (device 00:14.0, whose entry aborts them). Either way they are
// remapped or refused by the unit, never passed — but for intel-iommu's
// compatibility format, which QEMU passes (vtd.Unit.CompatPasses).
type assignIRQ struct {
	unit   iommu.Remapper
	vec    uint8
	in     iommu.Interrupt
	routed bool // the device owns in (Release frees it)
	stray0 uint64
	host0  uint32 // the vector's count after the control

	// The hostile messages the guest makes the device write into the
	// interrupt window: a compatibility-format one to the boot CPU at
	// bait, a device vector nobody holds (so one that got through is
	// counted, not taken), and one naming the entry after the device's
	// (subhandle or index 1: never allocated).
	compat, foreign [2]uint64
	bait            uint8

	quit, done chan struct{}
	mu         sync.Mutex
	errs       []string
}

// newAssignIRQ allocates the vector and the remapping entry for the edu
// device on unit; nil (and why) where the unit does not remap interrupts.
func newAssignIRQ(unit iommu.Domains, edu pci.Addr) (*assignIRQ, string, error) {
	source := uint16(edu.Bus)<<8 | uint16(edu.Dev)<<3 | uint16(edu.Fn)
	r, ok := unit.(iommu.Remapper)
	if !ok {
		return nil, unit.Name() + " has no interrupt remapping", nil
	}
	if on, why := r.InterruptRemapping(); !on {
		return nil, why, nil
	}
	vec, err := metal.AllocDeviceVector()
	if err != nil {
		return nil, "", err
	}
	bait, err := metal.AllocDeviceVector()
	if err != nil {
		metal.FreeDeviceVector(vec)
		return nil, "", err
	}
	metal.FreeDeviceVector(bait) // free again: its interrupts are stray
	dest := metal.BootAPICID()
	in, err := r.AllocInterrupt(source, iommu.Target{APICID: dest, Vector: vec})
	if err != nil {
		metal.FreeDeviceVector(vec)
		return nil, "", err
	}
	return &assignIRQ{
		unit: r, vec: vec, in: in, bait: bait,
		compat:  [2]uint64{0xfee0_0000 | uint64(dest)<<12, uint64(bait)},
		foreign: [2]uint64{in.Address, uint64(in.Data) + 1},
	}, "", nil
}

// Guest pages the edu guest does not use, for the control's probe.
const (
	probeSrc = 0x21_0000
	probeDst = 0x21_1000
)

// control proves the path before the guest runs, with the device
// assigned and its MSI routed (the host capability holds the entry's
// message) but nothing serving the vector yet. First the probe: the
// device's DMA must reach 32-bit addresses, or the guest's hostile
// messages would never reach the interrupt window (QEMU's edu masks DMA
// addresses to 28 bits unless run with dma_mask=0xffffffff) — the root
// has it copy four bytes of the partition's RAM to 1<<28 + probeDst,
// outside the partition's RAM, which a 28-bit mask turns into probeDst,
// inside it; the faults the refused write caused are read and dropped.
// Then the root has the device raise its interrupt (edu register 0x60,
// bus master on for the moment) and wants the vector to fire; it acks it
// (0x64). The vector's and the stray counts the verdict compares are
// taken after it.
func (q *assignIRQ) control(env *Env, p *hv.Partition, d *passthrough.Device, unit iommu.Unit, edu pci.Addr, bar pci.BAR) error {
	regs, err := metal.MapMMIO(bar.Base, bar.Size)
	if err != nil {
		return err
	}
	old := pci.SetCommand(env.PCI, edu, pci.CommandMemory|pci.CommandBusMaster, 0)
	defer pci.SetCommand(env.PCI, edu, old, 0xffff)

	pattern := []byte{0xa5, 0x5a, 0xc3, 0x3c}
	if err := p.Mem.WriteRAM(probeSrc, pattern); err != nil {
		return err
	}
	if err := p.Mem.WriteRAM(probeDst, make([]byte, len(pattern))); err != nil {
		return err
	}
	if err := eduDMACount(regs, probeSrc, eduBuffer, 0, uint64(len(pattern))); err != nil {
		return err
	}
	if err := eduDMACount(regs, eduBuffer, 1<<28|probeDst, eduDMAToRAM, uint64(len(pattern))); err != nil {
		return err
	}
	got := make([]byte, len(pattern))
	if err := p.Mem.ReadRAM(probeDst, got); err != nil {
		return err
	}
	unit.Faults()
	d.Faults()
	if string(got) == string(pattern) {
		return fmt.Errorf("edu %v's DMA to %#x arrived at %#x: QEMU's edu masks DMA addresses to 28 bits, short of the interrupt window (run it with -device edu,dma_mask=0xffffffff)", edu, 1<<28|probeDst, probeDst)
	}

	before := metal.DeviceInterrupts(q.vec)
	regs.Write32(eduRegIRQRaise, 1)
	defer regs.Write32(eduRegIRQAck, 1)
	deadline := time.Now().Add(time.Second)
	for metal.DeviceInterrupts(q.vec) == before {
		if time.Now().After(deadline) {
			return fmt.Errorf("edu %v raised its MSI (entry %d: %#x/%#x) and vector %#x did not fire", edu, q.in.Index, q.in.Address, q.in.Data, q.vec)
		}
		time.Sleep(time.Millisecond)
	}
	q.stray0, q.host0 = metal.StrayInterrupts(), metal.DeviceInterrupts(q.vec)
	return nil
}

// route gives the entry to the device, with p the partition its
// interrupts go to.
func (q *assignIRQ) route(d *passthrough.Device, p *hv.Partition) error {
	if err := d.RouteMSI(q.unit, q.in, p); err != nil {
		return err
	}
	q.routed = true
	return nil
}

// serve starts the goroutine that hands the vector's interrupts to d.
func (q *assignIRQ) serve(d *passthrough.Device) {
	q.quit, q.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(q.done)
		d.Serve(passthrough.HostVector{
			Count: func() uint32 { return metal.DeviceInterrupts(q.vec) },
			Wait: func(seen uint32, timeout time.Duration) (uint32, error) {
				return metal.WaitDeviceInterrupt(q.vec, seen, timeout)
			},
		}, q.quit, q.fail)
	}()
}

func (q *assignIRQ) fail(err error) {
	q.mu.Lock()
	q.errs = append(q.errs, err.Error())
	q.mu.Unlock()
}

// stop ends the delivering goroutine (the partition has ended).
func (q *assignIRQ) stop() {
	if q == nil || q.quit == nil {
		return
	}
	close(q.quit)
	<-q.done
	q.quit = nil
}

// free gives back what the device did not take over; the vector last,
// once the device's MSI is off (Release) or was never on.
func (q *assignIRQ) free() {
	if q == nil {
		return
	}
	q.stop()
	if !q.routed {
		q.unit.FreeInterrupt(q.in)
	}
	metal.FreeDeviceVector(q.vec)
}

// verdict checks what the guest and the host saw: the device's one
// legitimate interrupt delivered (at its vector, into the guest as vector
// testguests.EduVector), both hostile messages written and neither
// reaching anything — the guest, the device's vector, a stray host
// vector — except the compatibility-format one on a unit known to pass
// it. The interrupt faults the unit recorded (none on QEMU 7.2's units,
// which record none) are counted.
func (q *assignIRQ) verdict(res testguests.EduResult, d *passthrough.Device, faults []iommu.Fault) (string, error) {
	q.mu.Lock()
	errs := strings.Join(q.errs, "; ")
	q.mu.Unlock()
	if errs != "" {
		return "", fmt.Errorf("delivering the device's interrupts: %s", errs)
	}
	host := metal.DeviceInterrupts(q.vec) - q.host0
	st := d.MSIStats()
	stray := metal.StrayInterrupts() - q.stray0
	switch {
	case res.InterruptsAt != 1 || res.Interrupts != 1:
		return "", fmt.Errorf("the guest took %d interrupts at the raise and %d in all, want 1 and 1", res.InterruptsAt, res.Interrupts)
	case host != 1 || st.Delivered != 1:
		return "", fmt.Errorf("the device's vector %#x fired %d times and %d were delivered (%+v), want 1: a hostile message reached the device's entry", q.vec, host, st.Delivered, st)
	case res.HostileDone != 2:
		return "", fmt.Errorf("the guest's hostile DMAs: %d of 2 done", res.HostileDone)
	}
	compat := "blocked"
	if stray != 0 {
		c, ok := q.unit.(interface{ CompatibilityFormatPasses() (bool, string) })
		passes, why := false, ""
		if ok {
			passes, why = c.CompatibilityFormatPasses()
		}
		if !passes || stray != 1 {
			return "", fmt.Errorf("%d interrupts reached the host at vectors nobody holds (the compatibility-format message was to %#x): the device escaped interrupt remapping", stray, q.bait)
		}
		compat = fmt.Sprintf("reached-host compat-why=%q", why)
	}
	var intFaults []string
	for _, f := range faults {
		if f.Interrupt {
			intFaults = append(intFaults, f.Reason)
		}
	}
	recorded := fmt.Sprintf("interrupt-faults=%d", len(intFaults))
	if len(intFaults) != 0 {
		recorded += fmt.Sprintf(" interrupt-fault-reasons=%q", strings.Join(intFaults, "; "))
	}
	return fmt.Sprintf("msi=remapped host-vector=%#x host-apic=%d entry=%d guest-vector=%#x guest-interrupts=%d irq-ticks=%d "+
		"control=delivered hostile-compat=%#x/%#x:%s hostile-foreign=%#x/%#x:blocked %s",
		q.vec, q.in.Target.APICID, q.in.Index, testguests.EduVector, res.Interrupts, res.IRQTicks,
		q.compat[0], q.compat[1], compat, q.foreign[0], q.foreign[1], recorded), nil
}
