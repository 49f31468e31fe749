package metal

import (
	"gohv/metal/pagetable"
	"gohv/metal/physmem"
	"gohv/x86"
)

// The kernel's address space and its page frames: the layout, the
// physical-page allocator, and the page tables built at boot. Everything
// here runs with interrupts off and does not allocate.

// Address space. One set of page tables serves the kernel and the Go runtime:
//
//	[0, 64 KiB)                 not present: nil dereferences fault
//	[64 KiB, 4 GiB)             identity map (kernel image, boot data, MMIO)
//	[userBase, userLimit)       mmap window for the Go heap, backed on first touch
//	physmapBase + pa            every physical page (kernel access to frames)
const (
	nullGuard   = 64 << 10
	identityEnd = 4 << 30
	userBase    = 64 << 30
	userLimit   = 0x7f00_0000_0000
	physmapBase = 0xffff_8000_0000_0000

	pageSize = physmem.PageSize

	protNone  = 0
	protRead  = 1
	protWrite = 2
	protExec  = 4

	maxVMAs = 1024
)

var (
	pages       physmem.Allocator
	pageBits    [1 << 18]uint64 // one bit per 4 KiB page: 64 GiB of RAM
	kpt         pagetable.Table
	physBase    uint64 // 0 while the boot identity map is live, physmapBase after
	pageFlagsNX uint64

	// Demand-paging statistics.
	pagesBacked uint64
	pagesFreed  uint64
)

// kernelMem gives the page-table code its frames. Runs with interrupts off.
type kernelMem struct{}

func (kernelMem) AllocTable() (uint64, bool) {
	pa, ok := allocFrame()
	return pa, ok
}

// FreeTable defers the page's release to the next TLB shootdown
// (freeFrames): another CPU's paging-structure caches may still point at a
// table the unmap emptied, and walk it after it is reused.
func (kernelMem) FreeTable(pa uint64) {
	if tablesPending == len(pendingTables) {
		shootdown()
		freePendingTables()
	}
	pendingTables[tablesPending] = pa
	tablesPending++
}

// Page-table pages freed by an unmap and waiting for a shootdown.
var (
	pendingTables [64]uint64
	tablesPending int
)

// freePendingTables frees them; the caller has done the shootdown.
func freePendingTables() {
	for _, pa := range pendingTables[:tablesPending] {
		pages.Free(pa)
	}
	tablesPending = 0
}

func (kernelMem) Table(pa uint64) *[512]uint64 {
	return (*[512]uint64)(x86.Ptr(uintptr(physBase + pa)))
}

// allocFrame returns a zeroed physical page. Runs with interrupts off; must
// not allocate.
func allocFrame() (uint64, bool) {
	var pa uint64
	var ok bool
	if physBase == 0 {
		pa, ok = pages.AllocBelow(identityEnd)
	} else {
		pa, ok = pages.Alloc()
	}
	if !ok {
		return 0, false
	}
	clear((*[pageSize]byte)(x86.Ptr(uintptr(physBase + pa)))[:])
	return pa, true
}

// initMemory builds the page allocator and the kernel's own page tables.
func initMemory() {
	// Never hand out the first MiB (BIOS, boot loader), the image or the
	// boot modules.
	boot.ram.Reserve(imageStart&^(pageSize-1), imageEnd)
	reserveBootModules(&boot, &boot.ram)
	chooseTrampolinePage() // in the first MiB, which no one else uses after boot
	boot.ram.Reserve(0, 1<<20)
	ram := boot.ram
	if ram.Highest() > uint64(len(pageBits))*64*pageSize {
		kputs("gohv: RAM above 64 GiB is ignored\n")
		ram.Reserve(uint64(len(pageBits))*64*pageSize, ram.Highest())
	}
	if !pages.Init(&ram, pageBits[:physmem.BitmapWords(ram.Highest())]) {
		fatal("memory map: page bitmap too small")
	}
	if hasNX {
		x86.WRMSR(x86.MsrEFER, x86.RDMSR(x86.MsrEFER)|x86.EFERNXE)
		pageFlagsNX = pagetable.NoExecute
	}
	t, ok := pagetable.New(kernelMem{})
	if !ok {
		fatal("memory: no page for the kernel's PML4")
	}
	kpt = t
	rw := pagetable.Present | pagetable.Writable
	if !kpt.Map(kernelMem{}, nullGuard, nullGuard, identityEnd-nullGuard, rw, x86.PageSize2M) {
		fatal("memory: cannot build the identity map")
	}
	maxPage := uint64(x86.PageSize2M)
	if has1GPages {
		maxPage = x86.PageSize1G
	}
	top := max(ram.Highest(), identityEnd)
	if !kpt.Map(kernelMem{}, physmapBase, 0, top, rw|pageFlagsNX, maxPage) {
		fatal("memory: cannot build the physical map")
	}
	x86.WriteCR3(kpt.Root)
	physBase = physmapBase
}
