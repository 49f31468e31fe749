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
	PTENX       = 1 << 63
)

// PageSize is the base page size.
const PageSize = 4096
