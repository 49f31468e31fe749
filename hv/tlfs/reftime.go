package tlfs

import (
	"encoding/binary"
	"math/bits"
)

// The reference TSC page (TLFS 12.7.2, HV_REFERENCE_TSC_PAGE): offset 0
// TscSequence, 4 reserved, 8 TscScale, 16 TscOffset (signed). A guest
// computes the partition reference time, in 100 ns units, as
//
//	ReferenceTime = ((TSC * TscScale) >> 64) + TscOffset
//
// and retries while TscSequence changes under it. A sequence of 0 means
// the page is not valid and the guest must read HV_X64_MSR_TIME_REF_COUNT
// (the TLFS text says 0xFFFFFFFF; guests and hypervisors use 0).
const (
	RefTSCSequenceOffset  = 0
	RefTSCScaleOffset     = 8
	RefTSCOffsetOffset    = 16
	RefTSCInvalidSequence = 0
	// ReferenceHz is the reference time's rate: 100 ns ticks.
	ReferenceHz = 10_000_000
)

// RefTSCScale is TscScale for a TSC running at tscHz: 2^64 * 10^7 / tscHz,
// so that (TSC * scale) >> 64 counts 100 ns.
func RefTSCScale(tscHz uint64) uint64 {
	q, _ := bits.Div64(ReferenceHz, 0, tscHz) // (10^7 << 64) / tscHz; needs tscHz > 10^7
	return q
}

// RefTime is the reference time the page gives for tsc.
func RefTime(tsc, scale uint64, offset int64) uint64 {
	hi, _ := bits.Mul64(tsc, scale)
	return hi + uint64(offset)
}

// PutRefTSCPage writes sequence, scale and offset into a reference TSC
// page.
func PutRefTSCPage(page []byte, sequence uint32, scale uint64, offset int64) {
	binary.LittleEndian.PutUint32(page[RefTSCSequenceOffset:], sequence)
	binary.LittleEndian.PutUint32(page[4:], 0)
	binary.LittleEndian.PutUint64(page[RefTSCScaleOffset:], scale)
	binary.LittleEndian.PutUint64(page[RefTSCOffsetOffset:], uint64(offset))
}
