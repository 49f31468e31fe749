package acpi

import "encoding/binary"

// Builders for hand-made tables in tests.

// mkTable returns a table with a valid header (Length, checksum) around body.
func mkTable(sig string, revision uint8, body []byte) []byte {
	b := make([]byte, HeaderLen+len(body))
	copy(b, sig)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	b[8] = revision
	copy(b[10:], "GOHV  ")
	copy(b[16:], "TESTTBL ")
	copy(b[28:], "GOHV")
	copy(b[HeaderLen:], body)
	fixChecksum(b, 9, len(b))
	return b
}

// fixChecksum sets b[at] so that b[:n] sums to zero.
func fixChecksum(b []byte, at, n int) {
	b[at] = 0
	b[at] = -sum8(b[:n])
}

// mkRSDP returns an RSDP of the given revision with valid checksums.
func mkRSDP(revision uint8, rsdt uint32, xsdt uint64) []byte {
	n := rsdpV1Len
	if revision >= 2 {
		n = rsdpV2Len
	}
	b := make([]byte, n)
	copy(b, rsdpSignature)
	copy(b[9:], "GOHV  ")
	b[15] = revision
	binary.LittleEndian.PutUint32(b[16:], rsdt)
	if revision >= 2 {
		binary.LittleEndian.PutUint32(b[20:], rsdpV2Len)
		binary.LittleEndian.PutUint64(b[24:], xsdt)
		fixChecksum(b, 8, rsdpV1Len)
		fixChecksum(b, 32, rsdpV2Len)
	} else {
		fixChecksum(b, 8, rsdpV1Len)
	}
	return b
}

// mkRSDT and mkXSDT list table addresses.
func mkRSDT(addrs ...uint32) []byte {
	body := make([]byte, 4*len(addrs))
	for i, a := range addrs {
		binary.LittleEndian.PutUint32(body[4*i:], a)
	}
	return mkTable("RSDT", 1, body)
}

func mkXSDT(addrs ...uint64) []byte {
	body := make([]byte, 8*len(addrs))
	for i, a := range addrs {
		binary.LittleEndian.PutUint64(body[8*i:], a)
	}
	return mkTable("XSDT", 1, body)
}

// mkMADT builds an MADT from raw entries after the 8-byte fixed part.
func mkMADT(lapic, flags uint32, entries ...[]byte) []byte {
	body := make([]byte, 8)
	binary.LittleEndian.PutUint32(body[0:], lapic)
	binary.LittleEndian.PutUint32(body[4:], flags)
	for _, e := range entries {
		body = append(body, e...)
	}
	return mkTable(SigMADT, 5, body)
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
