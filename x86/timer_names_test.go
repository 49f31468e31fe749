package x86

import "testing"

// TestLAPICTimerNumbersMatchTheManual pins the local APIC timer's register
// offsets (SDM Vol. 3A Table 11-1), divide values (Figure 11-10), the LVT
// mask bit (Figure 11-8), the count's width and the TSC-deadline disarm
// value (11.5.4, 11.5.4.1), written here in decimal or binary apart from
// the definitions.
func TestLAPICTimerNumbersMatchTheManual(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"Initial Count Register", LAPICTimerInitialCount, 896},
		{"Current Count Register", LAPICTimerCurrentCount, 912},
		{"Divide Configuration Register", LAPICTimerDivideConfig, 992},
		{"divide by 1", LAPICTimerDivideBy1, 11},
		{"divide by 2", LAPICTimerDivideBy2, 0},
		{"divide by 4", LAPICTimerDivideBy4, 1},
		{"divide by 8", LAPICTimerDivideBy8, 2},
		{"divide by 16", LAPICTimerDivideBy16, 3},
		{"divide by 32", LAPICTimerDivideBy32, 8},
		{"divide by 64", LAPICTimerDivideBy64, 9},
		{"divide by 128", LAPICTimerDivideBy128, 10},
		{"LVT mask bit", LAPICLVTMask, 16},
		{"largest initial count", LAPICTimerMaxCount, 1<<32 - 1},
		{"IA32_TSC_DEADLINE disarm", TSCDeadlineDisarm, 0},
		{"IA32_TSC_DEADLINE", MsrTSCDeadline, 1760},
		{"CPUID.1:ECX TSC-deadline bit", CPUID1ECXTSCDeadline, 1 << 24},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the manual says %#x", c.name, c.got, c.want)
		}
	}
}

// TestLAPICTimerDivideValuesFollowTheirPattern checks the divide values
// against the rule of Figure 11-10 itself: bits 3,1,0 read as a 3-bit
// number n (bit 3 high) divide by 2^(n+1), with 111b meaning 1.
func TestLAPICTimerDivideValuesFollowTheirPattern(t *testing.T) {
	for v, div := range map[uint32]uint32{
		LAPICTimerDivideBy1: 1, LAPICTimerDivideBy2: 2, LAPICTimerDivideBy4: 4, LAPICTimerDivideBy8: 8,
		LAPICTimerDivideBy16: 16, LAPICTimerDivideBy32: 32, LAPICTimerDivideBy64: 64, LAPICTimerDivideBy128: 128,
	} {
		if v&0b0100 != 0 {
			t.Errorf("divide value %#b sets reserved bit 2", v)
		}
		n := v>>1&0b100 | v&0b11
		want := uint32(2) << n
		if n == 0b111 {
			want = 1
		}
		if want != div {
			t.Errorf("divide value %#b divides by %d, named for %d", v, want, div)
		}
	}
}
