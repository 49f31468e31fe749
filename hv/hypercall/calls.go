package hypercall

import (
	"encoding/binary"
	"errors"

	"gohv/hv/tlfs"
)

// postMessage serves HvCallPostMessage (slow only; TLFS 11,
// "HvCallPostMessage"). It reads the 16-byte header, checks it, then reads
// only the PayloadSize bytes of payload the header announces. Statuses:
// reserved bits in the connection ID or the reserved word:
// HV_STATUS_INVALID_HYPERCALL_INPUT (reserved input, as for the input
// value; KVM does the same for HvCallSignalEvent); a payload above 240
// bytes, a message type of zero or with bit 31 set:
// HV_STATUS_INVALID_PARAMETER, as the call's TLFS page lists.
func (c *Caller) postMessage(p PostMessager, mem Memory, gpa uint64) tlfs.Status {
	const header = tlfs.PostMessageInputSize - tlfs.MessagePayloadSize
	if s := c.read(mem, gpa, 0, header); s != tlfs.StatusSuccess {
		return s
	}
	// Decoded from the header alone: in.Payload is the view
	// c.in[16:16+PayloadSize], filled by the read below before anyone
	// looks at it; what the buffer held beyond it is never seen.
	in, err := tlfs.ParsePostMessageInput(c.in[:tlfs.PostMessageInputSize])
	switch {
	case errors.Is(err, tlfs.ErrReservedBits):
		return tlfs.StatusInvalidHypercallInput
	case err != nil:
		return tlfs.StatusInvalidParameter
	}
	if s := c.read(mem, gpa, header, len(in.Payload)); s != tlfs.StatusSuccess {
		return s
	}
	return p.PostMessage(c.VP, in)
}

// input8 is an 8-byte input: RDX in the fast form, else read from gpa.
func (c *Caller) input8(mem Memory, ctl tlfs.Control, rdx uint64) (uint64, tlfs.Status) {
	if ctl.Fast {
		return rdx, tlfs.StatusSuccess
	}
	if s := c.read(mem, rdx, 0, 8); s != tlfs.StatusSuccess {
		return 0, s
	}
	return binary.LittleEndian.Uint64(c.in[:8]), tlfs.StatusSuccess
}

// signalEvent serves HvCallSignalEvent (fast or slow; TLFS 11,
// "HvCallSignalEvent"). Statuses: reserved bits (connection ID 31:24,
// 63:48): HV_STATUS_INVALID_HYPERCALL_INPUT, as KVM answers; a flag number
// of tlfs.EventFlagsPerSINT or more, beyond any port's flag count:
// HV_STATUS_INVALID_PARAMETER, the status the TLFS page gives for a flag
// number beyond the port's count (smaller ones the handler checks against
// its port).
func (c *Caller) signalEvent(e EventSignaler, mem Memory, ctl tlfs.Control, rdx uint64) tlfs.Status {
	v, s := c.input8(mem, ctl, rdx)
	if s != tlfs.StatusSuccess {
		return s
	}
	in, err := tlfs.ParseSignalEventInput(v)
	if err != nil {
		return tlfs.StatusInvalidHypercallInput
	}
	if in.FlagNumber >= tlfs.EventFlagsPerSINT {
		return tlfs.StatusInvalidParameter
	}
	return e.SignalEvent(c.VP, in)
}

// notifyLongSpinWait serves HvCallNotifyLongSpinWait (fast or slow; TLFS
// "HvCallNotifyLongSpinWait"): SpinCount is the low 4 bytes; the RsvdZ
// upper half is ignored, since the TLFS gives this advisory call no error
// status.
func (c *Caller) notifyLongSpinWait(n LongSpinWaitNotifier, mem Memory, ctl tlfs.Control, rdx uint64) tlfs.Status {
	v, s := c.input8(mem, ctl, rdx)
	if s != tlfs.StatusSuccess {
		return s
	}
	return n.NotifyLongSpinWait(c.VP, uint32(v))
}

// flush serves the four virtual-TLB flush calls (slow only; TLFS "Virtual
// MMU": HvCallFlushVirtualAddressSpace/List and their Ex forms) and returns
// the reps completed. It reads the header (for the Ex forms, the fixed
// part and the bank masks the variable header size announces) and, for the
// list forms, only the chunk of ranges this exit processes. Statuses:
//   - an Ex form whose variable header size is not the number of banks
//     its ValidBanksMask names: HV_STATUS_INVALID_HYPERCALL_INPUT (the
//     input value misdescribes the input; KVM answers the same);
//   - an HV_VP_SET format other than sparse (0) or all (1):
//     HV_STATUS_INVALID_PARAMETER;
//   - a reserved flag: HV_STATUS_INVALID_PARAMETER. Reserved are all but
//     HV_FLUSH_ALL_PROCESSORS, HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES and, on
//     the Space forms only, HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY (the List
//     page calls it "an invalid option" there);
//     HV_FLUSH_USE_EXTENDED_RANGE_FORMAT is reserved too, as extended GVA
//     ranges are not advertised.
func (c *Caller) flush(f AddressSpaceFlusher, mem Memory, ctl tlfs.Control, gpa uint64) (tlfs.Status, uint16) {
	start := ctl.RepStart
	var (
		in     tlfs.FlushVirtualAddressInput
		header int
	)
	switch ctl.Code {
	case tlfs.HvCallFlushVirtualAddressSpaceEx, tlfs.HvCallFlushVirtualAddressListEx:
		header = tlfs.FlushExInputFixedSize + 8*int(ctl.VarHeaderUnits)
		if s := c.read(mem, gpa, 0, header); s != tlfs.StatusSuccess {
			return s, start
		}
		var n int
		var err error
		in, n, err = tlfs.ParseFlushVirtualAddressExInput(c.in[:header])
		switch {
		case errors.Is(err, tlfs.ErrVPSetFormat):
			return tlfs.StatusInvalidParameter, start
		case err != nil, n != header:
			return tlfs.StatusInvalidHypercallInput, start
		}
	default:
		header = tlfs.FlushInputSize
		if s := c.read(mem, gpa, 0, header); s != tlfs.StatusSuccess {
			return s, start
		}
		in, _ = tlfs.ParseFlushVirtualAddressInput(c.in[:header]) // cannot fail on FlushInputSize bytes
	}

	list := ctl.Code == tlfs.HvCallFlushVirtualAddressList || ctl.Code == tlfs.HvCallFlushVirtualAddressListEx
	valid := uint64(tlfs.FlushAllProcessors | tlfs.FlushAllVirtualAddressSpaces)
	if !list {
		valid |= tlfs.FlushNonGlobalMappingsOnly
	}
	if in.Flags&^valid != 0 {
		return tlfs.StatusInvalidParameter, start
	}
	if !list {
		return f.FlushVirtualAddressSpace(c.VP, in), 0
	}

	n := min(int(ctl.RepCount-start), MaxRepsPerExit)
	off := header + tlfs.GVARangeSize*int(start)
	if s := c.read(mem, gpa, off, tlfs.GVARangeSize*n); s != tlfs.StatusSuccess {
		return s, start
	}
	for i := range n {
		c.ranges[i] = tlfs.GVARange(binary.LittleEndian.Uint64(c.in[off+tlfs.GVARangeSize*i:]))
	}
	if s := f.FlushVirtualAddressList(c.VP, in, c.ranges[:n]); s != tlfs.StatusSuccess {
		return s, start
	}
	return tlfs.StatusSuccess, start + uint16(n)
}

// sendIPI decodes either synthetic-IPI call: the plain form from memory
// or, fast, from RDX (vector, VTL, reserved) and R8 (the processor mask);
// the Ex form from memory, its bank masks the variable header.
func (c *Caller) sendIPI(s SyntheticIPISender, mem Memory, ctl tlfs.Control, rdx, r8 uint64) tlfs.Status {
	var in tlfs.SendIPIInput
	switch {
	case ctl.Code == tlfs.HvCallSendSyntheticClusterIpiEx:
		header := tlfs.SendIPIExInputFixedSize + 8*int(ctl.VarHeaderUnits)
		if st := c.read(mem, rdx, 0, header); st != tlfs.StatusSuccess {
			return st
		}
		var n int
		var err error
		in, n, err = tlfs.ParseSendIPIExInput(c.in[:header])
		switch {
		case errors.Is(err, tlfs.ErrVPSetFormat):
			return tlfs.StatusInvalidParameter
		case err != nil, n != header:
			return tlfs.StatusInvalidHypercallInput
		}
	case ctl.Fast:
		binary.LittleEndian.PutUint64(c.in[0:], rdx)
		binary.LittleEndian.PutUint64(c.in[8:], r8)
		in, _ = tlfs.ParseSendIPIInput(c.in[:tlfs.SendIPIInputSize]) // cannot fail on SendIPIInputSize bytes
	default:
		if st := c.read(mem, rdx, 0, tlfs.SendIPIInputSize); st != tlfs.StatusSuccess {
			return st
		}
		in, _ = tlfs.ParseSendIPIInput(c.in[:tlfs.SendIPIInputSize])
	}
	if !in.Valid() {
		return tlfs.StatusInvalidHypercallInput
	}
	return s.SendSyntheticClusterIPI(c.VP, in)
}
