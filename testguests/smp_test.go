package testguests

import (
	"strings"
	"testing"

	"gohv/hv/tlfs"
	"gohv/x86"

	"golang.org/x/arch/x86/x86asm"
)

// TestSMPLayoutMatchesAssembly: the #defines of smp_amd64.s are the
// constants smp.go and apic.go use.
func TestSMPLayoutMatchesAssembly(t *testing.T) {
	defs := asmDefines(t, "smp_amd64.s")
	for name, want := range map[string]uint64{
		"APIC_DATA": APICData, "D_COUNT": apicCount, "D_STEP": apicStep, "D_TSCHZ": apicTSCHz,
		"D_TSCMS": apicTSCms, "D_PARAMS": apicParams, "D_RESULTS": apicResults, "LAPIC_PAGE": 0xfee0_0000,
		"S_ENTRIES": smpEntries, "S_CMD": smpCmd, "S_ACK": smpAck, "S_SENT": smpSent, "S_HEART": smpHeart,
		"S_APSTEP": smpAPStep, "S_GO": smpGo, "SMP_RESETS": smpResets, "SMP_STACK_TOP": StackTop, "SMP_STACK_SHIFT": smpStackShift,
		"SMP_CODE": CodeBase, "SMP_AP_CODE": smpAPCode, "STORM_VECTOR": SMPStormVector,
		"P_ROUNDS": smpParamRounds, "P_FLUSHES": smpParamFlushes, "S_FCMD": smpFCmd, "S_FSEEN": smpFSeen,
		"S_FACK": smpFAck, "S_IDLE0": smpIdle0, "S_IDLE1": smpIdle1, "MSR_GUEST_IDLE": tlfs.MsrGuestIdle, "D_BENCH": apicBenchArea, "PING_VECTOR": smpPingVector, "PONG_VECTOR": smpPongVector,
		"TV_PDPTE": smpTVPDPTE, "TV_PD": smpTVPD, "TV_PT": smpTVPT, "TV_A": smpTVA, "TV_B": smpTVB,
		"TV_VA": SMPTestVA, "HV_HCPAGE": HVHypercallPage, "HV_INPUT": HVInputPage, "HV_GUESTID": HVGuestOSID,
		"MSR_GUEST_OS_ID": tlfs.MsrGuestOSID, "MSR_HYPERCALL": tlfs.MsrHypercall,
	} {
		got, ok := defs[name]
		if !ok {
			t.Errorf("smp_amd64.s does not define %s", name)
		} else if got != want {
			t.Errorf("%s is %#x in smp_amd64.s, %#x in Go", name, got, want)
		}
	}
	// The SMP area lies between the results the guest uses and the log;
	// the results it writes stay below the SMP area.
	if apicResults+8*smpResultSlots > smpEntries || smpIdle1+8 > apicLog {
		t.Error("the SMP area overlaps the results or the log")
	}
	// Mode 2's parameters follow the absent IDs, and its timings fit the
	// bench area below the test pages; its test pages lie above the
	// Hyper-V pages.
	if smpParamRounds != apicParams+8*5+8*smpMaxAbsent || APICData+apicBenchArea+8*3*SMPMaxRounds > APICRAMPage ||
		smpTVPD < HVCrashMessage+x86.PageSize || smpGo >= smpFCmd {
		t.Error("mode 2's parameters, timings or pages overlap another area")
	}
	// The trampoline page lies between the stubs and the stacks, and the
	// lowest VP stack (APIC ID 14) above it.
	if SMPTrampoline < APICStubBase+256*apicStubSize || StackTop-14<<smpStackShift-(1<<smpStackShift) < SMPTrampoline+0x1000 {
		t.Error("the trampoline page overlaps the stubs or a stack")
	}
}

// TestSMPTrampoline decodes the start-up page's code in 16-bit mode and
// the reset-vector code against their listings.
func TestSMPTrampoline(t *testing.T) {
	// x86asm prints 16-bit displacements and 32-bit immediates signed:
	// -0x1f80 is 0xe080, -0x3fffff80 is 0xc0000080 (IA32_EFER),
	// -0x7ffeffcf is 0x80010031 (PG|WP|NE|ET|PE); INC [m] is the 16-bit
	// form in 16-bit mode.
	for _, c := range []struct {
		name string
		code []byte
		want []string
	}{
		{"trampoline", trampoline(), []string{
			"CLI", "XOR AX, AX", "MOV DS, AX", "LGDT [-0x1f80]", "LIDT [-0x1f78]",
			"MOV EAX, 0x620", "MOV CR4, EAX", "MOV EAX, 0x4000", "MOV CR3, EAX",
			"MOV ECX, -0x3fffff80", "RDMSR", "OR EAX, 0x100", "WRMSR",
			"MOV EAX, -0x7ffeffcf", "MOV CR0, EAX", "LJMP 0x8, 0xe100"}},
		{"reset vector", resetVectorCode(), []string{"INC [-0x1f10]", "LJMP 0xe00, 0x0"}},
	} {
		var got []string
		for i := 0; i < len(c.code); {
			in, err := x86asm.Decode(c.code[i:], 16)
			if err != nil {
				t.Fatalf("%s at %#x: %v", c.name, i, err)
			}
			got = append(got, in.String())
			i += in.Len
		}
		if strings.Join(got, "; ") != strings.Join(c.want, "; ") {
			t.Errorf("%s decodes as\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	if n := len(resetVectorCode()); n > 16 {
		t.Errorf("the reset-vector code is %d bytes, past 4 GiB", n)
	}
}
