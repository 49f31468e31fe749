package metal

// Fault injection, for the image tests only (tools/imagetest TestBadInput).
// A kernel command-line word inject=NAME makes the image damage its own real
// input, or misbehave on purpose, so the test can check that each failure
// ends in a FAIL verdict that says what went wrong:
//
//	inject=mmap-missing     metal ignores the boot loader's memory map
//	inject=mmap-truncated   metal sees the memory map 10 bytes short
//	inject=syscall-unknown  the program calls UnknownSyscall
//	inject=exception        the program faults on purpose (#GP) in a goroutine
//
// metal applies the first two itself, while it parses the boot information;
// the program (cmd/gohv) asks FaultInjection for the others. Without inject=
// words none of this changes anything. Everything here but the exported
// functions runs before the Go runtime, with interrupts off, and must not
// allocate.

// injectFlags is the set of inject= words, kept as bits so the boot parsers
// can take it before the runtime exists.
type injectFlags uint32

const (
	injectMmapMissing injectFlags = 1 << iota
	injectMmapTruncated
	injectSyscallUnknown
	injectException
)

// inject holds the words of this boot's command line; kmain sets it before
// parsing the memory map.
var inject injectFlags

// parseInject collects the inject= words of a command line; other words,
// and inject= words it does not know, are ignored. It runs before package
// initialisers, so the words are constants in a switch, not a table.
func parseInject(cmd []byte) injectFlags {
	var f injectFlags
	for _, word := range fields(cmd) {
		switch {
		case hasWord(word, "inject=mmap-missing"):
			f |= injectMmapMissing
		case hasWord(word, "inject=mmap-truncated"):
			f |= injectMmapTruncated
		case hasWord(word, "inject=syscall-unknown"):
			f |= injectSyscallUnknown
		case hasWord(word, "inject=exception"):
			f |= injectException
		}
	}
	return f
}

// hideMmap reports whether the parsers must act as if the boot loader had
// passed no memory map.
func (f injectFlags) hideMmap() bool { return f&injectMmapMissing != 0 }

// truncateMmap returns the length n bytes of memory map should be read as:
// 10 bytes short under inject=mmap-truncated (when the map is longer than
// that), else n.
func (f injectFlags) truncateMmap(n uint64) uint64 {
	if f&injectMmapTruncated != 0 && n > 10 {
		return n - 10
	}
	return n
}

// Faults says which test-only faults the kernel command line asked for.
type Faults struct {
	// MmapMissing and MmapTruncated were applied by metal at boot: a boot
	// with either ends in a FAIL verdict before the program runs.
	MmapMissing, MmapTruncated bool
	// SyscallUnknown asks the program to call UnknownSyscall and report
	// the result as a FAIL verdict.
	SyscallUnknown bool
	// Exception asks the program to fault (#GP) in a goroutine: metal
	// turns that into SIGSEGV and the runtime's trace ends the run.
	Exception bool
}

// FaultInjection returns the faults this boot's inject= words asked for.
// For the image tests only; a normal boot has none.
func FaultInjection() Faults {
	return Faults{
		MmapMissing:    inject&injectMmapMissing != 0,
		MmapTruncated:  inject&injectMmapTruncated != 0,
		SyscallUnknown: inject&injectSyscallUnknown != 0,
		Exception:      inject&injectException != 0,
	}
}

// UnknownSyscall issues system call number nr, which no kernel implements,
// with SYSCALL and returns the raw result (-ENOSYS). For the image tests
// only (inject=syscall-unknown).
func UnknownSyscall(nr uintptr) int64 { return int64(rawSyscall6(nr, 0, 0, 0, 0, 0, 0)) }

// rawSyscall6 issues SYSCALL from ring 0 with the Linux register
// conventions (faultinject_amd64.s): the syscall package has no wrapper
// for a number that does not exist.
func rawSyscall6(num, a1, a2, a3, a4, a5, a6 uintptr) (ret uintptr)
