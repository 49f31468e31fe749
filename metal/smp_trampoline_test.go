package metal

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"gohv/x86"
)

// TestTrampolineDecodes decodes the AP start-up code in the mode each part
// runs in (16-bit from the SIPI, 32-bit after the first far jump, 64-bit
// after the second) and wants exactly the instructions its listing names,
// the code ending before the data, and the two far jumps landing on
// trampPM32 and trampLM64.
func TestTrampolineDecodes(t *testing.T) {
	code := trampolineCode[:]
	if len(code) > trampGDT {
		t.Fatalf("code is %d bytes, the data starts at %#x", len(code), trampGDT)
	}
	parts := []struct {
		mode     int
		from, to int
		want     []string
	}{
		{16, 0, trampPM32, []string{"CLI", "CLD", "MOV", "MOV", "XOR", "MOV", "SHL", "LGDT", "MOV", "OR", "MOV", "LJMP"}},
		{32, trampPM32, trampLM64, []string{"MOV", "MOV", "MOV", "MOV", "MOV", "OR", "MOV", "MOV", "MOV", "MOV", "RDMSR", "OR",
			"WRMSR", "MOV", "OR", "MOV", "LJMP"}},
		{64, trampLM64, len(code), []string{"MOV", "MOV", "JMP"}},
	}
	for _, p := range parts {
		var got []string
		for off := p.from; off < p.to; {
			in, err := x86asm.Decode(code[off:p.to], p.mode)
			if err != nil {
				t.Fatalf("%d-bit code at %#x: %v", p.mode, off, err)
			}
			got = append(got, strings.Fields(in.Op.String())[0])
			off += in.Len
		}
		if strings.Join(got, " ") != strings.Join(p.want, " ") {
			t.Errorf("%d-bit part %#x-%#x decodes as %v, want %v", p.mode, p.from, p.to, got, p.want)
		}
	}

	page := make([]byte, pageSize)
	const base = 0x9e000
	writeTrampoline(page, trampolineData{page: base, cr3: 0x100000, efer: x86.EFERLME | x86.EFERNXE, entry: 0x31_8000, cpu: 0x1014950})
	le := binary.LittleEndian
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"GDTR base", uint64(le.Uint32(page[trampGDTR+2:])), base + trampGDT},
		{"GDTR limit", uint64(le.Uint16(page[trampGDTR:])), 31},
		{"jump to 32-bit code", uint64(le.Uint32(page[trampToPM32:])), base + trampPM32},
		{"its selector", uint64(le.Uint16(page[trampToPM32+4:])), trampSelCode32},
		{"jump to 64-bit code", uint64(le.Uint32(page[trampToLM64:])), base + trampLM64},
		{"its selector", uint64(le.Uint16(page[trampToLM64+4:])), selKernelCode},
		{"64-bit code descriptor", le.Uint64(page[trampGDT+8*gdtKernelCode:]), x86.DescriptorFlatCode64},
		{"32-bit code descriptor", le.Uint64(page[trampGDT+trampSelCode32:]), x86.DescriptorFlatCode32},
		{"data descriptor", le.Uint64(page[trampGDT+8*gdtKernelData:]), x86.DescriptorFlatData},
		{"CR3", uint64(le.Uint32(page[trampCR3:])), 0x100000},
		{"EFER bits", uint64(le.Uint32(page[trampEFER:])), x86.EFERLME | x86.EFERNXE},
		{"entry", le.Uint64(page[trampEntry:]), 0x31_8000},
		{"cpu", le.Uint64(page[trampCPU:]), 0x1014950},
	} {
		if c.got != c.want {
			t.Errorf("%s %#x, want %#x", c.name, c.got, c.want)
		}
	}
	// The operands the code reads from the data are the data's offsets.
	if code[19] != trampGDTR || code[34] != trampToPM32 {
		t.Errorf("16-bit code reads GDTR at %#x and the far pointer at %#x", code[19], code[34])
	}
}

// TestCmdlineCPUs reads cpus=N: at least 1, at most maxCPUs, absent or
// malformed meaning maxCPUs.
func TestCmdlineCPUs(t *testing.T) {
	for in, want := range map[string]int{
		"": maxCPUs, "hvtest cpus=2": 2, "cpus=1": 1, "cpus=0": 1, "cpus=99": maxCPUs, "cpus=x": maxCPUs, "cpus=": maxCPUs,
	} {
		if got := cmdlineCPUs([]byte(in)); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
}
