package ept

import "testing"

// fuzzSpace is the GPA window the fuzzer works in: 4 GiB, enough for
// 1 GiB leaves and for ranges crossing 1 GiB boundaries.
const fuzzSpace = 4 * Size1G

// decodeOp turns 5 fuzz bytes into an op over [0, fuzzSpace). Maps that
// would make many 4 KiB leaves are cut short, to keep each input fast.
//
//	b[0]: bits 1:0 kind; bits 4:2 table pages the allocator may add (0-3:
//	      unlimited; 4-7: 0-3 pages)
//	b[1], b[2]: GPA: bits 7:6 of b[1] pick 4 KiB, 2 MiB or 1 GiB
//	      granularity, or "just below a 1 GiB boundary"; the rest an index
//	b[3]: size: bits 7:6 pick 4 KiB pages, 2 MiB pages give or take a
//	      few 4 KiB, 1 GiB, or 2 MiB pages
//	b[4]: bits 2:0 permissions, bits 5:3 HPA choice, bits 7:6 memory type
func decodeOp(f Format, maxPage uint64, b []byte) (op, bool) {
	var o op
	o.kind = opKind(b[0] & 3)
	o.spare = -1
	if s := int(b[0]>>2) & 7; s >= 4 {
		o.spare = s - 4
	}
	sel := uint64(b[1]&63)<<8 | uint64(b[2])
	switch b[1] >> 6 {
	case 0:
		o.gpa = sel * Size4K // within the first 64 MiB
	case 1:
		o.gpa = sel % (fuzzSpace / Size2M) * Size2M
	case 2:
		o.gpa = sel % (fuzzSpace / Size1G) * Size1G
	default:
		o.gpa = (sel%(fuzzSpace/Size1G-1) + 1) * Size1G
		o.gpa -= (sel>>2&15 + 1) * Size4K
	}
	n := uint64(b[3] & 63)
	switch b[3] >> 6 {
	case 0:
		o.size = (n + 1) * Size4K
	case 1:
		o.size = (n&7+1)*Size2M + (n>>3)*Size4K - 3*Size4K
	case 2:
		o.size = (n&1 + 1) * Size1G
	default:
		o.size = (n + 1) * Size2M
	}
	if o.size > fuzzSpace-o.gpa {
		o.size = fuzzSpace - o.gpa
	}
	if o.size == 0 {
		return o, false
	}
	ps := permsFor(f)
	o.perm = ps[int(b[4]&7)%len(ps)]
	var odd bool
	o.hpa, odd = hpaFor(o.gpa, int(b[4]>>3&7), uint64(b[1])<<32|uint64(b[2])<<24|uint64(b[3])<<14)
	if (odd || maxPage == Size4K) && o.kind == opMap && o.size > Size2M {
		o.size = Size2M // keep 4 KiB leaves few
	}
	o.mt = mtsFor(f)[b[4]>>6]
	return o, true
}

// maxFuzzOps bounds the ops in one input. With at most 512 new 4 KiB
// leaves per Map, a whole input (checked after every op) runs in
// milliseconds, which keeps minimisation quick.
const maxFuzzOps = 32

// FuzzOps interprets its input as a table configuration (first byte) and
// a sequence of operations (5 bytes each), runs them against a Table and
// the reference model, and compares the two after every operation.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0x80, 0x02})
	f.Add([]byte{1,
		0, 0x80, 0, 0x80, 0x02, // Map 1 GiB at 0
		1, 0x00, 0x05, 0x00, 0x00, // Unmap one page in it
		2, 0x00, 0x10, 0x3f, 0x01, // Protect 64 pages
		2, 0x00, 0x10, 0x3f, 0x02, // and back
		0, 0x00, 0x05, 0x00, 0x02, // Map the hole
		3, 0x80, 0x00, 0x81, 0x00, // Coalesce 2 GiB
	})
	f.Add([]byte{2,
		0x00, 0x40, 0x03, 0x48, 0x09, // Map 2 MiB - 8 KiB at 6 MiB
		0x15, 0x40, 0x03, 0x41, 0x00, // Unmap part of it, 1 spare page
		0x1a, 0xc0, 0x07, 0x40, 0x00, // Protect near a 1 GiB boundary, 2 spare
		0x03, 0x80, 0x00, 0x80, 0x00, // Coalesce 1 GiB
	})
	f.Fuzz(fuzzOps)
}

// fuzzOps is FuzzOps's body.
func fuzzOps(t *testing.T, data []byte) {
	if len(data) < 1 || len(data) > 1+5*maxFuzzOps {
		// Longer inputs would only repeat shorter ones' work; refusing
		// them keeps the inputs the fuzzer minimises short.
		return
	}
	cfg := data[0]
	format := NPT
	if cfg&1 != 0 {
		format = EPT
	}
	var o Options
	switch cfg >> 1 & 3 {
	case 1:
		o.MaxPage = Size2M
	case 2:
		o.MaxPage = Size4K
	}
	if format == EPT && cfg&8 != 0 {
		o.IgnorePAT = true
	}
	h := newHarness(t, format, o)
	data = data[1:]
	for len(data) >= 5 {
		op, ok := decodeOp(format, o.MaxPage, data[:5])
		data = data[5:]
		if !ok {
			continue
		}
		h.apply(op)
		h.check(op)
	}
	h.finish()
}
