// Package loader puts a guest's kernel into a child partition's memory and
// gives the state its first VP starts in: the root partition's work, as in
// Hyper-V's worker process and OpenVMM's vm/loader, done before the
// partition runs.
//
// Two boot protocols:
//
//   - Linux, 64-bit boot protocol (Documentation/x86/boot.rst): LoadLinux
//     takes a bzImage as distributed (Debian's /boot/vmlinuz-*), an
//     optional initrd, a command line, the ACPI RSDP's address and the
//     platform's reserved ranges, and writes the protected-mode kernel,
//     boot_params (the zero page) with an E820 map, the command line, the
//     initrd, a GDT and identity-mapping page tables; VP 0 then starts in
//     long mode at the kernel's 64-bit entry with RSI pointing at
//     boot_params. ParseSetupHeader reads and checks the image's setup
//     header; E820 builds the memory map.
//   - Multiboot (v1): LoadMultiboot, for the project's own test kernels,
//     in 32-bit protected mode; ParseMultiboot reads the header.
//
// # Invariants
//
// Kernel images are hostile input. ParseSetupHeader and ParseMultiboot
// check every offset and size a file gives against the file before using
// it and never panic (FuzzParseSetupHeader, FuzzParseMultiboot); every
// address a kernel asks for is checked against the partition's RAM before
// anything is written. Everything LoadLinux writes lies below 4 GiB, inside
// the identity map it builds. It never writes outside RAM (Memory refuses),
// never below LowRAMEnd except its own data at fixed places, and leaves the
// two pages under LowRAMEnd free for the decompressor's trampoline. The
// boot_params sentinel stays 0, so Linux keeps the fields the loader set
// (sanitize_boot_params), and type_of_loader is 0xFF, so it keeps the
// initrd (reserve_initrd).
//
// # Failure
//
// Errors are values naming the field at fault: "bzimage: version (0x206):
// boot protocol 2.11 (0x020b) is older than 2.12", "bzimage: the file is
// 16384 bytes, setup_sects (39) and syssize (0x7d820) say 8245760: 8229376
// bytes missing", "linux: partition memory too small: ... give the partition
// at least 96 MiB of RAM". Callers branch with errors.Is on ErrNotBzImage
// (try another format), ErrTruncated (a damaged file), ErrMemoryTooSmall and
// ErrE820TooLarge. A failed load may leave partial writes in the memory;
// the partition must not be started with the returned registers.
//
// # Memory layout of a Linux partition
//
//	guest-physical          what                                              E820
//	0x00000-0x00fff         real-mode IVT (zeros) and BIOS data area:         RAM
//	                        0x40E EBDA segment 0 (none), 0x413 base memory
//	                        636 KiB (= LowRAMEnd; Linux clamps to 0x9F000)
//	0x01000-0x0101f         GDT: null, null, __BOOT_CS 0x10 (64-bit code),    RAM
//	                        __BOOT_DS 0x18 (data), flat 4 GiB
//	0x07000-0x07fff         boot_params (zero page); RSI at entry             RAM
//	0x09000-0x0efff         page tables: PML4, PDPT, 4 page directories;      RAM
//	                        [0, 4 GiB) identity-mapped with 2 MiB pages; CR3
//	0x20000-0x2ffff         command line, NUL-terminated (<= cmdline_size)    RAM
//	0x9d000-0x9efff         free: the decompressor's trampoline lands here    RAM
//	0x9f000-0xfffff         legacy area (the platform's: ACPI tables, ROMs)   reserved, or a Reserved range's type
//	load .. load+init_size  protected-mode kernel (syssize*16 bytes of the    RAM
//	                        file after its setup sectors), then the
//	                        decompressor's buffer; RIP = load + 0x200.
//	                        load = pref_address (16 MiB for Debian), else the
//	                        lowest kernel_alignment-aligned RAM at or above
//	                        max(pref_address, 16 MiB) that holds init_size
//	initrd                  the highest page-aligned place in the lowest RAM  RAM
//	                        range below initrd_addr_max (and above 1 MiB)
//	                        that holds it outside the kernel's init_size
//	Linux.Reserved          as the platform gives them (MMIO, ACPI)           their type
//
// The low pages (GDT, boot_params, page tables, command line) are E820
// RAM, not reserved: Linux copies boot_params and the command line before it
// allocates anything, and runs on its own GDT and page tables from the
// decompressor on, so it may reuse them. KASLR puts the kernel no lower
// than min(load, 512 MiB) (compressed/kaslr.c choose_random_location), so
// never into low memory, and it avoids the initrd, boot_params and the
// command line.
//
// # Concurrency
//
// None: each call works on the memory it is given, before the partition
// runs.
package loader
