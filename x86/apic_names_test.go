package x86

import "testing"

// TestX2APICMSRsMatchTheManual pins each x2APIC MSR index to SDM Vol. 3A
// Table 11-6 (and SDM Vol. 4 Table 2-2), the values written out in decimal
// so a slip in the hexadecimal definitions cannot repeat itself here.
func TestX2APICMSRsMatchTheManual(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"IA32_X2APIC_APICID", MsrX2APICID, 2050},
		{"IA32_X2APIC_VERSION", MsrX2APICVersion, 2051},
		{"IA32_X2APIC_TPR", MsrX2APICTPR, 2056},
		{"IA32_X2APIC_PPR", MsrX2APICPPR, 2058},
		{"IA32_X2APIC_EOI", MsrX2APICEOI, 2059},
		{"IA32_X2APIC_LDR", MsrX2APICLDR, 2061},
		{"IA32_X2APIC_SIVR", MsrX2APICSIVR, 2063},
		{"IA32_X2APIC_ISR0", MsrX2APICISR0, 2064},
		{"IA32_X2APIC_TMR0", MsrX2APICTMR0, 2072},
		{"IA32_X2APIC_IRR0", MsrX2APICIRR0, 2080},
		{"IA32_X2APIC_ESR", MsrX2APICESR, 2088},
		{"IA32_X2APIC_LVT_CMCI", MsrX2APICLVTCMCI, 2095},
		{"IA32_X2APIC_ICR", MsrX2APICICR, 2096},
		{"IA32_X2APIC_LVT_TIMER", MsrX2APICLVTTimer, 2098},
		{"IA32_X2APIC_LVT_THERMAL", MsrX2APICLVTThermal, 2099},
		{"IA32_X2APIC_LVT_PMI", MsrX2APICLVTPMI, 2100},
		{"IA32_X2APIC_LVT_LINT0", MsrX2APICLVTLINT0, 2101},
		{"IA32_X2APIC_LVT_LINT1", MsrX2APICLVTLINT1, 2102},
		{"IA32_X2APIC_LVT_ERROR", MsrX2APICLVTError, 2103},
		{"IA32_X2APIC_INIT_COUNT", MsrX2APICInitCount, 2104},
		{"IA32_X2APIC_CUR_COUNT", MsrX2APICCurCount, 2105},
		{"IA32_X2APIC_DIV_CONF", MsrX2APICDivConf, 2110},
		{"IA32_X2APIC_SELF_IPI", MsrX2APICSelfIPI, 2111},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the manual says %#x", c.name, c.got, c.want)
		}
	}
	// Every x2APIC register lies in the architectural MSR window.
	for _, m := range []uint64{MsrX2APICID, MsrX2APICSelfIPI} {
		if m < MsrX2APICBase || m > MsrX2APICLast {
			t.Errorf("%#x lies outside the x2APIC MSR range", m)
		}
	}
}
