package x86

import "testing"

// TestNumbersMatchTheManuals pins each architectural number to the value the
// Intel SDM or AMD APM gives, written here independently of the constant's
// definition, so a typo in either fails on the host.
func TestNumbersMatchTheManuals(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		// SDM Vol. 4 Table 2-2; APM Vol. 2 Appendix A.
		{"IA32_APIC_BASE", MsrAPICBase, 27},
		{"IA32_FEATURE_CONTROL", MsrFeatureControl, 58},
		{"IA32_SYSENTER_CS", MsrSysenterCS, 372},
		{"IA32_PAT", MsrPAT, 631},
		{"IA32_TSC_DEADLINE", MsrTSCDeadline, 1760},
		{"IA32_X2APIC_APICID", MsrX2APICBase + 2, 2050},
		{"IA32_EFER", MsrEFER, 3221225600},
		{"IA32_KERNEL_GS_BASE", MsrKernelGSBase, 3221225730},
		{"VM_CR", MsrAMDVMCR, 3221291284},
		{"VM_HSAVE_PA", MsrAMDVMHsavePA, 3221291287},
		{"IA32_VMX_BASIC", MsrVMXBasic, 1152},
		{"IA32_VMX_TRUE_ENTRY_CTLS", MsrVMXTrueEntry, 1168},
		{"IA32_VMX_EPT_VPID_CAP", MsrVMXEPTVPIDCap, 1164},
		// SDM Vol. 3A 2.5.
		{"CR0.PG", CR0PG, 0x8000_0000},
		{"CR0.CD", CR0CD, 0x4000_0000},
		{"CR0.WP", CR0WP, 0x1_0000},
		{"CR4.PAE", CR4PAE, 0x20},
		{"CR4.VMXE", CR4VMXE, 0x2000},
		{"CR4.LA57", CR4LA57, 0x1000},
		{"CR4.SMAP", CR4SMAP, 0x20_0000},
		{"EFER.LME", EFERLME, 0x100},
		{"EFER.LMA", EFERLMA, 0x400},
		{"EFER.NXE", EFERNXE, 0x800},
		{"EFER.SVME", EFERSVME, 0x1000},
		{"RFLAGS.IF", RFLAGSIF, 0x200},
		{"RFLAGS.DF", RFLAGSDF, 0x400},
		{"RFLAGS.AC", RFLAGSAC, 0x4_0000},
		// SDM Vol. 3A Table 6-1.
		{"#UD", VectorUD, 6},
		{"#DF", VectorDF, 8},
		{"#GP", VectorGP, 13},
		{"#PF", VectorPF, 14},
		{"#XM", VectorXM, 19},
		// CPUID bits, SDM Vol. 2A Table 3-10/3-11, APM Vol. 3 E.4.
		{"CPUID.1:ECX.VMX", CPUID1ECXVMX, 0x20},
		{"CPUID.1:ECX.X2APIC", CPUID1ECXX2APIC, 0x20_0000},
		{"CPUID.1:ECX.HYPERVISOR", CPUID1ECXHypervisor, 0x8000_0000},
		{"CPUID.1:EDX.APIC", CPUID1EDXAPIC, 0x200},
		{"CPUID.8000_0001:ECX.SVM", CPUIDExtECXSVM, 4},
		{"CPUID.8000_0001:EDX.LM", CPUIDExtEDXLM, 0x2000_0000},
		{"CPUID.8000_000A:EDX.NRIPS", CPUIDSVMNRIPSave, 8},
		// Paging.
		{"PTE.A", PTEAccessed, 0x20},
		{"PTE.PS", PTEPS, 0x80},
		{"PTE.XD", PTENX, 0x8000_0000_0000_0000},
		// Reset values.
		{"PAT reset", PATReset, 0x0007040600070406},
		{"DR7 reset", DR7Reset, 0x400},
		{"MXCSR reset", MXCSRReset, 0x1f80},
		{"FCW reset", FCWReset, 0x37f},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the manual says %#x", c.name, c.got, c.want)
		}
	}
}

// TestSegmentDescriptor encodes the flat descriptors every x86-64 kernel's
// GDT holds and decodes them back.
func TestSegmentDescriptor(t *testing.T) {
	code64 := uint16(SegTypeCodeXR | SegS | SegP | SegL | SegG)
	data := uint16(SegTypeDataRW | SegS | SegP | SegDB | SegG)
	code32 := uint16(SegTypeCodeXR | SegS | SegP | SegDB | SegG)
	for _, c := range []struct {
		name   string
		attrib uint16
		want   uint64
	}{
		{"64-bit code", code64, 0x00af9a000000ffff},
		{"flat data", data, 0x00cf92000000ffff},
		{"32-bit code", code32, 0x00cf9a000000ffff},
	} {
		d := SegmentDescriptor(0, 0xfffff, c.attrib)
		if d != c.want {
			t.Errorf("%s: %#016x, want %#016x", c.name, d, c.want)
		}
		if DescriptorAttrib(d) != c.attrib || DescriptorLimit(d) != 0xfffff || DescriptorBase(d) != 0 {
			t.Errorf("%s: decoded attrib %#x limit %#x base %#x", c.name, DescriptorAttrib(d), DescriptorLimit(d), DescriptorBase(d))
		}
	}
	d := SegmentDescriptor(0x1234_5678, 0x6_789a, SegTypeDataRW|SegS|SegP)
	if DescriptorBase(d) != 0x1234_5678 || DescriptorLimit(d) != 0x6_789a {
		t.Errorf("base/limit round trip: %#x %#x", DescriptorBase(d), DescriptorLimit(d))
	}
	tss := SystemDescriptor64(0xffff_8000_1234_5678, 0x67, SegTypeTSSAvail|SegP)
	if got := SystemDescriptorBase(tss); got != 0xffff_8000_1234_5678 {
		t.Errorf("TSS base %#x", got)
	}
	if DescriptorAttrib(tss[0]) != SegTypeTSSAvail|SegP || DescriptorLimit(tss[0]) != 0x67 || tss[1] != 0xffff_8000 {
		t.Errorf("TSS descriptor %#016x %#016x", tss[1], tss[0])
	}
}

func TestPATValid(t *testing.T) {
	if !PATValid(PATReset) {
		t.Error("the reset PAT is invalid")
	}
	for _, bad := range []uint64{2, 3, 8, 0x0200_0000_0000_0000, 0xff} {
		if PATValid(bad) {
			t.Errorf("PAT %#x accepted", bad)
		}
	}
}

func TestExceptionHasErrorCode(t *testing.T) {
	with := map[uint8]bool{8: true, 10: true, 11: true, 12: true, 13: true, 14: true, 17: true, 21: true}
	for v := 0; v < 32; v++ {
		if got := ExceptionHasErrorCode(uint8(v)); got != with[uint8(v)] {
			t.Errorf("vector %d: error code %v", v, got)
		}
	}
}

func TestVendorString(t *testing.T) {
	// CPUID 0 on an AMD CPU: EBX "Auth", EDX "enti", ECX "cAMD".
	if s := VendorString(0x68747541, 0x444d4163, 0x69746e65); s != VendorAMD {
		t.Errorf("%q", s)
	}
}
