package x86

// Page-table entry bits shared by every paging mode's entries (SDM Vol. 3A
// 4.3-4.5).
const (
	PTEPresent  = 1 << 0
	PTEWrite    = 1 << 1
	PTEUser     = 1 << 2
	PTEPWT      = 1 << 3
	PTEPCD      = 1 << 4
	PTEAccessed = 1 << 5
	PTEDirty    = 1 << 6
	PTEPS       = 1 << 7 // page size, in a PDE or PDPTE
	PTEPAT      = 1 << 7 // PAT, in a 4 KiB PTE
	PTEGlobal   = 1 << 8
	PTEPATLarge = 1 << 12 // PAT, in a PDE or PDPTE that maps a page
	PTENX       = 1 << 63

	// PTEAddrMask selects the physical address in an entry, for
	// MAXPHYADDR up to 52.
	PTEAddrMask = 0x000f_ffff_ffff_f000
)

// Page sizes: a PTE maps a 4 KiB page, a PDE with PS a 2 MiB page, a PDPTE
// with PS a 1 GiB page.
const (
	PageSize   = 4096
	PageSize2M = 2 << 20
	PageSize1G = 1 << 30
)
