package hypercall

import (
	"strings"
	"testing"

	"gohv/hv/tlfs"
)

// statuses are the HV_STATUS codes the TLFS defines (Appendix B), as far
// as tlfs names them: the only values RAX's status may hold.
var statuses = func() []tlfs.Status {
	var s []tlfs.Status
	for v := range 0x100 {
		if st := tlfs.Status(v); !strings.HasPrefix(st.String(), "HV_STATUS_0x") {
			s = append(s, st)
		}
	}
	return s
}()

// FuzzDispatch drives Dispatch with any input value, registers and input
// page, and a handler answering any TLFS status (mode's low 5 bits), or
// refusing the call (bit 7). Bit 6 points RDX into the fuzzed page; bit 5
// has the guest rewrite its page between the exits of a rep call. The
// call is run to completion as the VP loop runs it. Nothing may panic;
// every RAX is a TLFS status with only the reps-completed field besides;
// done=false only for the rep calls, with RAX 0, RCX changed only in its
// rep start index, which strictly increases and stays below the count.
func FuzzDispatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, rcx, rdx, r8 uint64, page []byte, mode uint8) {
		m := &fakeMem{}
		copy(m.ram[inputGPA:inputGPA+0x1000], page)
		r := &recorder{status: statuses[int(mode&0x1f)%len(statuses)]}
		if mode&0x80 != 0 {
			r.allowed = func(uint16) bool { return false }
		}
		if mode&0x40 != 0 {
			rdx = inputGPA + rdx%0x1000
		}
		c := &Caller{VP: uint32(r8)}
		for exit := 1; ; exit++ {
			rax, newRCX, done := c.Dispatch(r, m, rcx, rdx, r8)
			ctl := tlfs.DecodeControl(rcx)
			if r.maxChunk > MaxRepsPerExit {
				t.Fatalf("a chunk of %d ranges", r.maxChunk)
			}
			if done {
				if st := tlfs.Status(rax); strings.HasPrefix(st.String(), "HV_STATUS_0x") {
					t.Fatalf("rcx %#x: status %v", rcx, st)
				}
				if rax&^(0xffff|0xfff<<32) != 0 || reps(rax) > ctl.RepCount {
					t.Fatalf("rcx %#x: rax %#x", rcx, rax)
				}
				if newRCX != rcx {
					t.Fatalf("rcx %#x: done, but RCX becomes %#x", rcx, newRCX)
				}
				return
			}
			next := tlfs.DecodeControl(newRCX)
			if ctl.Code != tlfs.HvCallFlushVirtualAddressList && ctl.Code != tlfs.HvCallFlushVirtualAddressListEx {
				t.Fatalf("rcx %#x: a simple call yielded", rcx)
			}
			if rax != 0 || newRCX&^tlfs.ControlRepStartMask != rcx&^tlfs.ControlRepStartMask ||
				next.RepStart <= ctl.RepStart || next.RepStart >= ctl.RepCount {
				t.Fatalf("rcx %#x: yielded rax %#x, RCX %#x", rcx, rax, newRCX)
			}
			if exit > 0x1000 {
				t.Fatal("no end")
			}
			rcx = newRCX
			if mode&0x20 != 0 {
				for i := inputGPA; i < inputGPA+0x1000; i += 7 {
					m.ram[i] ^= byte(exit)
				}
			}
		}
	})
}
