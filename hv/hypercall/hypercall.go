package hypercall

import (
	"gohv/hv/tlfs"
	"gohv/x86"
)

// Memory is the calling partition's RAM as the caller's VP sees it. Reads
// and writes refuse any address that is not RAM (MMIO, outside the
// partition) with an error.
type Memory interface {
	ReadRAM(gpa uint64, b []byte) error
	WriteRAM(gpa uint64, b []byte) error
}

// One small interface per hypercall: a handler value may implement any
// subset, and Dispatch answers HV_STATUS_INVALID_HYPERCALL_CODE for a call
// it does not implement. Each method runs on the calling VP's thread, must
// not keep the views it is given past its return, and returns the call's
// status (tlfs.StatusSuccess or one its TLFS page lists).

// PostMessager serves HvCallPostMessage (TLFS 11, "HvCallPostMessage"):
// the input is checked (connection ID and reserved fields, message type
// non-zero and below the hypervisor's, payload at most 240 bytes); the
// handler finds the connection's port and queues the message, or answers
// INVALID_CONNECTION_ID, INVALID_PORT_ID, INSUFFICIENT_BUFFERS, ...
type PostMessager interface {
	PostMessage(vp uint32, in tlfs.PostMessageInput) tlfs.Status
}

// EventSignaler serves HvCallSignalEvent (TLFS 11, "HvCallSignalEvent"):
// the input is checked (reserved bits, a flag number below
// tlfs.EventFlagsPerSINT, the most any port can have); the handler checks
// the flag number against its port's flag count (INVALID_PARAMETER) and
// sets the flag.
type EventSignaler interface {
	SignalEvent(vp uint32, in tlfs.SignalEventInput) tlfs.Status
}

// LongSpinWaitNotifier serves HvCallNotifyLongSpinWait, an advisory call:
// the TLFS gives it no error status, so the handler returns
// tlfs.StatusSuccess, and the reserved upper half of the input is ignored.
type LongSpinWaitNotifier interface {
	NotifyLongSpinWait(vp uint32, count uint32) tlfs.Status
}

// AddressSpaceFlusher serves the virtual-TLB flush calls (TLFS "Virtual
// MMU": HvCallFlushVirtualAddressSpace, HvCallFlushVirtualAddressList and
// their Ex forms, which differ only in carrying an HV_VP_SET instead of a
// 64-bit processor mask; in.Includes(vp) answers for both). The flags are
// checked before the handler sees them. FlushVirtualAddressList gets the
// ranges in chunks of at most MaxRepsPerExit; on a status other than
// success none of the chunk counts as completed. Both return only when the
// flushes are visible on every targeted VP (the TLFS's guarantee).
type AddressSpaceFlusher interface {
	FlushVirtualAddressSpace(vp uint32, in tlfs.FlushVirtualAddressInput) tlfs.Status
	FlushVirtualAddressList(vp uint32, in tlfs.FlushVirtualAddressInput, ranges []tlfs.GVARange) tlfs.Status
}

// SyntheticIPISender serves HvCallSendSyntheticClusterIpi and its Ex
// form (TLFS "Virtual Processor Management" chapter's synthetic IPIs): a
// fixed interrupt of in.Vector to every VP in in.Processors. The vector
// (16 to 255), the target VTL (0) and the reserved bytes are checked
// before the handler sees them: HV_STATUS_INVALID_HYPERCALL_INPUT
// otherwise, as KVM answers. VP indexes the partition does not have are
// the handler's to ignore.
type SyntheticIPISender interface {
	SendSyntheticClusterIPI(vp uint32, in tlfs.SendIPIInput) tlfs.Status
}

// Allower may be implemented by a handler whose partition is not given
// every call the handler implements — the calls its CPUID leaves do not
// advertise (the PostMessages and SignalEvents privileges, the remote-flush
// and Ex-processor-mask recommendations). Allowed reports whether the
// partition may make the call with this code; a refused call is answered as
// one the handler does not implement, or HV_STATUS_ACCESS_DENIED where the
// TLFS gates it by a privilege. Called on every hypercall the handler
// implements: it must be cheap and must not allocate.
type Allower interface {
	Allowed(code uint16) bool
}

// MaxRepsPerExit bounds the rep elements one Dispatch processes. One input
// page holds at most 509 flush ranges, and each range covers up to 4096
// pages: 64 ranges per exit keep a list of any size to 8 exits, with the
// guest's pending interrupts served between them, while a chunk's decoding
// costs well under a microsecond.
const MaxRepsPerExit = 64

// Caller is one VP's hypercall state: the buffer the input is copied
// through (no allocation per call) and its VP index. One per VP, used only
// on that VP's thread.
type Caller struct {
	VP uint32

	// in holds the input as read from the guest, at the offsets it has in
	// the guest's input list: one page, since no list crosses one.
	in [x86.PageSize]byte
	// ranges holds the current chunk of a flush list, decoded.
	ranges [MaxRepsPerExit]tlfs.GVARange
}

// Dispatch runs the hypercall whose x64 registers are given (RCX the input
// value, RDX the input GPA or fast input, R8 the output GPA or fast input)
// against mem and h. It returns the value for RAX and whether the call is
// complete. When done, the caller writes RAX and advances RIP past the
// hypercall instruction; newRCX is rcx. When not done (a rep call yielding
// before its last element), rax is 0 and meaningless: the caller leaves the
// guest's RAX and RIP as they are, sets RCX to newRCX (the rep start index
// advanced) and re-enters the guest, which executes the call again. RDX and
// R8 are never changed.
//
// Exit path: must not allocate; guest-controlled: every register and every
// byte read from mem, each checked before use.
func (c *Caller) Dispatch(h any, mem Memory, rcx, rdx, r8 uint64) (rax, newRCX uint64, done bool) {
	// A code no call has is refused here, before the input value is
	// decoded: a few instructions instead of about a hundred.
	if !Served(uint16(rcx & tlfs.ControlCallCodeMask)) {
		return tlfs.Result(tlfs.StatusInvalidHypercallCode, 0), rcx, true
	}
	return c.dispatch(h, mem, rcx, rdx, r8)
}

// Served reports whether code is a call Dispatch may run; Dispatch
// answers any other with HV_STATUS_INVALID_HYPERCALL_CODE and reaches no
// handler, so a hypervisor can answer it without blocking. Bounded; must
// not allocate.
func Served(code uint16) bool {
	return code < maxServedCode && servedCodes[code/64]&(1<<(code%64)) != 0
}

// maxServedCode bounds the codes lookup knows (TestServedCodesAreLookups).
const maxServedCode = 128

// servedCodes has bit code set for each code below maxServedCode that
// lookup knows: Dispatch's quick refusal of the others.
var servedCodes = func() (m [maxServedCode / 64]uint64) {
	for code := range uint16(maxServedCode) {
		if _, ok := lookup(code); ok {
			m[code/64] |= 1 << (code % 64)
		}
	}
	return m
}()

// dispatch is Dispatch for a code lookup may know.
func (c *Caller) dispatch(h any, mem Memory, rcx, rdx, r8 uint64) (rax, newRCX uint64, done bool) {
	ctl := tlfs.DecodeControl(rcx)
	spec, ok := lookup(ctl.Code)
	if !ok || !implements(h, ctl.Code) {
		return tlfs.Result(tlfs.StatusInvalidHypercallCode, 0), rcx, true
	}
	if a, ok := h.(Allower); ok && !a.Allowed(ctl.Code) {
		if spec.privileged {
			return tlfs.Result(tlfs.StatusAccessDenied, 0), rcx, true
		}
		return tlfs.Result(tlfs.StatusInvalidHypercallCode, 0), rcx, true
	}
	if s := spec.check(ctl); s != tlfs.StatusSuccess {
		return tlfs.Result(s, 0), rcx, true
	}
	s, reps := c.run(h, mem, spec, ctl, rdx, r8)
	if s == tlfs.StatusSuccess && spec.rep && reps < ctl.RepCount {
		return 0, rcx&^tlfs.ControlRepStartMask | uint64(reps)<<tlfs.ControlRepStartShift, false
	}
	return tlfs.Result(s, reps), rcx, true
}

// call is one hypercall's shape as TLFS 3 and its page describe it.
type call struct {
	fast       bool   // has the register form: its whole input fits RDX (and R8: 16 bytes)
	rep        bool   // a rep call (a list of elements after a header)
	maxVarHdr  uint16 // the most 8-byte units of variable header it takes
	header     int    // fixed input (header) bytes
	elem       int    // bytes per rep element
	privileged bool   // the TLFS gates it by a partition privilege
}

// lookup gives the shape of the calls served; ok is false for any other
// code.
func lookup(code uint16) (c call, ok bool) {
	switch code {
	case tlfs.HvCallPostMessage:
		return call{header: tlfs.PostMessageInputSize, privileged: true}, true
	case tlfs.HvCallSignalEvent:
		return call{fast: true, header: tlfs.SignalEventInputSize, privileged: true}, true
	case tlfs.HvCallNotifyLongSpinWait:
		return call{fast: true, header: tlfs.NotifyLongSpinWaitInputSize}, true
	case tlfs.HvCallFlushVirtualAddressSpace:
		return call{header: tlfs.FlushInputSize}, true
	case tlfs.HvCallFlushVirtualAddressList:
		return call{rep: true, header: tlfs.FlushInputSize, elem: tlfs.GVARangeSize}, true
	case tlfs.HvCallFlushVirtualAddressSpaceEx:
		return call{header: tlfs.FlushExInputFixedSize, maxVarHdr: tlfs.MaxSparseBanks}, true
	case tlfs.HvCallFlushVirtualAddressListEx:
		return call{rep: true, header: tlfs.FlushExInputFixedSize, maxVarHdr: tlfs.MaxSparseBanks, elem: tlfs.GVARangeSize}, true
	case tlfs.HvCallSendSyntheticClusterIpi:
		return call{fast: true, header: tlfs.SendIPIInputSize}, true
	case tlfs.HvCallSendSyntheticClusterIpiEx:
		return call{header: tlfs.SendIPIExInputFixedSize, maxVarHdr: tlfs.MaxSparseBanks}, true
	}
	return call{}, false
}

// implements reports whether h serves the call with this code.
func implements(h any, code uint16) bool {
	var ok bool
	switch code {
	case tlfs.HvCallPostMessage:
		_, ok = h.(PostMessager)
	case tlfs.HvCallSignalEvent:
		_, ok = h.(EventSignaler)
	case tlfs.HvCallNotifyLongSpinWait:
		_, ok = h.(LongSpinWaitNotifier)
	case tlfs.HvCallFlushVirtualAddressSpace, tlfs.HvCallFlushVirtualAddressList,
		tlfs.HvCallFlushVirtualAddressSpaceEx, tlfs.HvCallFlushVirtualAddressListEx:
		_, ok = h.(AddressSpaceFlusher)
	case tlfs.HvCallSendSyntheticClusterIpi, tlfs.HvCallSendSyntheticClusterIpiEx:
		_, ok = h.(SyntheticIPISender)
	}
	return ok
}

// check applies TLFS 3's rules for the input value to this call: reserved
// bits zero, a rep count exactly on rep calls with the start index below
// it, a variable header only where the call takes one, the fast flag only
// where the call has a fast form. All earn HV_STATUS_INVALID_HYPERCALL_INPUT.
func (k call) check(ctl tlfs.Control) tlfs.Status {
	switch {
	case ctl.Reserved != 0,
		ctl.Fast && !k.fast,
		ctl.VarHeaderUnits > k.maxVarHdr,
		k.rep && (ctl.RepCount == 0 || ctl.RepStart >= ctl.RepCount),
		!k.rep && (ctl.RepCount != 0 || ctl.RepStart != 0):
		return tlfs.StatusInvalidHypercallInput
	}
	return tlfs.StatusSuccess
}

// inputSize is the size of the whole input list: header, variable header
// and every rep element (not only those still to do).
func (k call) inputSize(ctl tlfs.Control) int {
	return k.header + 8*int(ctl.VarHeaderUnits) + k.elem*int(ctl.RepCount)
}

// checkInput applies TLFS 3 "Alignment Requirements" to a slow call's
// input list of size bytes at gpa: 8-byte aligned and within one page, else
// HV_STATUS_INVALID_ALIGNMENT.
func checkInput(gpa uint64, size int) tlfs.Status {
	if gpa%8 != 0 || gpa%x86.PageSize+uint64(size) > x86.PageSize {
		return tlfs.StatusInvalidAlignment
	}
	return tlfs.StatusSuccess
}

// read copies n bytes of the input list, from offset off, into the same
// offset of c.in. The list was checked to lie in one page, so gpa+off
// neither wraps nor leaves it. A Memory refusal is
// HV_STATUS_INVALID_ALIGNMENT (see the package documentation).
func (c *Caller) read(mem Memory, gpa uint64, off, n int) tlfs.Status {
	if mem.ReadRAM(gpa+uint64(off), c.in[off:off+n]) != nil {
		return tlfs.StatusInvalidAlignment
	}
	return tlfs.StatusSuccess
}

// run performs a call whose input value passed check: it returns the
// status and the reps completed (for a rep call, counted from element 0).
func (c *Caller) run(h any, mem Memory, k call, ctl tlfs.Control, rdx, r8 uint64) (tlfs.Status, uint16) {
	if !ctl.Fast {
		if s := checkInput(rdx, k.inputSize(ctl)); s != tlfs.StatusSuccess {
			return s, ctl.RepStart
		}
	}
	switch ctl.Code {
	case tlfs.HvCallPostMessage:
		return c.postMessage(h.(PostMessager), mem, rdx), 0
	case tlfs.HvCallSignalEvent:
		return c.signalEvent(h.(EventSignaler), mem, ctl, rdx), 0
	case tlfs.HvCallNotifyLongSpinWait:
		return c.notifyLongSpinWait(h.(LongSpinWaitNotifier), mem, ctl, rdx), 0
	case tlfs.HvCallSendSyntheticClusterIpi, tlfs.HvCallSendSyntheticClusterIpiEx:
		return c.sendIPI(h.(SyntheticIPISender), mem, ctl, rdx, r8), 0
	default: // the four flush calls
		return c.flush(h.(AddressSpaceFlusher), mem, ctl, rdx)
	}
}
