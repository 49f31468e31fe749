package devices

// ResetVector is the real-mode reset vector, F000:FFF0 (physical 0xFFFF0):
// where a PC's BIOS takes over after a reset, and where Linux jumps to
// reboot "through the BIOS". A partition has no BIOS; the Linux
// partitions get ResetVectorCode there, in the BIOS area their E820 map
// reserves.
const ResetVector = 0xffff0

// resetVectorCode resets the partition through the reset control
// register and, should it run on, halts for good: 16-bit code, 16 bytes
// at most so that it ends at 1 MiB.
var resetVectorCode = [...]byte{
	0xba, ResetControlPort & 0xff, ResetControlPort >> 8, // mov dx, ResetControlPort
	0xb0, ResetValue, // mov al, ResetValue
	0xee,       // out dx, al
	0xfa,       // cli
	0xf4,       // hlt
	0xeb, 0xfd, // jmp short to the hlt
}

// ResetVectorCode returns the code for ResetVector: it writes ResetValue
// to the reset control register (PCIConfig), which reboots the partition.
//
// Why a Linux partition needs it: Linux reboots the way the firmware
// suggests, and on a hardware-reduced ACPI platform (the FADT's
// HW_REDUCED_ACPI, which acpitables sets) it prefers EFI's ResetSystem
// over the FADT's reset register (x86 reboot_init: efi_reboot_required()
// is true there; only a reboot= or efi=noruntime word on the command line
// changes that). Booted without EFI, efi_reboot returns at once, and the next
// method is BOOT_BIOS: machine_real_restart drops to real mode and jumps
// to F000:FFF0, never to return — the reset register and the 8042 that
// follow in its list are never tried. Without code there the guest runs
// whatever the BIOS area holds (zeros: it spins in real mode) instead of
// rebooting.
func ResetVectorCode() []byte {
	b := resetVectorCode
	return b[:]
}
