package testguests

import (
	"bufio"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"gohv/hv"
	"gohv/hv/tlfs"
)

// TestHyperVBlobsDecode: every Hyper-V blob is found, ends with the
// marker, and decodes as 64-bit code up to it (no byte the assembler
// emitted differently than the guest means, no stray data).
func TestHyperVBlobsDecode(t *testing.T) {
	for b := HyperVProgram(0); b < numHyperVBlobs; b++ {
		c, err := hypervCode(b)
		if err != nil {
			t.Fatal(err)
		}
		body := c[:len(c)-len(endMarker)]
		if len(body) < 40 {
			t.Errorf("blob %d: only %d bytes", b, len(body))
		}
		for pc := 0; pc < len(body); {
			if rest := body[pc:]; len(rest) >= 3 && rest[0] == 0x0f && rest[1] == 0x01 && (rest[2] == 0xc1 || rest[2] == 0xd9) {
				pc += 3 // VMCALL, VMMCALL: x86asm does not know them
				continue
			}
			in, err := x86asm.Decode(body[pc:], 64)
			if err != nil {
				t.Fatalf("blob %d: offset %#x: %v", b, pc, err)
			}
			pc += in.Len
		}
	}
	if _, err := hypervCode(numHyperVBlobs); err == nil {
		t.Error("a blob past the table was found")
	}
}

// asmDefines reads the numeric #defines of an assembly file.
func asmDefines(t *testing.T, file string) map[string]uint64 {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defs := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) != 3 || w[0] != "#define" {
			continue
		}
		if v, err := strconv.ParseUint(w[2], 0, 64); err == nil {
			defs[w[1]] = v
		}
	}
	return defs
}

// TestHyperVLayoutMatchesAssembly: the #defines of hyperv_amd64.s are the
// data page's layout, the pages and vectors the root reads and writes, and
// the TLFS's numbers.
func TestHyperVLayoutMatchesAssembly(t *testing.T) {
	defs := asmDefines(t, "hyperv_amd64.s")
	for name, want := range map[string]uint64{
		"APIC_DATA": APICData, "D_COUNT": apicCount, "D_STEP": apicStep, "D_LAPICHZ": apicLAPICHz,
		"D_TSCHZ": apicTSCHz, "D_TSCMS": apicTSCms, "D_PARAMS": apicParams, "D_RESULTS": apicResults,
		"D_LOG": apicLog, "D_TABLE": apicTable, "D_BENCH": apicBenchArea,
		"LAPIC_PAGE": 0xfee0_0000, "IOAPIC_PAGE": hv.IOAPICBase,

		"HV_HCPAGE": HVHypercallPage, "HV_SIM": HVSIMPage, "HV_SIEF": HVSIEFPage,
		"HV_REFTSC": HVRefTSCPage, "HV_REFTSC2": HVRefTSCPage2, "HV_INPUT": HVInputPage,
		"HV_ASSIST": HVAssistPage, "HV_OUTSIDE": HVOutsideRAM, "HV_GUESTID": HVGuestOSID,
		"SINT2_VECTOR": HVSINT2Vector, "SINT3_VECTOR": HVSINT3Vector,
		"STIMER_VECTOR": HVSTimerVector, "STORM_VECTOR": HVStormVector,

		"HV_NEED_EAX": hvNeedEAX, "HV_NEED_EBX": hvNeedEBX, "HV_NEED_EDX": hvNeedEDX, "HV_DENY_EBX": hvDenyEBX,

		"MSR_GUEST_OS_ID": tlfs.MsrGuestOSID, "MSR_HYPERCALL": tlfs.MsrHypercall, "MSR_VP_INDEX": tlfs.MsrVPIndex,
		"MSR_VP_RUNTIME": tlfs.MsrVPRuntime, "MSR_TIME_REF_COUNT": tlfs.MsrTimeRefCount,
		"MSR_REFERENCE_TSC": tlfs.MsrReferenceTSC, "MSR_TSC_FREQUENCY": tlfs.MsrTSCFrequency,
		"MSR_APIC_FREQUENCY": tlfs.MsrAPICFrequency, "MSR_VP_ASSIST_PAGE": tlfs.MsrVPAssistPage,
		"MSR_SCONTROL": tlfs.MsrSControl, "MSR_SVERSION": tlfs.MsrSVersion, "MSR_SIEFP": tlfs.MsrSIEFP,
		"MSR_SIMP": tlfs.MsrSIMP, "MSR_EOM": tlfs.MsrEOM, "MSR_SINT2": tlfs.MsrSINT0 + 2, "MSR_SINT3": tlfs.MsrSINT0 + 3,
		"MSR_STIMER0_CONFIG": tlfs.MsrSTimer0Config, "MSR_STIMER0_COUNT": tlfs.MsrSTimer0Count,
		"MSR_CRASH_P0": tlfs.MsrCrashP0, "MSR_CRASH_CTL": tlfs.MsrCrashCtl,
	} {
		got, ok := defs[name]
		if !ok {
			t.Errorf("hyperv_amd64.s does not define %s", name)
		} else if got != want {
			t.Errorf("%s is %#x in hyperv_amd64.s, %#x in Go", name, got, want)
		}
	}
	// The CPUID bits, by their TLFS names.
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"needed EAX", hvNeedEAX, tlfs.AccessPartitionReferenceCounter | tlfs.AccessSynicRegs | tlfs.AccessSyntheticTimerRegs |
			tlfs.AccessHypercallMsrs | tlfs.AccessVpIndex | tlfs.AccessPartitionReferenceTsc | tlfs.AccessFrequencyRegs},
		{"needed EBX", hvNeedEBX, tlfs.PostMessages | tlfs.SignalEvents},
		{"needed EDX", hvNeedEDX, tlfs.FeatureFrequencyRegs | tlfs.FeatureGuestCrashRegs | tlfs.FeatureDirectSyntheticTimers},
		{"refused EBX", hvDenyEBX, tlfs.AccessPartitionId | tlfs.CpuManagement | tlfs.Isolation},
	} {
		if c.got != c.want {
			t.Errorf("%s: %#x, the TLFS bits are %#x", c.name, c.got, c.want)
		}
	}
	// The pages lie in a 4 MiB partition, clear of the data page's areas,
	// the APIC guests' RAM page and each other.
	pages := []uint64{HVHypercallPage, HVSIMPage, HVSIEFPage, HVRefTSCPage, HVRefTSCPage2, HVInputPage, HVInputPage + 0x1000, HVAssistPage, HVCrashMessage}
	seen := map[uint64]bool{}
	for _, p := range pages {
		if p%0x1000 != 0 || p <= APICRAMPage || p+0x1000 > 4<<20 || seen[p] {
			t.Errorf("page %#x: misplaced", p)
		}
		seen[p] = true
	}
	if APICData+apicBenchArea+16*HVBenchCap > APICRAMPage {
		t.Error("the bench area runs into the APIC RAM page")
	}
}

func TestTableCase(t *testing.T) {
	for _, c := range []struct {
		status uint32
		n, i   int
		ok     bool
	}{{100, 3, 0, true}, {102, 3, 2, true}, {103, 3, 0, false}, {99, 3, 0, false}, {0, 3, 0, false}, {5, 10, 0, false}} {
		i, ok := TableCase(c.status, c.n)
		if i != c.i || ok != c.ok {
			t.Errorf("TableCase(%d, %d) = %d, %v; want %d, %v", c.status, c.n, i, ok, c.i, c.ok)
		}
	}
}

func TestParseHVBench(t *testing.T) {
	b := make([]byte, 8*6)
	for i := range 6 {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(10+i))
	}
	r := ParseHVBench(b, 3, 2)
	if len(r) != 3 || r[0][0] != 10 || r[0][1] != 11 || r[2][1] != 15 {
		t.Errorf("%v", r)
	}
	// Asking for more records than the bytes hold gives what they hold.
	if r := ParseHVBench(b, 10, 2); len(r) != 3 {
		t.Errorf("%d records from 48 bytes of width 2", len(r))
	}
	if r := ParseHVBench(nil, 10, 0); len(r) != 0 {
		t.Errorf("%d records from nothing", len(r))
	}
}
