package proto

import (
	"errors"
	"fmt"
	"iter"
)

// PageSize is the unit of PFNs in GPA ranges and GPADLs: 4 KiB,
// whatever the guest's own page size.
const PageSize = 4096

// A GPA range array is the format GPADLs (GPADL_HEADER and GPADL_BODY)
// and GPA-direct packets describe guest memory in: ranges back to back,
// each {u32 byte_count, u32 byte_offset, u64 pfn[n]} where byte_offset is
// into the first page and n = ceil((byte_offset + byte_count) / 4096)
// (Linux struct gpa_range; OpenVMM gparange.rs). A range has at least one
// byte and its offset is inside the first page.

// ErrRange is wrapped by the errors of the range-array functions.
var ErrRange = errors.New("vmbus/proto: bad GPA range")

// GPARangePages is the number of PFNs a range of byteCount bytes starting
// byteOffset bytes into its first page names.
func GPARangePages(byteOffset, byteCount uint32) int {
	return int((uint64(byteOffset) + uint64(byteCount) + PageSize - 1) / PageSize)
}

// GPARange is one validated range of a range array: ByteCount bytes from
// ByteOffset into the first of PageCount pages. It is a view of the array
// it was parsed from.
type GPARange struct {
	ByteCount  uint32
	ByteOffset uint32
	pfns       []byte // PageCount × u64
}

// PageCount is the number of pages the range spans.
func (r GPARange) PageCount() int { return len(r.pfns) / 8 }

// PFN is the i'th page's frame number (4 KiB units), 0 <= i <
// PageCount(). The value is the sender's: check it against the
// partition's memory before using it.
func (r GPARange) PFN(i int) uint64 { return le.Uint64(r.pfns[8*i:]) }

// GPARanges is a validated range array.
type GPARanges struct {
	b []byte // exactly the ranges
	n int
}

// Len is the number of ranges.
func (l GPARanges) Len() int { return l.n }

// Bytes is the encoded array, exactly the bytes its ranges use.
func (l GPARanges) Bytes() []byte { return l.b }

// All yields the ranges in order.
func (l GPARanges) All() iter.Seq[GPARange] {
	return func(yield func(GPARange) bool) {
		b := l.b
		for range l.n {
			r, rest := nextRange(b)
			if !yield(r) {
				return
			}
			b = rest
		}
	}
}

// PageCount is the total number of pages the ranges name.
func (l GPARanges) PageCount() int {
	n := 0
	for r := range l.All() {
		n += r.PageCount()
	}
	return n
}

// nextRange decodes the validated range at the start of b.
func nextRange(b []byte) (GPARange, []byte) {
	r := GPARange{ByteCount: le.Uint32(b), ByteOffset: le.Uint32(b[4:])}
	end := 8 + 8*GPARangePages(r.ByteOffset, r.ByteCount)
	r.pfns = b[8:end]
	return r, b[end:]
}

// ParseGPARanges validates count ranges at the start of b and returns
// them; bytes after them are not looked at (a GPA-direct packet may carry
// stale PFN slots after its ranges: Linux's storvsc always sends 32).
// Guest-controlled: each range's byte count, offset and PFN count are
// checked against b.
func ParseGPARanges(b []byte, count int) (GPARanges, error) {
	if count < 0 || count > len(b)/16 { // a range is at least 16 bytes
		return GPARanges{}, fmt.Errorf("%w: %d ranges in %d bytes", ErrRange, count, len(b))
	}
	off := 0
	for i := range count {
		if len(b)-off < 8 {
			return GPARanges{}, fmt.Errorf("%w: range %d: header past the %d-byte array", ErrRange, i, len(b))
		}
		n, o := le.Uint32(b[off:]), le.Uint32(b[off+4:])
		if n == 0 {
			return GPARanges{}, fmt.Errorf("%w: range %d: byte count 0", ErrRange, i)
		}
		if o >= PageSize {
			return GPARanges{}, fmt.Errorf("%w: range %d: byte offset %#x past its first page", ErrRange, i, o)
		}
		pages := GPARangePages(o, n)
		if (len(b)-off-8)/8 < pages {
			return GPARanges{}, fmt.Errorf("%w: range %d: %d pages, the array holds %d more PFNs", ErrRange, i, pages, (len(b)-off-8)/8)
		}
		off += 8 + 8*pages
	}
	return GPARanges{b: b[:off:off], n: count}, nil
}

// ParseGPADLRanges validates a GPADL's whole range array, assembled from
// its GPADL_HEADER and GPADL_BODY messages: count ranges, at least one,
// that use every byte (Linux sends exactly that; range_buflen counts the
// PFNs of the bodies too).
func ParseGPADLRanges(count uint16, array []byte) (GPARanges, error) {
	if count == 0 {
		return GPARanges{}, fmt.Errorf("%w: GPADL without ranges", ErrRange)
	}
	l, err := ParseGPARanges(array, int(count))
	if err != nil {
		return l, err
	}
	if len(l.b) != len(array) {
		return GPARanges{}, fmt.Errorf("%w: %d ranges use %d of the GPADL's %d bytes", ErrRange, count, len(l.b), len(array))
	}
	return l, nil
}

// AppendGPARange appends one range to an array: byteCount bytes from
// byteOffset into pfns[0]. pfns must hold exactly
// GPARangePages(byteOffset, byteCount) frames.
func AppendGPARange(b []byte, byteCount, byteOffset uint32, pfns []uint64) ([]byte, error) {
	if byteCount == 0 || byteOffset >= PageSize || len(pfns) != GPARangePages(byteOffset, byteCount) {
		return b, fmt.Errorf("%w: %d bytes at offset %#x over %d pages", ErrRange, byteCount, byteOffset, len(pfns))
	}
	b = u32(u32(b, byteCount), byteOffset)
	for _, p := range pfns {
		b = u64(b, p)
	}
	return b, nil
}

// SplitGPADL cuts a GPADL's range array into the GPADL_HEADER and the
// GPADL_BODY messages that carry it, filling each as Linux does (26 PFNs
// after a range header in the first, 28 in each body). The array must
// be valid (ParseGPADLRanges) and below 64 KiB (range_buflen is 16 bits).
// The messages' Data are views of array.
func SplitGPADL(childRelID, gpadl uint32, count uint16, array []byte) (GPADLHeader, []GPADLBody, error) {
	if len(array) > 0xffff {
		return GPADLHeader{}, nil, fmt.Errorf("%w: GPADL range array of %d bytes, above 65535", ErrRange, len(array))
	}
	if _, err := ParseGPADLRanges(count, array); err != nil {
		return GPADLHeader{}, nil, err
	}
	first := min(len(array), GPADLHeaderMaxData)
	h := GPADLHeader{ChildRelID: childRelID, GPADL: gpadl, RangeBufLen: uint16(len(array)), RangeCount: count, Data: array[:first:first]}
	var bodies []GPADLBody
	for rest := array[first:]; len(rest) > 0; {
		n := min(len(rest), GPADLBodyMaxData)
		bodies = append(bodies, GPADLBody{GPADL: gpadl, Data: rest[:n:n]})
		rest = rest[n:]
	}
	return h, bodies, nil
}
