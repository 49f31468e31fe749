package svm

import (
	"testing"

	"gohv/x86"
)

// TestVMCBOffsets pins the layout to AMD APM Vol. 2 Appendix B, Tables B-1
// and B-2 (the values are the manual's, written out again on purpose).
func TestVMCBOffsets(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"intercept CR", CtlInterceptCR, 0x000}, {"intercept exceptions", CtlInterceptException, 0x008},
		{"intercept misc1", CtlInterceptMisc1, 0x00c}, {"intercept misc2", CtlInterceptMisc2, 0x010},
		{"IOPM_BASE_PA", CtlIOPMBasePA, 0x040}, {"MSRPM_BASE_PA", CtlMSRPMBasePA, 0x048},
		{"TSC_OFFSET", CtlTSCOffset, 0x050}, {"guest ASID", CtlGuestASID, 0x058},
		{"TLB_CONTROL", CtlTLBControl, 0x05c}, {"V_INTR", CtlVIntr, 0x060},
		{"interrupt shadow", CtlInterruptShadow, 0x068}, {"EXITCODE", CtlExitCode, 0x070},
		{"EXITINFO1", CtlExitInfo1, 0x078}, {"EXITINFO2", CtlExitInfo2, 0x080},
		{"EXITINTINFO", CtlExitIntInfo, 0x088}, {"NP_ENABLE", CtlNPEnable, 0x090},
		{"EVENTINJ", CtlEventInj, 0x0a8}, {"N_CR3", CtlNCR3, 0x0b0},
		{"VMCB clean", CtlVMCBClean, 0x0c0}, {"nRIP", CtlNRIP, 0x0c8},
		{"ES", SaveES, 0x400}, {"CS", SaveCS, 0x410}, {"SS", SaveSS, 0x420}, {"DS", SaveDS, 0x430},
		{"FS", SaveFS, 0x440}, {"GS", SaveGS, 0x450}, {"GDTR", SaveGDTR, 0x460}, {"LDTR", SaveLDTR, 0x470},
		{"IDTR", SaveIDTR, 0x480}, {"TR", SaveTR, 0x490}, {"CPL", SaveCPL, 0x4cb}, {"EFER", SaveEFER, 0x4d0},
		{"CR4", SaveCR4, 0x548}, {"CR3", SaveCR3, 0x550}, {"CR0", SaveCR0, 0x558}, {"DR7", SaveDR7, 0x560},
		{"DR6", SaveDR6, 0x568}, {"RFLAGS", SaveRFLAGS, 0x570}, {"RIP", SaveRIP, 0x578}, {"RSP", SaveRSP, 0x5d8},
		{"RAX", SaveRAX, 0x5f8}, {"STAR", SaveSTAR, 0x600}, {"LSTAR", SaveLSTAR, 0x608}, {"CSTAR", SaveCSTAR, 0x610},
		{"SFMASK", SaveSFMASK, 0x618}, {"KernelGsBase", SaveKernelGSBase, 0x620}, {"SYSENTER_CS", SaveSysenterCS, 0x628},
		{"CR2", SaveCR2, 0x640}, {"G_PAT", SaveGPAT, 0x668},
	} {
		if c.got != c.want {
			t.Errorf("%s at %#x, APM says %#x", c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"VMEXIT_CPUID", ExitCPUID, 0x72}, {"VMEXIT_HLT", ExitHLT, 0x78}, {"VMEXIT_IOIO", ExitIOIO, 0x7b},
		{"VMEXIT_MSR", ExitMSR, 0x7c}, {"VMEXIT_SHUTDOWN", ExitShutdown, 0x7f}, {"VMEXIT_VMRUN", ExitVMRUN, 0x80},
		{"VMEXIT_VMMCALL", ExitVMMCALL, 0x81}, {"VMEXIT_NPF", ExitNPF, 0x400}, {"VMEXIT_INTR", ExitINTR, 0x60},
		{"VMEXIT_VINTR", ExitVINTR, 0x64},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, APM says %#x", c.name, c.got, c.want)
		}
	}
}

func TestMSRPermissionMap(t *testing.T) {
	for _, c := range []struct {
		msr uint32
		off int
		bit uint
		ok  bool
	}{
		{0x0, 0, 0, true}, {0x3, 0, 6, true}, {0x174, 0x5d, 0, true}, {0x1fff, 0x7ff, 6, true},
		{0xc000_0080, 0x820, 0, true}, {0xc000_0082, 0x820, 4, true}, {0xc001_0114, 0x1045, 0, true},
		{0x2000, 0, 0, false}, {0x4000_0000, 0, 0, false},
	} {
		off, bit, ok := msrpmBit(c.msr)
		if off != c.off || bit != c.bit || ok != c.ok {
			t.Errorf("msr %#x: (%#x,%d,%v), want (%#x,%d,%v)", c.msr, off, bit, ok, c.off, c.bit, c.ok)
		}
	}
	var pm [0x2000]byte
	fillMSRPM(func(off int) *byte { return &pm[off] }, policy{x86.MsrLSTAR: "rw", x86.MsrTSC: "r"})
	off, bit, _ := msrpmBit(x86.MsrLSTAR)
	if pm[off]>>bit&3 != 0 {
		t.Error("LSTAR intercepted")
	}
	off, bit, _ = msrpmBit(x86.MsrEFER)
	if pm[off]>>bit&3 != 3 {
		t.Error("EFER not intercepted")
	}
	off, bit, _ = msrpmBit(x86.MsrTSC)
	if pm[off]>>bit&3 != 2 {
		t.Error("TSC: want reads through, writes intercepted")
	}
}

// policy passes MSRs through for reading ("r") or both ("rw").
type policy map[uint32]string

func (p policy) PassThroughMSR(msr uint32, write bool) bool {
	return p[msr] == "rw" || p[msr] == "r" && !write
}
