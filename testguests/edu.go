package testguests

import (
	"encoding/binary"
	"fmt"

	"gohv/hv"
)

// The device-assignment test guest (edu_amd64.s) owns QEMU's edu PCI
// device (root/passthrough puts it on the partition's bus 0): it finds
// 1234:11e8 through the configuration ports (step 1), reads BAR0 (2),
// sizes it — all ones read back as the 1 MiB mask — and writes it back
// (3), turns on memory space and bus master, reads the identification
// register (4), DMAs 2 KiB of a pattern from its RAM at 0x200000 into the
// device's buffer (5) and back out to 0x201000 (6), compares (7),
// relocates BAR0 256 MiB up and reads the identification register there
// (8), then has the device write its buffer to the GPA the root left in
// EduParams (9) and read from it (10): that GPA is outside its RAM, so
// the IOMMU refuses both. With EduOptions.Interrupts it goes on: it finds
// the device's MSI capability (11), programs it with vector 0x30 for its
// own local APIC (ID 0) and enables it, software-enables the local APIC
// and IF (12), has the device raise its interrupt (edu register 0x60) and
// waits for vector 0x30 (13; Load's handler counts it in R15), acks it
// (0x64), then, hostile, has the device write by DMA the root's two
// messages into the interrupt window — a compatibility-format one (14)
// and one naming a remapping entry that is not the device's (15) — and
// waits to see that neither made its own vector fire (16). Exit status 0
// when every step passed, else the step that failed; every wait for the
// device is bounded.

// EduParams is the guest-physical page the root and the guest share.
const EduParams = 0x300000

// EduResult is what the guest leaves in EduParams.
type EduResult struct {
	BAR0       uint64 // where it found (and then moved) BAR0
	Slot       uint64 // its device number on bus 0
	ToDevice   uint64 // TSC ticks of the DMA from its RAM into the device
	FromDevice uint64 // TSC ticks of the DMA from the device into its RAM
	// With EduOptions.Interrupts:
	MSICap       uint64 // the MSI capability's offset it found
	IRQTicks     uint64 // TSC ticks from the raise to its handler's count
	Interrupts   uint64 // vector 0x30 and 0x31 interrupts it took in all
	HostileDone  uint64 // hostile DMAs that completed (2 when both did)
	InterruptsAt uint64 // interrupts it had taken right after the legitimate one
}

// EduVector is the vector the guest programs its MSI with.
const EduVector = 0x30

// EduOptions are the edu guest's parameters.
type EduOptions struct {
	// Outside is the GPA outside its RAM it DMAs to and from (steps 9, 10).
	Outside uint64
	// Interrupts runs steps 11-16: the device's MSI, then the hostile
	// messages.
	Interrupts bool
	// Compat and Foreign are the hostile messages (address, data) the
	// device writes into the interrupt window in steps 14 and 15.
	Compat, Foreign [2]uint64
}

// Parameter page words (edu_amd64.s reads them at these offsets).
const (
	eduPOutside    = 0
	eduPFlags      = 6
	eduPMSICap     = 7
	eduPIRQTicks   = 8
	eduPInterrupts = 9
	eduPCompat     = 10 // address, data
	eduPForeign    = 12 // address, data
	eduPHostile    = 14
	eduPIntAt      = 15
	eduPWords      = 16
	eduFlagIRQ     = 1
)

func eduGuest()
func eduGuestAddr() uintptr

// LoadEdu loads the edu guest into p with the long-mode environment (see
// Load) and its parameters.
func LoadEdu(p *hv.Partition, o EduOptions) error {
	if err := Load(p, Halt, Options{}); err != nil {
		return err
	}
	c, err := textAt(eduGuestAddr())
	if err != nil {
		return fmt.Errorf("testguests: edu guest: %w", err)
	}
	if err := p.Mem.WriteRAM(CodeBase, c); err != nil {
		return err
	}
	w := make([]uint64, eduPWords)
	w[eduPOutside] = o.Outside
	if o.Interrupts {
		w[eduPFlags] = eduFlagIRQ
	}
	w[eduPCompat], w[eduPCompat+1] = o.Compat[0], o.Compat[1]
	w[eduPForeign], w[eduPForeign+1] = o.Foreign[0], o.Foreign[1]
	return writeU64s(p.Mem, EduParams, w)
}

// ReadEduResult reads what the guest left.
func ReadEduResult(p *hv.Partition) (EduResult, error) {
	var b [8 * eduPWords]byte
	if err := p.Mem.ReadRAM(EduParams, b[:]); err != nil {
		return EduResult{}, err
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	return EduResult{BAR0: u(1), Slot: u(2), ToDevice: u(4), FromDevice: u(5),
		MSICap: u(eduPMSICap), IRQTicks: u(eduPIRQTicks), Interrupts: u(eduPInterrupts),
		HostileDone: u(eduPHostile), InterruptsAt: u(eduPIntAt)}, nil
}
