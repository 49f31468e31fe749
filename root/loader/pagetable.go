package loader

import (
	"encoding/binary"

	"gohv/x86"
)

// pageTablesSize is the identity map's footprint: a PML4, a PDPT and one
// page directory per GiB of IdentityMapSize.
const pageTablesSize = (2 + IdentityMapSize/x86.PageSize1G) * x86.PageSize

// identityMap returns 4-level page tables, to be placed at base, that map
// [0, IdentityMapSize) linear to the same physical addresses with 2 MiB
// pages, present, writable, supervisor, cacheable (SDM Vol. 3A 4.5):
// PML4[0] -> the PDPT at base+4 KiB, PDPT[i] -> the page directory at
// base+(2+i)*4 KiB for each GiB i. The decompressor runs on them until it
// builds its own (compressed/ident_map_64.c), so they cover everything it
// touches first: low memory with the BIOS data area and its trampoline, the
// kernel's init_size, boot_params, the command line, the initrd.
func identityMap(base uint64) []byte {
	const pte = x86.PTEPresent | x86.PTEWrite
	b := make([]byte, pageTablesSize)
	le := binary.LittleEndian
	pdpt := base + x86.PageSize
	le.PutUint64(b[0:], pdpt|pte)
	for g := uint64(0); g < IdentityMapSize/x86.PageSize1G; g++ {
		pd := pdpt + (1+g)*x86.PageSize
		le.PutUint64(b[x86.PageSize+8*g:], pd|pte)
		off := pd - base
		for i := uint64(0); i < 512; i++ {
			le.PutUint64(b[off+8*i:], g*x86.PageSize1G+i*x86.PageSize2M|pte|x86.PTEPS)
		}
	}
	return b
}
