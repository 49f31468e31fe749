package synic

import "gohv/hv/tlfs"

// This file: event flags (TLFS "SynIC Event Flags"). SINT n's 2048 flags are
// the n-th 256-byte bitmap of the SIEF page; flag f is bit f%8 of byte f/8,
// which is bit f%32 of the little-endian 32-bit word at byte 4*(f/32).

// Signal sets event flag `flag` of SINT sint in the SIEF page with an
// atomic OR, and raises the SINT's vector if the flag went from 0 to 1
// and the SINT is not polling. It returns whether the flag was newly set;
// a flag already set merges (the guest clears flags with a locked
// instruction before it handles them, so nothing is lost).
//
// Errors: ErrDisabled when SCONTROL or SIEFP is not enabled (TLFS "Event Flag
// Delivery": the VP is no target); ErrMasked when the SINT is masked (TLFS
// "Event Flag Delivery": HvCallSignalEvent returns
// HV_STATUS_INVALID_SYNIC_STATE), and no flag is set; ErrNoPage when the SIEF
// page is outside RAM (counted in Stats.EventsDropped); ErrBadArgument for
// sint > 15 or flag >= 2048. Any goroutine; does not allocate.
func (s *SynIC) Signal(sint uint8, flag uint32) (bool, error) {
	if sint >= tlfs.SINTCount || flag >= tlfs.EventFlagsPerSINT {
		return false, ErrBadArgument
	}
	var r raises
	s.mu.Lock()
	if s.scontrol&tlfs.SControlEnable == 0 || s.siefp&tlfs.OverlayEnable == 0 {
		s.mu.Unlock()
		s.stats.refused.Add(1)
		return false, ErrDisabled
	}
	if s.sint[sint]&tlfs.SINTMasked != 0 {
		s.mu.Unlock()
		s.stats.refused.Add(1)
		return false, ErrMasked
	}
	word := pageBase(s.siefp) + uint64(sint)*tlfs.EventFlagsSize + uint64(flag/32)*4
	bit := uint32(1) << (flag % 32)
	old, err := s.mem.OrU32(word, bit)
	newly := err == nil && old&bit == 0
	if newly {
		s.raiseSINTLocked(sint, &r)
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		s.stats.eventsDropped.Add(1)
		return false, ErrNoPage
	case newly:
		s.stats.eventsSet.Add(1)
	default:
		s.stats.eventsMerged.Add(1)
	}
	s.fire(&r)
	return newly, nil
}
