package devices

import (
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// TestResetVectorCodeResets runs ResetVectorCode, decoded as 16-bit code,
// on a platform's ports: its OUT reaches the reset control register with
// the value the FADT names and reboots the partition; nothing comes
// before that but register loads, nothing after it but a halt loop; and it
// ends within the first MiB.
func TestResetVectorCodeResets(t *testing.T) {
	code := ResetVectorCode()
	if end := ResetVector + len(code); end > 1<<20 {
		t.Fatalf("%d bytes at %#x end at %#x, past 1 MiB", len(code), ResetVector, end)
	}
	var reboots, powerOffs calls
	bus := &fakeBus{}
	New(Config{Reboot: reboots.f, PowerOff: powerOffs.f}).Register(bus)

	var dx, al uint32
	halted := false
	for ip := 0; ip < len(code) && !halted; {
		in, err := x86asm.Decode(code[ip:], 16)
		if err != nil {
			t.Fatalf("offset %d: %v", ip, err)
		}
		next := ip + in.Len
		switch {
		case in.Op == x86asm.MOV && in.Args[0] == x86asm.DX:
			dx = uint32(in.Args[1].(x86asm.Imm))
		case in.Op == x86asm.MOV && in.Args[0] == x86asm.AL:
			al = uint32(in.Args[1].(x86asm.Imm))
		case in.Op == x86asm.OUT && in.Args[0] == x86asm.DX && in.Args[1] == x86asm.AL:
			if reboots.n != 0 {
				t.Fatalf("offset %d: a second OUT", ip)
			}
			bus.out(uint16(dx), 1, al)
			if reboots.n != 1 {
				t.Fatalf("OUT %#x to port %#x did not reboot the partition", al, dx)
			}
		case in.Op == x86asm.CLI:
		case in.Op == x86asm.HLT:
			// What follows must bring it back here and nowhere else.
			j, err := x86asm.Decode(code[next:], 16)
			if err != nil || j.Op != x86asm.JMP || next+j.Len+int(j.Args[0].(x86asm.Rel)) != ip {
				t.Fatalf("offset %d: %v after the HLT, want a jump back to it (%v)", next, j, err)
			}
			halted = true
		default:
			t.Fatalf("offset %d: unexpected %v", ip, in)
		}
		ip = next
	}
	if !halted || reboots.n != 1 || reboots.why != WhyResetControl || powerOffs.n != 0 {
		t.Errorf("halted %v, %d reboots (%q), %d power-offs; want one reboot through %q, then a halt",
			halted, reboots.n, reboots.why, powerOffs.n, WhyResetControl)
	}
	if dx != ResetControlPort || al != ResetValue {
		t.Errorf("wrote %#x to port %#x; the FADT names %#x at %#x", al, dx, ResetValue, ResetControlPort)
	}
}

// TestResetVectorCodeIsACopy: a caller's changes to the returned code do
// not reach the next partition's.
func TestResetVectorCodeIsACopy(t *testing.T) {
	ResetVectorCode()[0] = 0x90
	if ResetVectorCode()[0] != 0xba {
		t.Fatal("ResetVectorCode returns shared memory")
	}
}
