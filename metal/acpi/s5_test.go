package acpi

import (
	"errors"
	"testing"
)

func TestS5(t *testing.T) {
	// Name(_S5_, Package(n){...}) = NameOp "_S5_" PackageOp PkgLength NumElements elements.
	name := []byte{amlNameOp, '_', 'S', '5', '_'}
	rootName := []byte{amlNameOp, '\\', '_', 'S', '5', '_'}
	pkg := func(pkgLen byte, elems ...byte) []byte { return append([]byte{amlPackageOp, pkgLen}, elems...) }

	tests := []struct {
		name    string
		aml     []byte
		a, b    uint8
		wantErr error
	}{
		{"QEMU: Package(4){0,0,0,0}", cat(name, pkg(6, 4, 0, 0, 0, 0)), 0, 0, nil},
		{"ByteConst elements", cat(name, pkg(6, 2, amlBytePrefix, 7, amlBytePrefix, 5)), 7, 5, nil},
		{"ZeroOp and OneOp", cat(name, pkg(4, 2, amlOneOp, amlZeroOp)), 1, 0, nil},
		{"bare bytes", cat(name, pkg(4, 2, 5, 5)), 5, 5, nil},
		{"root prefix", cat(rootName, pkg(6, 2, amlBytePrefix, 5, amlBytePrefix, 6)), 5, 6, nil},
		{"WordConst and DWordConst", cat(name, pkg(10, 2, amlWordPrefix, 3, 0, amlDWordPrefix, 4, 0, 0, 0)), 3, 4, nil},
		{"QWordConst", cat(name, pkg(12, 2, amlQWordPrefix, 6, 0, 0, 0, 0, 0, 0, 0, amlZeroOp)), 6, 0, nil},
		{"legacy single packed integer", cat(name, pkg(5, 1, amlWordPrefix, 0x07, 0x05)), 7, 5, nil},
		{"two-byte PkgLength", cat(name, []byte{amlPackageOp, 0x47, 0x00, 2, amlBytePrefix, 5, amlBytePrefix, 5}), 5, 5, nil},
		{"whole DSDT with header", mkTable(SigDSDT, 2, cat([]byte{0x10, 0x05, '\\', '_', 'S', 'B', '_'}, name, pkg(6, 2, amlBytePrefix, 7, amlBytePrefix, 7))), 7, 7, nil},
		{"an _S5_ string is passed over", cat([]byte{0x0d, '_', 'S', '5', '_', 0}, name, pkg(4, 2, 1, 1)), 1, 1, nil},
		{"a bad first candidate, a good second", cat(name, []byte{0x14}, name, pkg(4, 2, 2, 3)), 2, 3, nil},

		{"no _S5_", []byte{0x10, 0x05, 0x5c, 0x00}, 0, 0, ErrNotFound},
		{"empty", nil, 0, 0, ErrNotFound},
		{"_S5_ not after NameOp", cat([]byte{0x06}, name[1:], pkg(4, 2, 0, 0)), 0, 0, ErrNotFound},
		{"_S5_ is a Method", cat([]byte{0x14, 0x06}, name[1:], []byte{0}), 0, 0, ErrNotFound},
		// A PkgLength byte of 8 looks like a NameOp: the heuristic sees a
		// Name and rejects what follows.
		{"_S5_ is a Method with PkgLength 8", cat([]byte{0x14, 0x08}, name[1:], []byte{0, 0x70, 0, 0x60}), 0, 0, ErrBadAML},
		{"_S5_ at the very end", name, 0, 0, ErrBadAML},
		{"not a Package", cat(name, []byte{amlBytePrefix, 5}), 0, 0, ErrBadAML},
		{"PkgLength missing", cat(name, []byte{amlPackageOp}), 0, 0, ErrTruncated},
		{"PkgLength past the end", cat(name, pkg(60, 2, 5, 5)), 0, 0, ErrTruncated},
		{"multi-byte PkgLength truncated", cat(name, []byte{amlPackageOp, 0xc0, 0x01}), 0, 0, ErrTruncated},
		{"PkgLength too small for NumElements", cat(name, pkg(1, 2, 5, 5)), 0, 0, ErrTruncated},
		{"elements missing", cat(name, pkg(3, 2, 5)), 0, 0, ErrTruncated},
		{"ByteConst truncated by the package end", cat(name, pkg(4, 2, 5, amlBytePrefix), []byte{5}), 0, 0, ErrTruncated},
		{"empty package", cat(name, pkg(2, 0)), 0, 0, ErrBadAML},
		{"element is a name", cat(name, pkg(7, 2, 'A', 'B', 'C', 'D', 0)), 0, 0, ErrBadAML},
		{"value too big for SLP_TYP", cat(name, pkg(5, 2, amlBytePrefix, 8, 0)), 0, 0, ErrBadAML},
		{"OnesOp", cat(name, pkg(4, 2, amlOnesOp, 0)), 0, 0, ErrBadAML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, err := S5(tt.aml)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("S5: error %v, want %v", err, tt.wantErr)
			}
			if a != tt.a || b != tt.b {
				t.Errorf("S5 = %d, %d; want %d, %d", a, b, tt.a, tt.b)
			}
		})
	}
}

func TestPkgLength(t *testing.T) { // ACPI 6.5 20.2.4
	for _, tt := range []struct {
		in         []byte
		length, sz int
	}{
		{[]byte{0x3f}, 63, 1},
		{[]byte{0x4a, 0x12}, 0x12a, 2},
		{[]byte{0x81, 0x34, 0x12}, 0x12341, 3},
		{[]byte{0xcf, 0xff, 0xff, 0xff}, 0xfffffff, 4},
	} {
		l, sz, err := pkgLength(tt.in)
		if err != nil || l != tt.length || sz != tt.sz {
			t.Errorf("pkgLength(% x) = %#x, %d, %v; want %#x, %d", tt.in, l, sz, err, tt.length, tt.sz)
		}
	}
}
