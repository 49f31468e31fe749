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
// the IOMMU refuses both. Exit status 0 when every step passed, else the
// step that failed; every wait for the device is bounded.

// EduParams is the guest-physical page the root and the guest share.
const EduParams = 0x300000

// EduResult is what the guest leaves in EduParams.
type EduResult struct {
	BAR0       uint64 // where it found (and then moved) BAR0
	Slot       uint64 // its device number on bus 0
	ToDevice   uint64 // TSC ticks of the DMA from its RAM into the device
	FromDevice uint64 // TSC ticks of the DMA from the device into its RAM
}

func eduGuest()
func eduGuestAddr() uintptr

// LoadEdu loads the edu guest into p with the long-mode environment (see
// Load) and the GPA it DMAs to outside its RAM.
func LoadEdu(p *hv.Partition, outside uint64) error {
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
	return writeU64s(p.Mem, EduParams, []uint64{outside, 0, 0, 0, 0, 0})
}

// ReadEduResult reads what the guest left.
func ReadEduResult(p *hv.Partition) (EduResult, error) {
	var b [48]byte
	if err := p.Mem.ReadRAM(EduParams, b[:]); err != nil {
		return EduResult{}, err
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	return EduResult{BAR0: u(1), Slot: u(2), ToDevice: u(4), FromDevice: u(5)}, nil
}
