package acpitables

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// A small AML encoder: the handful of terms a DSDT of named devices needs
// (ACPI 6.5 20.2, the AML grammar). Each function returns the encoded term;
// terms nest by passing them to Scope, Device, Package and Buffer. Names,
// IDs and strings are this package's own constants, never guest input, so
// a malformed one is a bug in the package and panics.

// AML opcodes and prefixes, ACPI 6.5 20.2.
const (
	amlZeroOp          = 0x00
	amlOneOp           = 0x01
	amlNameOp          = 0x08
	amlBytePrefix      = 0x0a
	amlWordPrefix      = 0x0b
	amlDWordPrefix     = 0x0c
	amlStringPrefix    = 0x0d
	amlQWordPrefix     = 0x0e
	amlScopeOp         = 0x10
	amlBufferOp        = 0x11
	amlPackageOp       = 0x12
	amlDualNamePrefix  = 0x2e
	amlMultiNamePrefix = 0x2f
	amlExtOpPrefix     = 0x5b
	amlDeviceOp        = 0x82 // after amlExtOpPrefix
	amlRootChar        = '\\'
	amlParentPrefix    = '^'
	amlNullName        = 0x00
	amlOnesOp          = 0xff
)

// amlNameString encodes a NameString (20.2.2): an optional root prefix
// '\' or parent prefixes '^', then dot-separated NameSegs of up to four
// characters, padded with '_' ("_SB" is the NameSeg "_SB_").
func amlNameString(path string) []byte {
	var b []byte
	rest := path
	if strings.HasPrefix(rest, `\`) {
		b = append(b, amlRootChar)
		rest = rest[1:]
	} else {
		for strings.HasPrefix(rest, "^") {
			b = append(b, amlParentPrefix)
			rest = rest[1:]
		}
	}
	if rest == "" {
		return append(b, amlNullName)
	}
	segs := strings.Split(rest, ".")
	switch len(segs) {
	case 1:
	case 2:
		b = append(b, amlDualNamePrefix)
	default:
		if len(segs) > 255 {
			panic(fmt.Sprintf("acpitables: name %q has too many segments", path))
		}
		b = append(b, amlMultiNamePrefix, byte(len(segs)))
	}
	for _, s := range segs {
		b = append(b, amlNameSeg(s, path)...)
	}
	return b
}

// amlNameSeg encodes one NameSeg: a lead character A-Z or '_', then A-Z,
// 0-9 or '_', padded to four with '_'.
func amlNameSeg(s, path string) []byte {
	if len(s) == 0 || len(s) > 4 {
		panic(fmt.Sprintf("acpitables: name %q: segment %q is not 1-4 characters", path, s))
	}
	seg := []byte("____")
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			panic(fmt.Sprintf("acpitables: name %q: segment %q has a character AML does not allow", path, s))
		}
		seg[i] = c
	}
	return seg
}

// amlPkgLength encodes the PkgLength (20.2.4) of a package whose contents
// after the PkgLength are n bytes; the length counts its own encoding. One
// byte holds up to 63; otherwise the lead byte's bits 7:6 count the bytes
// that follow, its bits 3:0 are the low nibble and each following byte
// adds eight bits.
func amlPkgLength(n int) []byte {
	if n+1 < 1<<6 {
		return []byte{byte(n + 1)}
	}
	for follow := 1; follow <= 3; follow++ {
		total := n + 1 + follow
		if total < 1<<(4+8*follow) {
			b := make([]byte, 1+follow)
			b[0] = byte(follow)<<6 | byte(total&0x0f)
			for i := 1; i <= follow; i++ {
				b[i] = byte(total >> (4 + 8*(i-1)))
			}
			return b
		}
	}
	panic(fmt.Sprintf("acpitables: package of %d bytes is beyond PkgLength's 28 bits", n))
}

// amlPackaged encodes an opcode followed by a PkgLength over the rest.
func amlPackaged(op []byte, rest ...[]byte) []byte {
	var body []byte
	for _, r := range rest {
		body = append(body, r...)
	}
	b := append([]byte{}, op...)
	b = append(b, amlPkgLength(len(body))...)
	return append(b, body...)
}

// amlInteger encodes a constant integer in the shortest form, as ASL
// compilers do: ZeroOp, OneOp, or Byte/Word/DWord/QWord constants (20.2.3).
func amlInteger(v uint64) []byte {
	switch {
	case v == 0:
		return []byte{amlZeroOp}
	case v == 1:
		return []byte{amlOneOp}
	case v <= 0xff:
		return []byte{amlBytePrefix, byte(v)}
	case v <= 0xffff:
		return binary.LittleEndian.AppendUint16([]byte{amlWordPrefix}, uint16(v))
	case v <= 0xffff_ffff:
		return binary.LittleEndian.AppendUint32([]byte{amlDWordPrefix}, uint32(v))
	default:
		return binary.LittleEndian.AppendUint64([]byte{amlQWordPrefix}, v)
	}
}

// amlString encodes a String constant: printable ASCII, NUL-terminated.
func amlString(s string) []byte {
	b := []byte{amlStringPrefix}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			panic(fmt.Sprintf("acpitables: string %q is not printable ASCII", s))
		}
	}
	b = append(b, s...)
	return append(b, 0)
}

// amlEISAID encodes a compressed EISA ID such as "PNP0501" (the ASL EISAID
// macro, ACPI 6.5 19.6): three letters of five bits each (A = 1) in the
// first two bytes, big-endian, then four hex digits in the next two, stored
// as a DWord constant.
func amlEISAID(id string) []byte {
	if len(id) != 7 {
		panic(fmt.Sprintf("acpitables: EISA ID %q is not 7 characters", id))
	}
	var v [4]byte
	var letters uint16
	for i := 0; i < 3; i++ {
		c := id[i]
		if c < 'A' || c > 'Z' {
			panic(fmt.Sprintf("acpitables: EISA ID %q: %q is not an upper-case letter", id, c))
		}
		letters = letters<<5 | uint16(c-'@')
	}
	binary.BigEndian.PutUint16(v[0:], letters)
	for i := 3; i < 7; i++ {
		d := hexDigit(id[i])
		if d < 0 {
			panic(fmt.Sprintf("acpitables: EISA ID %q: %q is not an upper-case hex digit", id, id[i]))
		}
		v[2+(i-3)/2] |= byte(d) << (4 * (1 - (i-3)%2))
	}
	return append([]byte{amlDWordPrefix}, v[:]...)
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// amlName encodes Name(name, object) (DefName, 20.2.5.1).
func amlName(name string, object []byte) []byte {
	b := append([]byte{amlNameOp}, amlNameString(name)...)
	return append(b, object...)
}

// amlScope encodes Scope(path) { terms } (DefScope, 20.2.5.1).
func amlScope(path string, terms ...[]byte) []byte {
	return amlPackaged([]byte{amlScopeOp}, append([][]byte{amlNameString(path)}, terms...)...)
}

// amlDevice encodes Device(name) { terms } (DefDevice, 20.2.5.2).
func amlDevice(name string, terms ...[]byte) []byte {
	return amlPackaged([]byte{amlExtOpPrefix, amlDeviceOp}, append([][]byte{amlNameString(name)}, terms...)...)
}

// amlPackage encodes Package(n) { elements } (DefPackage, 20.2.5.4) with
// NumElements equal to the elements given.
func amlPackage(elements ...[]byte) []byte {
	if len(elements) > 255 {
		panic("acpitables: package of more than 255 elements")
	}
	return amlPackaged([]byte{amlPackageOp}, append([][]byte{{byte(len(elements))}}, elements...)...)
}

// amlBuffer encodes Buffer(len(data)) { data } (DefBuffer, 20.2.5.4).
func amlBuffer(data []byte) []byte {
	return amlPackaged([]byte{amlBufferOp}, amlInteger(uint64(len(data))), data)
}
