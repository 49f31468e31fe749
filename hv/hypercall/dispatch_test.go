package hypercall

import (
	"bytes"
	"fmt"
	"testing"

	"gohv/hv/tlfs"
)

// postMessage writes an HvCallPostMessage input at gpa.
func (m *fakeMem) postMessage(gpa uint64, conn uint32, typ tlfs.MessageType, payload []byte) {
	if err := tlfs.PutPostMessageInput(m.ram[gpa:], tlfs.PostMessageInput{ConnectionID: conn, Type: typ, Payload: payload}); err != nil {
		panic(err)
	}
}

// flushList writes a plain flush-list input at gpa: header, then n
// ranges, range i being page 0x1000*(i+1) with i%4 additional pages.
func (m *fakeMem) flushList(gpa, as, flags, mask uint64, n int) {
	m.put64(gpa, as, flags, mask)
	for i := range n {
		m.put64(gpa+24+8*uint64(i), uint64(wantRange(i)))
	}
}

func wantRange(i int) tlfs.GVARange { return tlfs.GVARange(0x1000*uint64(i+1) | uint64(i%4)) }

// served lists each code served with an input value and registers that
// succeed against a memory prepared by prepare.
var served = []struct {
	name    string
	code    uint16
	fast    bool
	count   uint16
	varHdr  uint16
	prepare func(m *fakeMem)
}{
	{"HvCallPostMessage", tlfs.HvCallPostMessage, false, 0, 0, func(m *fakeMem) { m.postMessage(inputGPA, 1, 1, []byte("hello")) }},
	{"HvCallSignalEvent slow", tlfs.HvCallSignalEvent, false, 0, 0, func(m *fakeMem) { m.put64(inputGPA, 7) }},
	{"HvCallNotifyLongSpinWait slow", tlfs.HvCallNotifyLongSpinWait, false, 0, 0, func(m *fakeMem) { m.put64(inputGPA, 100) }},
	{"HvCallFlushVirtualAddressSpace", tlfs.HvCallFlushVirtualAddressSpace, false, 0, 0, func(m *fakeMem) { m.put64(inputGPA, 0x5000, 0, 1) }},
	{"HvCallFlushVirtualAddressList", tlfs.HvCallFlushVirtualAddressList, false, 3, 0, func(m *fakeMem) { m.flushList(inputGPA, 0x5000, 0, 1, 3) }},
	{"HvCallFlushVirtualAddressSpaceEx", tlfs.HvCallFlushVirtualAddressSpaceEx, false, 0, 1, func(m *fakeMem) { m.put64(inputGPA, 0x5000, 0, tlfs.GenericSetSparse4K, 1, 1) }},
	{"HvCallFlushVirtualAddressListEx", tlfs.HvCallFlushVirtualAddressListEx, false, 2, 1, func(m *fakeMem) { m.put64(inputGPA, 0x5000, 0, tlfs.GenericSetSparse4K, 1, 1, 0x1000, 0x2000) }},
	{"HvCallSendSyntheticClusterIpi slow", tlfs.HvCallSendSyntheticClusterIpi, false, 0, 0, func(m *fakeMem) { m.put64(inputGPA, 0xfd, 1) }},
	{"HvCallSendSyntheticClusterIpiEx", tlfs.HvCallSendSyntheticClusterIpiEx, false, 0, 1, func(m *fakeMem) { m.put64(inputGPA, 0xfd, tlfs.GenericSetSparse4K, 1, 1) }},
}

// TestServedCallsSucceed is the baseline the refusal tests vary: each
// served call, well formed, reaches its handler once and succeeds.
func TestServedCallsSucceed(t *testing.T) {
	for _, c := range served {
		m, r := &fakeMem{}, &recorder{}
		c.prepare(m)
		caller := &Caller{VP: 3}
		rax, newRCX, done := caller.Dispatch(r, m, control(c.code, c.fast, c.varHdr, c.count, 0), inputGPA, 0)
		if rax != tlfs.Result(tlfs.StatusSuccess, c.count) || !done || newRCX != control(c.code, c.fast, c.varHdr, c.count, 0) {
			t.Errorf("%s: rax %#x (%v) done %v", c.name, rax, status(rax), done)
		}
		if r.calls != 1 || r.vp != 3 {
			t.Errorf("%s: handler called %d times for vp %d", c.name, r.calls, r.vp)
		}
	}
}

// TestControlWordRefused: TLFS 3 "Hypercall Inputs" and the common status
// table: each malformed input value is HV_STATUS_INVALID_HYPERCALL_INPUT,
// with no rep completed and the handler never called.
func TestControlWordRefused(t *testing.T) {
	type bad struct {
		name string
		rcx  uint64
	}
	for _, c := range served {
		ok := control(c.code, c.fast, c.varHdr, c.count, 0)
		var cases []bad
		for _, bit := range []uint{27, 28, 29, 30, 31, 44, 45, 46, 47, 60, 61, 62, 63} {
			cases = append(cases, bad{fmt.Sprintf("reserved bit %d", bit), ok | 1<<bit})
		}
		if c.count == 0 {
			cases = append(cases,
				bad{"rep count on a simple call", control(c.code, c.fast, c.varHdr, 1, 0)},
				bad{"rep start on a simple call", control(c.code, c.fast, c.varHdr, 0, 1)})
		} else {
			cases = append(cases,
				bad{"rep call without a rep count", control(c.code, c.fast, c.varHdr, 0, 0)},
				bad{"rep start equal to the count", control(c.code, c.fast, c.varHdr, c.count, c.count)},
				bad{"rep start beyond the count", control(c.code, c.fast, c.varHdr, 5, 0xfff)})
		}
		if c.varHdr == 0 {
			cases = append(cases, bad{"variable header on a call without one", control(c.code, c.fast, 1, c.count, 0)})
		} else {
			cases = append(cases, bad{"variable header beyond 64 banks", control(c.code, c.fast, tlfs.MaxSparseBanks+1, c.count, 0)},
				bad{"variable header of 0x3ff", control(c.code, c.fast, 0x3ff, c.count, 0)})
		}
		switch c.code {
		case tlfs.HvCallPostMessage, tlfs.HvCallFlushVirtualAddressSpace, tlfs.HvCallFlushVirtualAddressList,
			tlfs.HvCallFlushVirtualAddressSpaceEx, tlfs.HvCallFlushVirtualAddressListEx, tlfs.HvCallSendSyntheticClusterIpiEx:
			cases = append(cases, bad{"fast flag on a call without a fast form", control(c.code, true, c.varHdr, c.count, 0)})
		}
		for _, b := range cases {
			m, r := &fakeMem{}, &recorder{}
			c.prepare(m)
			rax, newRCX, done := (&Caller{}).Dispatch(r, m, b.rcx, inputGPA, 0)
			if rax != tlfs.Result(tlfs.StatusInvalidHypercallInput, 0) || !done || newRCX != b.rcx || r.calls != 0 || m.reads != 0 {
				t.Errorf("%s, %s: rax %#x (%v) done %v, %d handler calls, %d reads", c.name, b.name, rax, status(rax), done, r.calls, m.reads)
			}
		}
	}
}

// TestUnknownAndUnimplementedCodes: a code gohv does not serve, or one the
// handler does not implement, is HV_STATUS_INVALID_HYPERCALL_CODE, whatever
// else the input value says.
func TestUnknownAndUnimplementedCodes(t *testing.T) {
	r := &recorder{}
	for _, code := range []uint16{0, tlfs.HvCallSwitchVirtualAddressSpace,
		tlfs.HvCallGetPartitionId, tlfs.HvExtCallQueryCapabilities, 0xffff} {
		for _, rcx := range []uint64{uint64(code), uint64(code) | tlfs.ControlFast, ^uint64(0)&^0xffff | uint64(code)} {
			if rax, _, done := (&Caller{}).Dispatch(r, &fakeMem{}, rcx, inputGPA, 0); rax != tlfs.Result(tlfs.StatusInvalidHypercallCode, 0) || !done {
				t.Errorf("code %#x (rcx %#x): rax %#x done %v", code, rcx, rax, done)
			}
		}
	}
	for _, c := range served {
		for _, h := range []any{nil, struct{}{}, signalOnly{r}} {
			if _, ok := h.(signalOnly); ok && c.code == tlfs.HvCallSignalEvent {
				continue
			}
			m := &fakeMem{}
			c.prepare(m)
			rax, _, done := (&Caller{}).Dispatch(h, m, control(c.code, c.fast, c.varHdr, c.count, 0), inputGPA, 0)
			if rax != tlfs.Result(tlfs.StatusInvalidHypercallCode, 0) || !done || m.reads != 0 {
				t.Errorf("%s to a %T: rax %#x done %v", c.name, h, rax, done)
			}
		}
	}
	if r.calls != 0 {
		t.Errorf("handler called %d times", r.calls)
	}
	// A handler with one interface serves that call.
	if rax, _, _ := (&Caller{}).Dispatch(signalOnly{r}, &fakeMem{}, control(tlfs.HvCallSignalEvent, true, 0, 0, 0), 5, 0); rax != 0 || r.calls != 1 {
		t.Errorf("signalOnly: rax %#x, %d calls", rax, r.calls)
	}
}

// TestAllowerRefuses: a call the partition is not given is answered as
// unknown, or HV_STATUS_ACCESS_DENIED for the two calls the TLFS gates by a
// privilege (PostMessages, SignalEvents).
func TestAllowerRefuses(t *testing.T) {
	for _, c := range served {
		m := &fakeMem{}
		c.prepare(m)
		r := &recorder{allowed: func(code uint16) bool { return code != c.code }}
		want := tlfs.StatusInvalidHypercallCode
		if c.code == tlfs.HvCallPostMessage || c.code == tlfs.HvCallSignalEvent {
			want = tlfs.StatusAccessDenied
		}
		rax, _, done := (&Caller{}).Dispatch(r, m, control(c.code, c.fast, c.varHdr, c.count, 0), inputGPA, 0)
		if rax != tlfs.Result(want, 0) || !done || r.calls != 0 || m.reads != 0 {
			t.Errorf("%s refused: rax %#x (%v), %d calls", c.name, rax, status(rax), r.calls)
		}
	}
}

// TestSlowInputRefused: TLFS 3 "Alignment Requirements" and the common
// status table: an input GPA not 8-byte aligned, an input list crossing a
// page, or one outside the partition's RAM (beyond it, in a hole, over
// MMIO) is HV_STATUS_INVALID_ALIGNMENT, and the handler is not called.
func TestSlowInputRefused(t *testing.T) {
	for _, c := range served {
		size := uint64(inputSizeOf(c.code, c.varHdr, c.count))
		for _, g := range []struct {
			name string
			gpa  uint64
		}{
			{"4-byte aligned", inputGPA + 4},
			{"1-byte aligned", inputGPA + 1},
			{"crossing a page", inputGPA + 0x1000 - 8},
			{"crossing into the hole", holeGPA - 8},
			{"in the hole", holeGPA},
			{"over MMIO", mmioGPA},
			{"beyond RAM", ramSize},
			{"far beyond RAM", 0x7fff_ffff_f000},
			{"the last page of the address space", 0xffff_ffff_ffff_f000},
			{"the last 8 bytes of the address space", 0xffff_ffff_ffff_fff8},
		} {
			if size == 8 && g.gpa%8 == 0 && g.gpa+8 <= ramSize && g.gpa < holeGPA {
				continue // 8 aligned bytes cannot cross a page
			}
			m, r := &fakeMem{}, &recorder{}
			c.prepare(m)
			rax, _, done := (&Caller{}).Dispatch(r, m, control(c.code, false, c.varHdr, c.count, 0), g.gpa, 0)
			if rax != tlfs.Result(tlfs.StatusInvalidAlignment, 0) || !done || r.calls != 0 {
				t.Errorf("%s, input %s (%#x): rax %#x (%v) done %v, %d calls", c.name, g.name, g.gpa, rax, status(rax), done, r.calls)
			}
		}
	}
}

func inputSizeOf(code uint16, varHdr, count uint16) int {
	k, _ := lookup(code)
	return k.inputSize(tlfs.Control{VarHeaderUnits: varHdr, RepCount: count})
}

// TestRepListMustFitItsPage: the whole list, not just the chunk an exit
// reads, must lie in the input page: 509 ranges fit after a page-aligned
// plain header, 510 do not, and 0xfff never can.
func TestRepListMustFitItsPage(t *testing.T) {
	for _, c := range []struct {
		count uint16
		gpa   uint64
		want  tlfs.Status
	}{
		{509, inputGPA, tlfs.StatusSuccess},
		{510, inputGPA, tlfs.StatusInvalidAlignment},
		{508, inputGPA + 8, tlfs.StatusSuccess},
		{509, inputGPA + 8, tlfs.StatusInvalidAlignment},
		{0xfff, inputGPA, tlfs.StatusInvalidAlignment},
	} {
		m, r := &fakeMem{}, &recorder{}
		m.flushList(c.gpa, 0, 0, 1, int(c.count))
		rax, _, done := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, c.count, 0), c.gpa, 0)
		if status(rax) != c.want || !done != (c.want == tlfs.StatusSuccess) {
			t.Errorf("%d ranges at %#x: %v done %v, want %v", c.count, c.gpa, status(rax), done, c.want)
		}
	}
}

// TestOutputGPAIgnored: none of the calls served has output parameters,
// so R8 is ignored, whatever it holds (TLFS 3 "Alignment Requirements").
func TestOutputGPAIgnored(t *testing.T) {
	for _, c := range served {
		for _, r8 := range []uint64{3, inputGPA, mmioGPA, ^uint64(0)} {
			m, r := &fakeMem{}, &recorder{}
			c.prepare(m)
			before := m.ram
			rax, _, _ := (&Caller{}).Dispatch(r, m, control(c.code, false, c.varHdr, c.count, 0), inputGPA, r8)
			if status(rax) != tlfs.StatusSuccess || m.ram != before {
				t.Errorf("%s, R8 %#x: %v, memory written %v", c.name, r8, status(rax), m.ram != before)
			}
		}
	}
}

// TestPostMessage: the input reaches the handler decoded; its refusals
// are those of the TLFS's HvCallPostMessage page; only the header and the
// announced payload are read.
func TestPostMessage(t *testing.T) {
	payload := bytes.Repeat([]byte("gohv"), 60) // 240 bytes
	for _, size := range []int{0, 1, 5, 239, 240} {
		m, r := &fakeMem{}, &recorder{}
		m.postMessage(inputGPA, 0xab_cdef, 0x7fff_ffff, payload[:size])
		m.ram[inputGPA+16+uint64(size)] = 0xee // beyond the payload: never seen
		rax, _, done := (&Caller{VP: 9}).Dispatch(r, m, control(tlfs.HvCallPostMessage, false, 0, 0, 0), inputGPA, 0)
		if rax != 0 || !done || r.post.ConnectionID != 0xab_cdef || r.post.Type != 0x7fff_ffff || !bytes.Equal(r.post.Payload, payload[:size]) || r.vp != 9 {
			t.Errorf("payload of %d: rax %#x, got %+v", size, rax, r.post)
		}
		if m.readBytes != 16+size {
			t.Errorf("payload of %d: read %d bytes", size, m.readBytes)
		}
	}
	for _, c := range []struct {
		name  string
		patch func(m *fakeMem)
		want  tlfs.Status
	}{
		{"connection ID bit 24", func(m *fakeMem) { m.put32(inputGPA, 1<<24|1) }, tlfs.StatusInvalidHypercallInput},
		{"reserved word", func(m *fakeMem) { m.put32(inputGPA+4, 1) }, tlfs.StatusInvalidHypercallInput},
		{"payload of 241", func(m *fakeMem) { m.put32(inputGPA+12, 241) }, tlfs.StatusInvalidParameter},
		{"payload of 2^32-1", func(m *fakeMem) { m.put32(inputGPA+12, 0xffff_ffff) }, tlfs.StatusInvalidParameter},
		{"message type 0", func(m *fakeMem) { m.put32(inputGPA+8, 0) }, tlfs.StatusInvalidParameter},
		{"message type with bit 31", func(m *fakeMem) { m.put32(inputGPA+8, uint32(tlfs.MessageTypeTimerExpired)) }, tlfs.StatusInvalidParameter},
	} {
		m, r := &fakeMem{}, &recorder{}
		m.postMessage(inputGPA, 1, 1, payload[:8])
		c.patch(m)
		rax, _, _ := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallPostMessage, false, 0, 0, 0), inputGPA, 0)
		if rax != tlfs.Result(c.want, 0) || r.calls != 0 {
			t.Errorf("%s: %v, want %v", c.name, status(rax), c.want)
		}
	}
	// The handler's status is the call's.
	m, r := &fakeMem{}, &recorder{status: tlfs.StatusInvalidConnectionID}
	m.postMessage(inputGPA, 9, 1, nil)
	if rax, _, _ := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallPostMessage, false, 0, 0, 0), inputGPA, 0); rax != tlfs.Result(tlfs.StatusInvalidConnectionID, 0) {
		t.Errorf("handler status: %#x", rax)
	}
}

// TestInputReadOnceNotReread: another VP rewriting the input while the
// call runs changes nothing already checked. Here it raises PayloadSize
// to 240 and rewrites the payload right after the header is read: the
// handler gets the size that was checked, and the payload as read after.
func TestInputReadOnceNotReread(t *testing.T) {
	m, r := &fakeMem{}, &recorder{}
	m.postMessage(inputGPA, 1, 1, []byte("abcd"))
	m.afterRead = func(m *fakeMem) {
		m.afterRead = nil
		m.put32(inputGPA+4, 0xffff_ffff, 0, 240) // reserved word, type 0, size 240
		copy(m.ram[inputGPA+16:], "WXYZ and more")
	}
	rax, _, _ := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallPostMessage, false, 0, 0, 0), inputGPA, 0)
	if rax != 0 || r.post.Type != 1 || string(r.post.Payload) != "WXYZ" {
		t.Errorf("rax %#x, type %#x payload %q", rax, r.post.Type, r.post.Payload)
	}
}

// TestSignalEvent: fast (RDX) and slow (8 bytes at the GPA) forms alike;
// reserved bits are HV_STATUS_INVALID_HYPERCALL_INPUT, a flag number no
// port can have HV_STATUS_INVALID_PARAMETER; the handler's status is the
// call's.
func TestSignalEvent(t *testing.T) {
	for _, fast := range []bool{true, false} {
		for _, c := range []struct {
			name string
			in   uint64
			want tlfs.Status
		}{
			{"connection 0x123456, flag 0", 0x12_3456, tlfs.StatusSuccess},
			{"flag 2047", 2047<<32 | 1, tlfs.StatusSuccess},
			{"flag 2048", 2048<<32 | 1, tlfs.StatusInvalidParameter},
			{"flag 0xffff", 0xffff<<32 | 1, tlfs.StatusInvalidParameter},
			{"connection ID bit 24", 1<<24 | 1, tlfs.StatusInvalidHypercallInput},
			{"bit 48", 1<<48 | 1, tlfs.StatusInvalidHypercallInput},
			{"bit 63", 1<<63 | 1, tlfs.StatusInvalidHypercallInput},
		} {
			m, r := &fakeMem{}, &recorder{}
			rdx := c.in
			if !fast {
				m.put64(inputGPA, c.in)
				rdx = inputGPA
			}
			rax, _, done := (&Caller{VP: 1}).Dispatch(r, m, control(tlfs.HvCallSignalEvent, fast, 0, 0, 0), rdx, 0xdead)
			if rax != tlfs.Result(c.want, 0) || !done {
				t.Errorf("fast %v, %s: %v, want %v", fast, c.name, status(rax), c.want)
			}
			if called := r.calls == 1; called != (c.want == tlfs.StatusSuccess) ||
				called && (r.signal.ConnectionID != uint32(c.in&0xff_ffff) || r.signal.FlagNumber != uint16(c.in>>32)) {
				t.Errorf("fast %v, %s: %d calls with %+v", fast, c.name, r.calls, r.signal)
			}
			if fast && m.reads != 0 || !fast && m.readBytes != 8 {
				t.Errorf("fast %v, %s: %d reads of %d bytes", fast, c.name, m.reads, m.readBytes)
			}
		}
	}
	r := &recorder{status: tlfs.StatusInvalidPortID}
	if rax, _, _ := (&Caller{}).Dispatch(r, &fakeMem{}, control(tlfs.HvCallSignalEvent, true, 0, 0, 0), 4, 0); rax != tlfs.Result(tlfs.StatusInvalidPortID, 0) {
		t.Errorf("handler status: %#x", rax)
	}
}

// TestNotifyLongSpinWait: the spin count is the low 4 bytes of the input,
// fast or slow; the reserved upper half is ignored (the call has no error
// status).
func TestNotifyLongSpinWait(t *testing.T) {
	for _, fast := range []bool{true, false} {
		m, r := &fakeMem{}, &recorder{}
		in := uint64(0xffff_ffff_0000_0fff)
		rdx := in
		if !fast {
			m.put64(inputGPA, in)
			rdx = inputGPA
		}
		rax, _, done := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallNotifyLongSpinWait, fast, 0, 0, 0), rdx, 0)
		if rax != 0 || !done || r.spin != 0xfff || r.calls != 1 {
			t.Errorf("fast %v: rax %#x, count %#x", fast, rax, r.spin)
		}
	}
}

// TestFlushSpace: the plain and Ex inputs decoded alike; the flags and
// the processor set checked as the TLFS's flush pages say.
func TestFlushSpace(t *testing.T) {
	const plain, ex = tlfs.HvCallFlushVirtualAddressSpace, tlfs.HvCallFlushVirtualAddressSpaceEx
	for _, c := range []struct {
		name     string
		code     uint16
		varHdr   uint16
		in       []uint64
		want     tlfs.Status
		includes []uint32 // VPs the flush must include (when it succeeds)
		excludes []uint32
	}{
		{"mask 0x51", plain, 0, []uint64{0x1234_5000, 0, 0x51}, tlfs.StatusSuccess, []uint32{0, 4, 6}, []uint32{1, 5, 64}},
		{"all processors", plain, 0, []uint64{0, tlfs.FlushAllProcessors, 0}, tlfs.StatusSuccess, []uint32{0, 63, 4095}, nil},
		{"every valid flag", plain, 0, []uint64{0, 7, 1}, tlfs.StatusSuccess, []uint32{0, 1}, nil},
		{"extended range format", plain, 0, []uint64{0, tlfs.FlushUseExtendedRangeFormat, 1}, tlfs.StatusInvalidParameter, nil, nil},
		{"flag bit 4", plain, 0, []uint64{0, 1 << 4, 1}, tlfs.StatusInvalidParameter, nil, nil},
		{"flag bit 63", plain, 0, []uint64{0, 1 << 63, 1}, tlfs.StatusInvalidParameter, nil, nil},
		{"Ex: the TLFS's {0,5,130}", ex, 2, []uint64{0x9000, tlfs.FlushNonGlobalMappingsOnly, tlfs.GenericSetSparse4K, 0x5, 0x21, 0x4}, tlfs.StatusSuccess, []uint32{0, 5, 130}, []uint32{1, 64, 129, 131}},
		{"Ex: all, no banks", ex, 0, []uint64{0, 0, tlfs.GenericSetAll, 0}, tlfs.StatusSuccess, []uint32{0, 200, 4095}, nil},
		{"Ex: all, banks given and ignored", ex, 1, []uint64{0, 0, tlfs.GenericSetAll, 0x8, 0}, tlfs.StatusSuccess, []uint32{0, 1}, nil},
		{"Ex: empty sparse set", ex, 0, []uint64{0, 0, tlfs.GenericSetSparse4K, 0}, tlfs.StatusSuccess, nil, []uint32{0, 64}},
		{"Ex: bank 63", ex, 1, []uint64{0, 0, tlfs.GenericSetSparse4K, 1 << 63, 1 << 63}, tlfs.StatusSuccess, []uint32{4095}, []uint32{4094, 63}},
		{"Ex: 64 banks", ex, 64, append([]uint64{0, 0, tlfs.GenericSetSparse4K, ^uint64(0)}, make([]uint64, 64)...), tlfs.StatusSuccess, nil, []uint32{0, 4095}},
		{"Ex: fewer header units than banks", ex, 1, []uint64{0, 0, tlfs.GenericSetSparse4K, 0x5, 0x21, 0x4}, tlfs.StatusInvalidHypercallInput, nil, nil},
		{"Ex: more header units than banks", ex, 3, []uint64{0, 0, tlfs.GenericSetSparse4K, 0x5, 0x21, 0x4, 0}, tlfs.StatusInvalidHypercallInput, nil, nil},
		{"Ex: all, units but no banks named", ex, 1, []uint64{0, 0, tlfs.GenericSetAll, 0, 0}, tlfs.StatusInvalidHypercallInput, nil, nil},
		{"Ex: format 2", ex, 0, []uint64{0, 0, 2, 0}, tlfs.StatusInvalidParameter, nil, nil},
		{"Ex: reserved flag", ex, 0, []uint64{0, 1 << 8, tlfs.GenericSetAll, 0}, tlfs.StatusInvalidParameter, nil, nil},
	} {
		m, r := &fakeMem{}, &recorder{}
		m.put64(inputGPA, c.in...)
		rax, _, done := (&Caller{}).Dispatch(r, m, control(c.code, false, c.varHdr, 0, 0), inputGPA, 0)
		if rax != tlfs.Result(c.want, 0) || !done {
			t.Errorf("%s: %v, want %v", c.name, status(rax), c.want)
			continue
		}
		if r.spaceCalls != btoi(c.want == tlfs.StatusSuccess) {
			t.Errorf("%s: %d handler calls", c.name, r.spaceCalls)
			continue
		}
		if c.want != tlfs.StatusSuccess {
			continue
		}
		if r.flush.AddressSpace != c.in[0] || r.flush.Flags != c.in[1] {
			t.Errorf("%s: got %+v", c.name, r.flush)
		}
		for _, vp := range c.includes {
			if !r.flush.Includes(vp) {
				t.Errorf("%s: VP %d not included", c.name, vp)
			}
		}
		for _, vp := range c.excludes {
			if r.flush.Includes(vp) {
				t.Errorf("%s: VP %d included", c.name, vp)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFlushListFlags: HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY is "an invalid
// option" for the list forms; the other two flags are valid.
func TestFlushListFlags(t *testing.T) {
	for _, c := range []struct {
		flags uint64
		want  tlfs.Status
	}{
		{0, tlfs.StatusSuccess},
		{tlfs.FlushAllProcessors | tlfs.FlushAllVirtualAddressSpaces, tlfs.StatusSuccess},
		{tlfs.FlushNonGlobalMappingsOnly, tlfs.StatusInvalidParameter},
		{tlfs.FlushUseExtendedRangeFormat, tlfs.StatusInvalidParameter},
		{1 << 40, tlfs.StatusInvalidParameter},
	} {
		m, r := &fakeMem{}, &recorder{}
		m.flushList(inputGPA, 0, c.flags, 1, 2)
		rax, _, _ := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, 2, 0), inputGPA, 0)
		want := tlfs.Result(c.want, 0)
		if c.want == tlfs.StatusSuccess {
			want = tlfs.Result(c.want, 2)
		}
		if rax != want {
			t.Errorf("flags %#x: rax %#x, want %#x", c.flags, rax, want)
		}
		m.put64(inputGPA, 0, c.flags, tlfs.GenericSetAll, 0, uint64(wantRange(0)))
		rax, _, _ = (&Caller{}).Dispatch(r, m, control(tlfs.HvCallFlushVirtualAddressListEx, false, 0, 1, 0), inputGPA, 0)
		if status(rax) != c.want {
			t.Errorf("Ex, flags %#x: %v, want %v", c.flags, status(rax), c.want)
		}
	}
}

// resume runs a call to completion the way the VP loop does: while not
// done, it re-enters with newRCX and the same RDX and R8. It returns the
// final RAX and the number of Dispatch calls, and checks each yield.
func resume(t *testing.T, c *Caller, h any, m Memory, rcx, rdx uint64, between func(exit int)) (uint64, int) {
	t.Helper()
	for exit := 1; ; exit++ {
		rax, newRCX, done := c.Dispatch(h, m, rcx, rdx, 0)
		if done {
			if newRCX != rcx {
				t.Fatalf("exit %d: done, but RCX changed %#x → %#x", exit, rcx, newRCX)
			}
			return rax, exit
		}
		old, next := tlfs.DecodeControl(rcx), tlfs.DecodeControl(newRCX)
		if rax != 0 || newRCX&^tlfs.ControlRepStartMask != rcx&^tlfs.ControlRepStartMask ||
			next.RepStart != old.RepStart+MaxRepsPerExit || next.RepStart >= next.RepCount {
			t.Fatalf("exit %d: yielded rax %#x, RCX %#x → %#x", exit, rax, rcx, newRCX)
		}
		if exit > 0x1000 {
			t.Fatal("no end")
		}
		rcx = newRCX
		if between != nil {
			between(exit)
		}
	}
}

// TestRepResume: a list longer than MaxRepsPerExit takes several exits,
// each advancing the rep start index by the chunk it did; every range
// reaches the handler once, in order; the reps completed count from
// element 0. A guest's own start index is honoured.
func TestRepResume(t *testing.T) {
	for _, c := range []struct {
		count, start uint16
		exits        int
	}{
		{1, 0, 1}, {64, 0, 1}, {65, 0, 2}, {200, 0, 4}, {509, 0, 8}, {200, 150, 1}, {200, 100, 2}, {509, 508, 1},
	} {
		m, r := &fakeMem{}, &recorder{}
		m.flushList(inputGPA, 0x7000, 0, 0x3, int(c.count))
		rax, exits := resume(t, &Caller{}, r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, c.count, c.start), inputGPA, nil)
		if rax != tlfs.Result(tlfs.StatusSuccess, c.count) || exits != c.exits {
			t.Errorf("%d from %d: rax %#x after %d exits, want %d", c.count, c.start, rax, exits, c.exits)
		}
		if r.nranges != int(c.count-c.start) || r.maxChunk > MaxRepsPerExit {
			t.Errorf("%d from %d: handler got %d ranges, chunks up to %d", c.count, c.start, r.nranges, r.maxChunk)
		}
		for i := range r.nranges {
			if r.ranges[i] != wantRange(int(c.start)+i) {
				t.Fatalf("%d from %d: range %d is %#x", c.count, c.start, i, uint64(r.ranges[i]))
			}
		}
	}
}

// TestRepResumeEx: the Ex list's ranges follow its bank masks, and resume
// the same way.
func TestRepResumeEx(t *testing.T) {
	m, r := &fakeMem{}, &recorder{}
	m.put64(inputGPA, 0, 0, tlfs.GenericSetSparse4K, 0x6, 0x1, 0x2) // banks 1, 2: VPs 64 and 129
	const count = 150
	for i := range count {
		m.put64(inputGPA+48+8*uint64(i), uint64(wantRange(i)))
	}
	rax, exits := resume(t, &Caller{}, r, m, control(tlfs.HvCallFlushVirtualAddressListEx, false, 2, count, 0), inputGPA, nil)
	if rax != tlfs.Result(tlfs.StatusSuccess, count) || exits != 3 || r.nranges != count {
		t.Fatalf("rax %#x after %d exits, %d ranges", rax, exits, r.nranges)
	}
	for i := range count {
		if r.ranges[i] != wantRange(i) {
			t.Fatalf("range %d is %#x", i, uint64(r.ranges[i]))
		}
	}
	if !r.flush.Includes(64) || !r.flush.Includes(129) || r.flush.Includes(0) || r.flush.Includes(128) {
		t.Error("processor set")
	}
}

// TestRepErrorReportsCompleted: a handler failing a chunk ends the call
// with the reps completed before that chunk; an input made unreadable
// between exits likewise.
func TestRepErrorReportsCompleted(t *testing.T) {
	m, r := &fakeMem{}, &recorder{}
	m.flushList(inputGPA, 0, 0, 1, 200)
	rax, exits := resume(t, &Caller{}, r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, 200, 0), inputGPA, func(exit int) {
		if exit == 2 {
			r.status = tlfs.StatusInsufficientMemory
		}
	})
	if rax != tlfs.Result(tlfs.StatusInsufficientMemory, 128) || exits != 3 {
		t.Errorf("handler failure: rax %#x after %d exits", rax, exits)
	}

	// The guest sets a reserved flag after the first chunk.
	m, r = &fakeMem{}, &recorder{}
	m.flushList(inputGPA, 0, 0, 1, 100)
	rax, _ = resume(t, &Caller{}, r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, 100, 0), inputGPA, func(int) {
		m.put64(inputGPA+8, 1<<20)
	})
	if rax != tlfs.Result(tlfs.StatusInvalidParameter, 64) || r.nranges != 64 {
		t.Errorf("flags changed between exits: rax %#x, %d ranges", rax, r.nranges)
	}
}

// TestGuestChangesListBetweenExits: elements already processed are never
// read again — the next exit reads the header and its own chunk only —
// so rewriting them between exits changes nothing; an element not yet
// processed is read when its turn comes (TLFS 3: inputs may be read at any
// time before the action that uses them).
func TestGuestChangesListBetweenExits(t *testing.T) {
	m, r := &fakeMem{}, &recorder{}
	m.flushList(inputGPA, 0, 0, 1, 100)
	var secondReads int
	rax, _ := resume(t, &Caller{}, r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, 100, 0), inputGPA, func(int) {
		for i := range 100 {
			m.put64(inputGPA+24+8*uint64(i), 0xbad000)
		}
		m.readBytes = 0
		m.afterRead = func(m *fakeMem) { secondReads = m.readBytes }
	})
	if rax != tlfs.Result(tlfs.StatusSuccess, 100) || r.nranges != 100 {
		t.Fatalf("rax %#x, %d ranges", rax, r.nranges)
	}
	for i := range 64 {
		if r.ranges[i] != wantRange(i) {
			t.Errorf("processed range %d became %#x", i, uint64(r.ranges[i]))
		}
	}
	for i := 64; i < 100; i++ {
		if r.ranges[i] != 0xbad000 {
			t.Errorf("pending range %d is %#x, not what the guest last wrote", i, uint64(r.ranges[i]))
		}
	}
	if secondReads != 24+8*36 {
		t.Errorf("second exit read %d bytes, want the header and 36 ranges", secondReads)
	}
}

// TestRepChunkIsReadOnce: within one exit, a guest rewriting its header
// after it was checked, or its ranges after they were read, does not reach
// the handler.
func TestRepChunkIsReadOnce(t *testing.T) {
	m, r := &fakeMem{}, &recorder{}
	m.flushList(inputGPA, 0, 0, 1, 10)
	m.afterRead = func(m *fakeMem) {
		switch m.reads {
		case 1: // the header was read
			m.put64(inputGPA+8, 1<<30) // a reserved flag
		case 2: // the chunk was read
			for i := range 10 {
				m.put64(inputGPA+24+8*uint64(i), 0xbad000)
			}
		}
	}
	rax, _, done := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, 10, 0), inputGPA, 0)
	if rax != tlfs.Result(tlfs.StatusSuccess, 10) || !done || r.flush.Flags != 0 {
		t.Fatalf("rax %#x, flags %#x", rax, r.flush.Flags)
	}
	for i := range 10 {
		if r.ranges[i] != wantRange(i) {
			t.Errorf("range %d is %#x", i, uint64(r.ranges[i]))
		}
	}
}

// TestResultValue: RAX carries the status in 15:0 and the reps completed
// in 43:32, nothing else (TLFS 3, "Hypercall Outputs").
func TestResultValue(t *testing.T) {
	m, r := &fakeMem{}, &recorder{status: tlfs.StatusInvalidVPIndex}
	m.flushList(inputGPA, 0, 0, 1, 30)
	rax, _, _ := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, 30, 20), inputGPA, 0)
	if rax != uint64(tlfs.StatusInvalidVPIndex)|20<<32 {
		t.Errorf("rax %#x", rax)
	}
}

// TestInputVanishesMidCall: memory the partition loses between the reads
// of one call (its header read, its payload or chunk not) fails the call
// with HV_STATUS_INVALID_ALIGNMENT, and the reps completed before it.
func TestInputVanishesMidCall(t *testing.T) {
	m, r := &fakeMem{failFrom: 2}, &recorder{}
	m.postMessage(inputGPA, 1, 1, []byte("hi"))
	if rax, _, _ := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallPostMessage, false, 0, 0, 0), inputGPA, 0); rax != tlfs.Result(tlfs.StatusInvalidAlignment, 0) || r.calls != 0 {
		t.Errorf("message: rax %#x, %d calls", rax, r.calls)
	}
	m, r = &fakeMem{failFrom: 2}, &recorder{}
	m.flushList(inputGPA, 0, 0, 1, 100)
	if rax, _, done := (&Caller{}).Dispatch(r, m, control(tlfs.HvCallFlushVirtualAddressList, false, 0, 100, 70), inputGPA, 0); rax != tlfs.Result(tlfs.StatusInvalidAlignment, 70) || !done || r.calls != 0 {
		t.Errorf("flush list: rax %#x done %v, %d calls", rax, done, r.calls)
	}
}

// TestServedCodesAreLookups: Served, Dispatch's quick refusal, lets
// through exactly the codes lookup knows, all of them below maxServedCode.
func TestServedCodesAreLookups(t *testing.T) {
	for code := range 1 << 16 {
		_, known := lookup(uint16(code))
		quick := Served(uint16(code))
		if known != quick {
			t.Errorf("code %#x: lookup knows it %v, the quick check %v", code, known, quick)
		}
	}
}
