package loader

// struct boot_params, "the zero page" (Linux arch/x86/include/uapi/asm/
// bootparam.h, Documentation/x86/zero-page.rst): offsets of the fields
// the loader writes. TestBootParamsOffsets derives each from the C
// declaration.
const (
	bootParamsSize = 4096

	bpACPIRSDPAddr    = 0x070 // __u64 acpi_rsdp_addr
	bpExtRamdiskImage = 0x0c0 // __u32 ext_ramdisk_image: ramdisk_image bits 63:32
	bpExtRamdiskSize  = 0x0c4 // __u32 ext_ramdisk_size
	bpExtCmdLinePtr   = 0x0c8 // __u32 ext_cmd_line_ptr
	bpE820Entries     = 0x1e8 // __u8 e820_entries
	bpSentinel        = 0x1ef // __u8 sentinel: non-zero makes Linux wipe the fields above
	bpHdr             = 0x1f1 // struct setup_header hdr
	bpHdrAreaEnd      = 0x290 // end of _pad7, where edd_mbr_sig_buffer starts
	bpE820Table       = 0x2d0 // struct boot_e820_entry e820_table[128]

	e820EntrySize = 20 // struct boot_e820_entry {__u64 addr; __u64 size; __u32 type} packed
)

// struct setup_header (bootparam.h; Documentation/x86/boot.rst "THE REAL-
// MODE KERNEL HEADER"): offsets in the bzImage file, which equal the
// offsets in boot_params because hdr sits at 0x1F1 in both.
const (
	hdrSetupSects          = 0x1f1 // __u8 setup_sects: 512-byte sectors of setup code after the boot sector; 0 means 4
	hdrSysSize             = 0x1f4 // __u32 syssize: protected-mode code size in 16-byte paragraphs
	hdrBootFlag            = 0x1fe // __u16 boot_flag: 0xAA55
	hdrJump                = 0x200 // __u16 jump: EB xx; the header ends at 0x202 + xx
	hdrHeader              = 0x202 // __u32 header: "HdrS"
	hdrVersion             = 0x206 // __u16 version: boot protocol, major.minor as 0xMMmm
	hdrKernelVersion       = 0x20e // __u16 kernel_version: offset of the version string - 0x200
	hdrTypeOfLoader        = 0x210 // __u8 type_of_loader
	hdrLoadFlags           = 0x211 // __u8 loadflags
	hdrRamdiskImage        = 0x218 // __u32 ramdisk_image
	hdrRamdiskSize         = 0x21c // __u32 ramdisk_size
	hdrCmdLinePtr          = 0x228 // __u32 cmd_line_ptr
	hdrInitrdAddrMax       = 0x22c // __u32 initrd_addr_max: highest address the initrd may occupy
	hdrKernelAlignment     = 0x230 // __u32 kernel_alignment
	hdrRelocatableKernel   = 0x234 // __u8 relocatable_kernel
	hdrMinAlignment        = 0x235 // __u8 min_alignment: log2
	hdrXLoadFlags          = 0x236 // __u16 xloadflags
	hdrCmdlineSize         = 0x238 // __u32 cmdline_size: longest command line without its NUL
	hdrHardwareSubarch     = 0x23c // __u32 hardware_subarch
	hdrHardwareSubarchData = 0x240 // __u64 hardware_subarch_data
	hdrSetupData           = 0x250 // __u64 setup_data
	hdrPrefAddress         = 0x258 // __u64 pref_address
	hdrInitSize            = 0x260 // __u32 init_size
	hdrInitSizeEnd         = 0x264 // the last field the loader reads ends here
)

// Setup header values (boot.rst).
const (
	bootFlagMagic = 0xaa55
	headerMagic   = 0x53726448 // "HdrS"

	// MinProtocol is the oldest boot protocol LoadLinux accepts: 2.12
	// brought xloadflags, and with it XLF_KERNEL_64.
	MinProtocol = 0x020c

	loadFlagLoadedHigh = 1 << 0 // LOADED_HIGH: protected-mode code at 0x100000 (bzImage)
	loadFlagCanUseHeap = 1 << 7 // CAN_USE_HEAP: heap_end_ptr is valid (16-bit setup only)

	xlfKernel64 = 1 << 0 // XLF_KERNEL_64: a 64-bit entry point at +0x200

	typeOfLoaderUndefined = 0xff // boot.rst: "0xFF: undefined"

	entry64Offset = 0x200 // the 64-bit entry's offset in the protected-mode code ("ABI so immutable")
)
