package testguests

import (
	"bytes"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"gohv/root/loader"
)

// TestMultibootTripleFault: the kernel parses as a Multiboot kernel
// entered at its code, and that code, decoded as 32-bit code, prints its
// greeting and then loads an IDT of limit 0 (its IDTR bytes all zero) and
// executes UD2 — what makes the fault triple.
func TestMultibootTripleFault(t *testing.T) {
	f := MultibootTripleFault()
	k, err := loader.ParseMultiboot(f)
	if err != nil {
		t.Fatal(err)
	}
	if k.Entry != mbLoad+0x20 || len(k.Segments) != 1 || k.Segments[0].Addr != mbLoad {
		t.Fatalf("entry %#x, segments %+v", k.Entry, k.Segments)
	}
	var ops []string
	var lidt x86asm.Inst
	for pc := 0x20; pc < 0x3a; {
		in, err := x86asm.Decode(f[pc:], 32)
		if err != nil {
			t.Fatalf("%#x: %v", pc, err)
		}
		if in.Op == x86asm.LIDT {
			lidt = in
		}
		ops = append(ops, in.Op.String())
		pc += in.Len
	}
	if got := ops[len(ops)-2:]; got[0] != "LIDT" || got[1] != "UD2" {
		t.Fatalf("code ends %v, want LIDT UD2", got)
	}
	m, ok := lidt.Args[0].(x86asm.Mem)
	if !ok || m.Base != 0 || m.Index != 0 || m.Disp != mbLoad+0x40 {
		t.Fatalf("LIDT operand %v, want [%#x]", lidt.Args[0], mbLoad+0x40)
	}
	if !bytes.Equal(f[0x40:0x46], make([]byte, 6)) {
		t.Errorf("IDTR % x, want limit 0", f[0x40:0x46])
	}
	if msg := f[0x80:]; !bytes.Equal(msg, []byte(TripleFaultGreeting+"\n\x00")) {
		t.Errorf("message %q", msg)
	}
}
