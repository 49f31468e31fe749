package metal

import "testing"

func TestMmapReservesWithoutBacking(t *testing.T) {
	setupKernel(t)
	free := pages.FreePages()
	a := sys(sysMmap, 0, 64<<20, protNone, mapPrivate|mapAnonymous, ^uint64(0), 0)
	if int64(a) < 0 || a < userBase {
		t.Fatalf("mmap = %#x", a)
	}
	// Commit a piece with MAP_FIXED, as the runtime's sysMap does.
	c := sys(sysMmap, a+4<<20, 4<<20, protRead|protWrite, mapPrivate|mapAnonymous|mapFixed, ^uint64(0), 0)
	if c != a+4<<20 {
		t.Fatalf("MAP_FIXED = %#x, want %#x", c, a+4<<20)
	}
	if nvmas != 3 {
		t.Errorf("%d VMAs, want 3 (none, rw, none)", nvmas)
	}
	if pages.FreePages() != free {
		t.Errorf("mmap used %d frames before any touch", free-pages.FreePages())
	}
	if handleUserFault(a, false) != faultSegv {
		t.Error("fault in PROT_NONE reservation was not SIGSEGV")
	}
	if handleUserFault(c+123, true) != faultFixed {
		t.Fatal("fault in committed memory not backed")
	}
	// Another CPU took the same not-present fault and waited for the
	// kernel lock: the page is present now, and its access is retried.
	free2 := pages.FreePages()
	if handleUserFault(c+123, true) != faultFixed || pages.FreePages() != free2 {
		t.Error("a not-present fault on a page backed meanwhile was not retried, or backed again")
	}
	// madvise(DONTNEED) releases the frame; munmap drops the region.
	if r := sys(sysMadvise, c, 4<<20, madvDontneed); r != 0 {
		t.Fatalf("madvise = %d", int64(r))
	}
	if _, _, _, ok := kpt.Lookup(kernelMem{}, c); ok {
		t.Error("page still mapped after MADV_DONTNEED")
	}
	if r := sys(sysMunmap, a, 64<<20); r != 0 || nvmas != 0 {
		t.Errorf("munmap = %d, %d VMAs left", int64(r), nvmas)
	}
}

func TestMmapHintUsedOnlyWhenFree(t *testing.T) {
	setupKernel(t)
	hint := uint64(0x3000_0000_0000)
	if a := sys(sysMmap, hint, 1<<20, protNone, mapPrivate|mapAnonymous, ^uint64(0), 0); a != hint {
		t.Fatalf("free hint not used: %#x", a)
	}
	if a := sys(sysMmap, hint, 1<<20, protNone, mapPrivate|mapAnonymous, ^uint64(0), 0); a == hint {
		t.Fatal("overlapping hint reused")
	}
	if a := sys(sysMmap, 0x1000, 1<<20, protNone, mapPrivate|mapAnonymous, ^uint64(0), 0); a < userBase {
		t.Fatalf("hint below the user window honoured: %#x", a)
	}
	if r := sys(sysMmap, 0, 4096, protRead, mapPrivate, 3, 0); r != errno(ENODEV) {
		t.Errorf("file mapping = %d, want ENODEV", int64(r))
	}
	if r := sys(sysMmap, 0x1000, 4096, protRead, mapPrivate|mapAnonymous|mapFixed, ^uint64(0), 0); r != errno(EINVAL) {
		t.Errorf("MAP_FIXED over the kernel = %d, want EINVAL", int64(r))
	}
}

func TestMunmapSplitsAndMergesRegions(t *testing.T) {
	setupKernel(t)
	a := sys(sysMmap, 0, 16*pageSize, protRead|protWrite, mapPrivate|mapAnonymous, ^uint64(0), 0)
	sys(sysMunmap, a+4*pageSize, 4*pageSize)
	if nvmas != 2 || vmas[0].end != a+4*pageSize || vmas[1].start != a+8*pageSize {
		t.Fatalf("after hole: %v", vmas[:nvmas])
	}
	sys(sysMmap, a+4*pageSize, 4*pageSize, protRead|protWrite, mapPrivate|mapAnonymous|mapFixed, ^uint64(0), 0)
	if nvmas != 1 || vmas[0].start != a || vmas[0].end != a+16*pageSize {
		t.Fatalf("after refill: %v", vmas[:nvmas])
	}
}
