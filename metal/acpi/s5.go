package acpi

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// AML opcodes and prefixes, ACPI 6.5 20.2 (AML grammar).
const (
	amlZeroOp      = 0x00
	amlOneOp       = 0x01
	amlNameOp      = 0x08
	amlBytePrefix  = 0x0a
	amlWordPrefix  = 0x0b
	amlDWordPrefix = 0x0c
	amlQWordPrefix = 0x0e
	amlPackageOp   = 0x12
	amlRootChar    = '\\'
	amlOnesOp      = 0xff
)

// PM1 control register fields (ACPI 6.5 4.8.4.2.1, Table 4.13): writing
// SLP_TYPx from \_S5_ with SLP_EN set enters the soft-off state.
const (
	PM1CntSlpTypShift = 10      // SLP_TYPx, bits 12:10
	PM1CntSlpEn       = 1 << 13 // SLP_EN
)

// slpTypMax is the largest value the 3-bit SLP_TYP field (PM1 control
// register bits 12:10, ACPI 6.5 chapter 4) holds.
const slpTypMax = 7

// S5 finds the \_S5_ object (ACPI 6.5 7.4.2, Name(_S5_, Package(){...}))
// in DSDT or SSDT AML and returns the SLP_TYP values for PM1a_CNT and
// PM1b_CNT. b may be the whole table, header included.
//
// It does not interpret AML in general: it looks for a NameOp followed by
// the NameSeg "_S5_" (optionally with the root prefix '\'), then a
// PackageOp, a PkgLength, NumElements, and reads the first two elements as
// ZeroOp, OneOp, ByteConst, WordConst, DWordConst or QWordConst, or, as
// some firmware and most simple loaders have it, a bare byte 2-7. A package
// with a single integer is the legacy form with SLP_TYPa in bits 7:0 and
// SLP_TYPb in bits 15:8. Values must fit the 3-bit SLP_TYP field, so
// callers may shift them into place without masking. A _S5_ defined by a
// Method, or with elements that are names or expressions, yields ErrBadAML.
func S5(b []byte) (slpTypA, slpTypB uint8, err error) {
	var firstErr error
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("_S5_"))
		if j < 0 {
			break
		}
		at := i + j
		i = at + 1
		if !s5Named(b, at) {
			continue
		}
		a, bb, err := s5Package(b, at+4)
		if err == nil {
			return a, bb, nil
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("acpi: \\_S5_ at offset %d: %w", at, err)
		}
	}
	if firstErr != nil {
		return 0, 0, firstErr
	}
	return 0, 0, fmt.Errorf("acpi: no Name(\\_S5_, Package) in AML: %w", ErrNotFound)
}

// s5Named reports whether the NameSeg at b[at:] follows a NameOp, directly
// or through a root prefix.
func s5Named(b []byte, at int) bool {
	switch {
	case at >= 1 && b[at-1] == amlNameOp:
		return true
	case at >= 2 && b[at-1] == amlRootChar && b[at-2] == amlNameOp:
		return true
	}
	return false
}

// s5Package decodes the DefPackage at b[off:] as a \_S5_ package.
func s5Package(b []byte, off int) (uint8, uint8, error) {
	if off >= len(b) || b[off] != amlPackageOp {
		return 0, 0, fmt.Errorf("not a Package: %w", ErrBadAML)
	}
	pkgStart := off + 1
	pkgLen, n, err := pkgLength(b[pkgStart:])
	if err != nil {
		return 0, 0, err
	}
	// PkgLength counts itself and everything after it in the package.
	if pkgLen < n+1 || pkgLen > len(b)-pkgStart {
		return 0, 0, fmt.Errorf("PkgLength %d at offset %d runs past the end %d: %w", pkgLen, pkgStart, len(b), ErrTruncated)
	}
	body := b[pkgStart+n : pkgStart+pkgLen]
	numElements := int(body[0])
	elems := body[1:]
	switch numElements {
	case 0:
		return 0, 0, fmt.Errorf("empty package: %w", ErrBadAML)
	case 1:
		v, _, err := amlInteger(elems)
		if err != nil {
			return 0, 0, fmt.Errorf("element 0: %w", err)
		}
		return checkSlpTyp(v&0xff, v>>8&0xff)
	}
	a, used, err := amlInteger(elems)
	if err != nil {
		return 0, 0, fmt.Errorf("element 0: %w", err)
	}
	bv, _, err := amlInteger(elems[used:])
	if err != nil {
		return 0, 0, fmt.Errorf("element 1: %w", err)
	}
	return checkSlpTyp(a, bv)
}

func checkSlpTyp(a, b uint64) (uint8, uint8, error) {
	if a > slpTypMax || b > slpTypMax {
		return 0, 0, fmt.Errorf("SLP_TYP values %#x, %#x do not fit 3 bits: %w", a, b, ErrBadAML)
	}
	return uint8(a), uint8(b), nil
}

// pkgLength decodes a PkgLength, ACPI 6.5 20.2.4: the lead byte's bits 7:6
// count the bytes that follow; with none, bits 5:0 are the length,
// otherwise bits 3:0 are its low nibble and each following byte adds 8
// more bits. It returns the length and the encoding's size.
func pkgLength(b []byte) (length, size int, err error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("PkgLength: %w", ErrTruncated)
	}
	follow := int(b[0] >> 6)
	if follow == 0 {
		return int(b[0] & 0x3f), 1, nil
	}
	if len(b) < 1+follow {
		return 0, 0, fmt.Errorf("PkgLength of %d bytes: %w", 1+follow, ErrTruncated)
	}
	length = int(b[0] & 0x0f)
	for i := 1; i <= follow; i++ {
		length |= int(b[i]) << (4 + 8*(i-1))
	}
	return length, 1 + follow, nil
}

// amlInteger decodes a constant integer term and returns its value and
// size.
func amlInteger(b []byte) (v uint64, size int, err error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("missing: %w", ErrTruncated)
	}
	need := func(n int) error {
		if len(b) < 1+n {
			return fmt.Errorf("constant prefix %#02x needs %d bytes: %w", b[0], n, ErrTruncated)
		}
		return nil
	}
	le := binary.LittleEndian
	switch op := b[0]; {
	case op == amlZeroOp:
		return 0, 1, nil
	case op == amlOneOp:
		return 1, 1, nil
	case op == amlOnesOp:
		return ^uint64(0), 1, nil
	case op == amlBytePrefix:
		if err := need(1); err != nil {
			return 0, 0, err
		}
		return uint64(b[1]), 2, nil
	case op == amlWordPrefix:
		if err := need(2); err != nil {
			return 0, 0, err
		}
		return uint64(le.Uint16(b[1:])), 3, nil
	case op == amlDWordPrefix:
		if err := need(4); err != nil {
			return 0, 0, err
		}
		return uint64(le.Uint32(b[1:])), 5, nil
	case op == amlQWordPrefix:
		if err := need(8); err != nil {
			return 0, 0, err
		}
		return le.Uint64(b[1:]), 9, nil
	case op >= 2 && op <= slpTypMax:
		return uint64(op), 1, nil // a bare byte, not strictly AML
	default:
		return 0, 0, fmt.Errorf("opcode %#02x is not a constant integer: %w", op, ErrBadAML)
	}
}
