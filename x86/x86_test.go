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
		{"IA32_MISC_ENABLE", MsrMiscEnable, 416},
		{"IA32_BIOS_SIGN_ID", MsrBIOSSignID, 139},
		{"MISC_ENABLE.XD_DISABLE", MiscEnableXDDisable, 1 << 34},
		{"IA32_TSC_DEADLINE", MsrTSCDeadline, 1760},
		{"IA32_X2APIC_APICID", MsrX2APICBase + 2, 2050},
		{"IA32_EFER", MsrEFER, 3221225600},
		{"IA32_KERNEL_GS_BASE", MsrKernelGSBase, 3221225730},
		{"IA32_STAR", MsrSTAR, 3221225601},
		{"IA32_LSTAR", MsrLSTAR, 3221225602},
		{"IA32_FMASK", MsrFMASK, 3221225604},
		{"IA32_FS_BASE", MsrFSBase, 3221225728},
		{"IA32_GS_BASE", MsrGSBase, 3221225729},
		{"IA32_APIC_BASE.EN", APICBaseEnable, 0x800},
		// SDM Vol. 3A 5.8.8: SYSCALL CS in STAR[47:32], SYSRET's in [63:48].
		{"STAR SYSCALL CS shift", STARSyscallCSShift, 32},
		{"STAR SYSRET CS shift", STARSysretCSShift, 48},
		{"NB_CFG", MsrAMDNBCfg, 3221291039},
		{"VM_CR", MsrAMDVMCR, 3221291284},
		{"VM_HSAVE_PA", MsrAMDVMHsavePA, 3221291287},
		{"IA32_VMX_BASIC", MsrVMXBasic, 1152},
		{"IA32_VMX_TRUE_ENTRY_CTLS", MsrVMXTrueEntry, 1168},
		{"IA32_VMX_EPT_VPID_CAP", MsrVMXEPTVPIDCap, 1164},
		// SDM Vol. 3A 2.5.
		{"CR0.PE", CR0PE, 0x1},
		{"CR0.MP", CR0MP, 0x2},
		{"CR0.EM", CR0EM, 0x4},
		{"CR0.TS", CR0TS, 0x8},
		{"CR0.NE", CR0NE, 0x20},
		{"CR0.PG", CR0PG, 0x8000_0000},
		{"CR0.CD", CR0CD, 0x4000_0000},
		{"CR0.WP", CR0WP, 0x1_0000},
		{"CR4.PAE", CR4PAE, 0x20},
		{"CR4.OSFXSR", CR4OSFXSR, 0x200},
		{"CR4.OSXMMEXCPT", CR4OSXMMEXCPT, 0x400},
		{"CR4.VMXE", CR4VMXE, 0x2000},
		{"CR4.LA57", CR4LA57, 0x1000},
		{"CR4.SMAP", CR4SMAP, 0x20_0000},
		{"EFER.SCE", EFERSCE, 0x1},
		{"EFER.LME", EFERLME, 0x100},
		{"EFER.LMA", EFERLMA, 0x400},
		{"EFER.NXE", EFERNXE, 0x800},
		{"EFER.SVME", EFERSVME, 0x1000},
		{"RFLAGS reserved bit 1", RFLAGSFixed, 0x2},
		{"RFLAGS.TF", RFLAGSTF, 0x100},
		{"RFLAGS.IF", RFLAGSIF, 0x200},
		{"RFLAGS.IOPL", RFLAGSIOPL, 0x3000},
		{"RFLAGS.DF", RFLAGSDF, 0x400},
		{"RFLAGS.AC", RFLAGSAC, 0x4_0000},
		// SDM Vol. 3A Table 6-1.
		{"#DE", VectorDE, 0},
		{"#DB", VectorDB, 1},
		{"NMI", VectorNMI, 2},
		{"#BP", VectorBP, 3},
		{"#UD", VectorUD, 6},
		{"#DF", VectorDF, 8},
		{"#GP", VectorGP, 13},
		{"#PF", VectorPF, 14},
		{"#MC", VectorMC, 18},
		{"#XM", VectorXM, 19},
		{"first external vector", FirstExternalVector, 32},
		// SDM Vol. 3A 4.7, Figure 4-12.
		{"#PF error P", PFErrPresent, 1},
		{"#PF error W/R", PFErrWrite, 2},
		// SDM Vol. 3A Table 3-2, 3.4.2, 8.7 Figure 8-11.
		{"64-bit interrupt gate type", SegTypeIntGate, 14},
		{"64-bit trap gate type", SegTypeTrapGate, 15},
		{"64-bit TSS available type", SegTypeTSSAvail, 9},
		{"selector index shift", SelectorIndexShift, 3},
		{"TSS RSP0", TSS64RSP0, 4},
		{"TSS IST1", TSS64IST1, 36},
		{"TSS I/O map base", TSS64IOMapBase, 102},
		{"TSS size", TSS64Size, 104},
		// SDM Vol. 2A CPUID.
		{"CPUID basic leaf 0", CPUIDVendor, 0},
		{"CPUID leaf 1", CPUIDFeatures, 1},
		{"CPUID extended max leaf", CPUIDExtMax, 0x8000_0000},
		{"CPUID extended features leaf", CPUIDExtFeaturesAMD, 0x8000_0001},
		{"CPUID brand string first leaf", CPUIDBrand0, 0x8000_0002},
		{"CPUID.1:ECX.RDRAND", CPUID1ECXRDRAND, 0x4000_0000},
		{"CPUID.8000_0001:EDX.NX", CPUIDExtEDXNX, 0x10_0000},
		{"CPUID.8000_0001:EDX.Page1GB", CPUIDExtEDXPage1GB, 0x400_0000},
		// CPUID bits, SDM Vol. 2A Table 3-10/3-11, APM Vol. 3 E.4.
		{"CPUID.1:ECX.VMX", CPUID1ECXVMX, 0x20},
		{"CPUID.1:ECX.X2APIC", CPUID1ECXX2APIC, 0x20_0000},
		{"CPUID.1:ECX.HYPERVISOR", CPUID1ECXHypervisor, 0x8000_0000},
		{"CPUID.1:EDX.APIC", CPUID1EDXAPIC, 0x200},
		{"CPUID.8000_0001:ECX.SVM", CPUIDExtECXSVM, 4},
		{"CPUID.8000_0001:EDX.LM", CPUIDExtEDXLM, 0x2000_0000},
		{"CPUID.8000_000A:EDX.NRIPS", CPUIDSVMNRIPSave, 8},
		// Paging.
		{"PTE.P", PTEPresent, 0x1},
		{"PTE.R/W", PTEWrite, 0x2},
		{"PTE.U/S", PTEUser, 0x4},
		{"PTE.A", PTEAccessed, 0x20},
		{"PTE.PS", PTEPS, 0x80},
		{"PTE.XD", PTENX, 0x8000_0000_0000_0000},
		{"PDE/PDPTE.PAT", PTEPATLarge, 0x1000},
		{"PTE address bits 51:12", PTEAddrMask, 0xf_ffff_ffff_f000},
		{"2-MByte page", PageSize2M, 0x20_0000},
		{"1-GByte page", PageSize1G, 0x4000_0000},
		// Reset values.
		{"PAT reset", PATReset, 0x0007040600070406},
		{"DR7 reset", DR7Reset, 0x400},
		{"MXCSR reset", MXCSRReset, 0x1f80},
		{"FCW reset", FCWReset, 0x37f},
		{"FXSAVE MXCSR offset", FXSaveMXCSROffset, 24},
		{"FXSAVE area size", FXSaveAreaSize, 512},
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
	if got := SegmentDescriptor(0, 0xfffff, code64); got != DescriptorFlatCode64 {
		t.Errorf("DescriptorFlatCode64 %#016x, encoder says %#016x", uint64(DescriptorFlatCode64), got)
	}
	if got := SegmentDescriptor(0, 0xfffff, data); got != DescriptorFlatData {
		t.Errorf("DescriptorFlatData %#016x, encoder says %#016x", uint64(DescriptorFlatData), got)
	}
	if got := SegmentDescriptor(0, 0xfffff, code32); got != DescriptorFlatCode32 {
		t.Errorf("DescriptorFlatCode32 %#016x, encoder says %#016x", uint64(DescriptorFlatCode32), got)
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

// TestGateDescriptor64 encodes an interrupt gate as SDM Vol. 3A Figure 6-8
// lays it out: offset 15:0 in bits 15:0, the selector in 31:16, IST in
// 34:32, type/DPL/P in 47:40, offset 31:16 in 63:48, offset 63:32 in the
// second quadword.
func TestGateDescriptor64(t *testing.T) {
	g := GateDescriptor64(0xffff_8000_1234_5678, 0x08, 3, SegTypeIntGate|SegP)
	if g[0] != 0x1234_8e03_0008_5678 || g[1] != 0xffff_8000 {
		t.Errorf("interrupt gate %#016x %#016x", g[1], g[0])
	}
	g = GateDescriptor64(0x20_1000, 0x10, 0, SegTypeTrapGate|SegP|3<<SegDPLShift)
	if g[0] != 0x0020_ef00_0010_1000 || g[1] != 0 {
		t.Errorf("trap gate %#016x %#016x", g[1], g[0])
	}
}

// TestPseudoDescriptor checks the LGDT/LIDT operand: limit, then base, both
// little-endian (SDM Vol. 3A Figure 3-11).
func TestPseudoDescriptor(t *testing.T) {
	d := PseudoDescriptor(0x1122_3344_5566_7788, 0x0fff)
	want := [10]byte{0xff, 0x0f, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}
	if d != want {
		t.Errorf("% x, want % x", d, want)
	}
}

// TestUnprivilegedInstructionsOnTheHost runs the leaves that also work in
// ring 3: the TSC advances, and a Linux process runs with interrupts on.
func TestUnprivilegedInstructionsOnTheHost(t *testing.T) {
	a := RDTSC()
	b := RDTSC()
	if b <= a {
		t.Errorf("TSC did not advance: %d then %d", a, b)
	}
	if !InterruptsEnabled() {
		t.Error("RFLAGS.IF clear in a user process")
	}
}
