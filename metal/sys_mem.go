package metal

// mmap, munmap and madvise over the VMA list (vma.go). The Go runtime reserves
// large PROT_NONE ranges and commits pieces with MAP_FIXED; nothing is backed
// until touched. Runs with interrupts off; must not allocate.

const (
	mapShared         = 0x01
	mapPrivate        = 0x02
	mapFixed          = 0x10
	mapAnonymous      = 0x20
	mapFixedNoReplace = 0x100000

	madvDontneed = 4
	madvFree     = 8
)

func sysMmapImpl(addr, length, prot, flags, fd uint64) uint64 {
	if length == 0 || flags&mapAnonymous == 0 || int64(fd) != -1 && fd != 0xffffffff {
		if flags&mapAnonymous == 0 {
			return errno(ENODEV)
		}
		return errno(EINVAL)
	}
	n := (length + pageSize - 1) &^ (pageSize - 1)
	if n < length {
		return errno(ENOMEM)
	}
	p := uint8(protNone)
	if prot&(protRead|protWrite|protExec) != 0 {
		p = protRead | protWrite // the kernel does not split read-only from read-write
	}
	var start uint64
	if flags&mapFixed != 0 {
		if addr&(pageSize-1) != 0 || addr < userBase || addr+n > userLimit || addr+n < addr {
			return errno(EINVAL)
		}
		if !vmaRemove(addr, addr+n) {
			return errno(ENOMEM)
		}
		start = addr
	} else {
		hint := addr &^ (pageSize - 1)
		if hint >= userBase && hint+n <= userLimit && hint+n > hint && rangeFree(hint, hint+n) {
			start = hint
		} else {
			s, ok := findGap(n, pageSize)
			if !ok {
				return errno(ENOMEM)
			}
			start = s
		}
	}
	if !vmaInsert(start, start+n, p) {
		return errno(ENOMEM)
	}
	return start
}

func sysMunmapImpl(addr, length uint64) uint64 {
	n := (length + pageSize - 1) &^ (pageSize - 1)
	if addr&(pageSize-1) != 0 || n == 0 || addr+n < addr {
		return errno(EINVAL)
	}
	if addr >= userLimit || addr+n <= userBase {
		return errno(EINVAL)
	}
	if !vmaRemove(addr, addr+n) {
		return errno(ENOMEM)
	}
	return 0
}

// madvise(DONTNEED|FREE) gives the frames back; the pages read as zero when
// touched again, which is what Linux does for private anonymous memory.
func sysMadviseImpl(addr, length, advice uint64) uint64 {
	if addr&(pageSize-1) != 0 || addr+length < addr {
		return errno(EINVAL)
	}
	switch advice {
	case madvDontneed, madvFree:
		end := (addr + length + pageSize - 1) &^ (pageSize - 1)
		for i := 0; i < nvmas; i++ {
			v := vmas[i]
			if v.end <= addr || v.start >= end || v.prot == protNone {
				continue
			}
			releaseFrames(max(v.start, addr), min(v.end, end))
		}
	}
	return 0
}
