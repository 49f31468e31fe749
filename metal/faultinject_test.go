package metal

import "testing"

func TestParseInject(t *testing.T) {
	f := parseInject([]byte("gohv selftest inject=mmap-truncated  inject=syscall-unknown inject=bogus"))
	if f != injectMmapTruncated|injectSyscallUnknown {
		t.Errorf("flags %b", f)
	}
}

// TestFaultInjectionReportsEachWord checks that every command-line word
// reaches the program as its own field, and that no word means no fault.
func TestFaultInjectionReportsEachWord(t *testing.T) {
	defer func(saved injectFlags) { inject = saved }(inject)
	for _, c := range []struct {
		cmdline string
		want    Faults
	}{
		{"gohv selftest", Faults{}},
		{"inject=mmap-missing", Faults{MmapMissing: true}},
		{"inject=mmap-truncated", Faults{MmapTruncated: true}},
		{"inject=syscall-unknown", Faults{SyscallUnknown: true}},
		{"inject=exception", Faults{Exception: true}},
		{"inject=exception inject=syscall-unknown", Faults{SyscallUnknown: true, Exception: true}},
	} {
		inject = parseInject([]byte(c.cmdline))
		if got := FaultInjection(); got != c.want {
			t.Errorf("%q: %+v, want %+v", c.cmdline, got, c.want)
		}
	}
}

func TestTruncateMmapOnlyWhenAsked(t *testing.T) {
	if n := injectFlags(0).truncateMmap(96); n != 96 {
		t.Errorf("no injection: %d", n)
	}
	if n := injectMmapTruncated.truncateMmap(96); n != 86 {
		t.Errorf("truncated: %d", n)
	}
	if n := injectMmapTruncated.truncateMmap(10); n != 10 {
		t.Errorf("a map of 10 bytes or less is left alone: %d", n)
	}
}
