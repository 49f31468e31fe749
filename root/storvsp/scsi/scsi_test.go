package scsi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noUnmap hides RAMDisk's Unmap: a disk that cannot deallocate.
type noUnmap struct{ Disk }

const testBlocks = 2048 // 1 MiB of 512-byte blocks

type unit struct {
	*LogicalUnit
	ram *RAMDisk
}

func newUnit(t testing.TB, ro, unmap bool, o Options) unit {
	t.Helper()
	data := make([]byte, testBlocks*512)
	for i := range data {
		data[i] = byte(i*7 + i/512)
	}
	ram, err := NewRAMDisk(data, 512, ro)
	if err != nil {
		t.Fatal(err)
	}
	var d Disk = ram
	if !unmap {
		d = noUnmap{ram}
	}
	u, err := NewLogicalUnit(d, o)
	if err != nil {
		t.Fatal(err)
	}
	return unit{u, ram}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func cdb(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = append(b, byte(v))
		case Opcode:
			b = append(b, byte(v))
		case []byte:
			b = append(b, v...)
		}
	}
	return b
}

func read10(lba uint32, n uint16) []byte {
	return cdb(OpRead10, 0, be32(lba), 0, be16(n), 0)
}
func write10(lba uint32, n uint16) []byte {
	return cdb(OpWrite10, 0, be32(lba), 0, be16(n), 0)
}
func read16(lba uint64, n uint32) []byte  { return cdb(OpRead16, 0, be64(lba), be32(n), 0, 0) }
func write16(lba uint64, n uint32) []byte { return cdb(OpWrite16, 0, be64(lba), be32(n), 0, 0) }
func read12(lba, n uint32) []byte         { return cdb(OpRead12, 0, be32(lba), be32(n), 0, 0) }
func write12(lba, n uint32) []byte        { return cdb(OpWrite12, 0, be32(lba), be32(n), 0, 0) }
func inquiry(evpd bool, page uint8, alloc uint16) []byte {
	f := 0
	if evpd {
		f = 1
	}
	return cdb(OpInquiry, f, int(page), be16(alloc), 0)
}
func modeSense6(pc, page, sub uint8, alloc uint8) []byte {
	return cdb(OpModeSense6, 0, int(pc<<6|page), int(sub), int(alloc), 0)
}
func modeSense10(pc, page, sub uint8, alloc uint16) []byte {
	return cdb(OpModeSense10, 0, int(pc<<6|page), int(sub), 0, 0, 0, be16(alloc), 0)
}
func readCap16(alloc uint32) []byte {
	return cdb(OpServiceActionIn16, SAReadCapacity16, be64(0), be32(alloc), 0, 0)
}
func reportLUNs(sel uint8, alloc uint32) []byte {
	return cdb(OpReportLUNs, 0, int(sel), 0, 0, 0, be32(alloc), 0, 0)
}
func unmapCDB(plen uint16) []byte { return cdb(OpUnmap, 0, 0, 0, 0, 0, 0, be16(plen), 0) }

func unmapList(desc ...[2]uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:], uint16(6+16*len(desc)))
	binary.BigEndian.PutUint16(b[2:], uint16(16*len(desc)))
	for _, d := range desc {
		b = append(b, be64(d[0])...)
		b = append(b, be32(uint32(d[1]))...)
		b = append(b, 0, 0, 0, 0)
	}
	return b
}

var (
	sInvalidOpcode = Sense{KeyIllegalRequest, ASCInvalidCommandOperationCode}
	sInvalidField  = Sense{KeyIllegalRequest, ASCInvalidFieldInCDB}
	sLBARange      = Sense{KeyIllegalRequest, ASCLBAOutOfRange}
	sWriteProtect  = Sense{KeyDataProtect, ASCWriteProtected}
	sNotSupported  = Sense{KeyIllegalRequest, ASCLogicalUnitNotSupported}
)

// TestCommands runs every command and every refusal the package
// documentation's table lists.
func TestCommands(t *testing.T) {
	type disk struct{ ro, unmap bool }
	ro, thin := disk{ro: true}, disk{unmap: true}
	for _, c := range []struct {
		name  string
		d     disk
		cdb   []byte
		buf   int    // buffer length
		in    []byte // buffer contents (data-out)
		sense Sense  // zero: GOOD
		n     int
		data  func(t *testing.T, u unit, out []byte)
	}{
		{name: "test unit ready", cdb: cdb(OpTestUnitReady, 0, 0, 0, 0, 0)},
		{name: "start stop unit", cdb: cdb(OpStartStopUnit, 1, 0, 0, 1, 0)},
		{name: "request sense fixed", cdb: cdb(OpRequestSense, 0, 0, 0, 252, 0), buf: 252, n: 18, data: func(t *testing.T, _ unit, out []byte) {
			if out[0] != 0x70 || out[2] != 0 || out[7] != 10 || out[12] != 0 {
				t.Errorf("% x", out[:18])
			}
		}},
		{name: "request sense descriptor", cdb: cdb(OpRequestSense, 1, 0, 0, 252, 0), buf: 252, n: 8, data: func(t *testing.T, _ unit, out []byte) {
			if out[0] != 0x72 || out[1] != 0 {
				t.Errorf("% x", out[:8])
			}
		}},
		{name: "inquiry standard 36", cdb: inquiry(false, 0, 36), buf: 96, n: 36, data: func(t *testing.T, _ unit, out []byte) {
			if out[0] != 0 || out[1] != 0 || out[2] != 5 || out[3] != 2 || out[4] != 31 || out[7] != 2 ||
				string(out[8:36]) != "Msft    Virtual Disk    1.0 " {
				t.Errorf("% x %q", out[:8], out[8:36])
			}
		}},
		{name: "inquiry cut to allocation", cdb: inquiry(false, 0, 5), buf: 96, n: 5},
		{name: "inquiry cut to buffer", cdb: inquiry(false, 0, 255), buf: 20, n: 20},
		{name: "inquiry page code without evpd", cdb: inquiry(false, 0x80, 36), buf: 36, sense: sInvalidField},
		{name: "inquiry cmddt", cdb: cdb(OpInquiry, 2, 0, 0, 36, 0), buf: 36, sense: sInvalidField},
		{name: "vpd supported pages", cdb: inquiry(true, 0, 255), buf: 255, n: 4 + 4, data: func(t *testing.T, _ unit, out []byte) {
			if !bytes.Equal(out[:8], []byte{0, 0, 0, 4, 0x00, 0x83, 0xB0, 0xB1}) {
				t.Errorf("% x", out[:8])
			}
		}},
		{name: "vpd supported pages with unmap", d: thin, cdb: inquiry(true, 0, 255), buf: 255, n: 9, data: func(t *testing.T, _ unit, out []byte) {
			if !bytes.Equal(out[:9], []byte{0, 0, 0, 5, 0x00, 0x83, 0xB0, 0xB1, 0xB2}) {
				t.Errorf("% x", out[:9])
			}
		}},
		{name: "vpd header only", cdb: inquiry(true, 0, 4), buf: 255, n: 4},
		{name: "vpd serial not offered", cdb: inquiry(true, 0x80, 255), buf: 255, sense: sInvalidField},
		{name: "vpd identification", cdb: inquiry(true, 0x83, 255), buf: 255, n: 4 + 4 + 8 + 12, data: func(t *testing.T, _ unit, out []byte) {
			if out[1] != 0x83 || out[3] != 24 || out[4] != 2 || out[5] != 1 || out[7] != 20 || string(out[8:28]) != "Msft    Virtual Disk" {
				t.Errorf("% x %q", out[:8], out[8:28])
			}
		}},
		{name: "vpd block limits", cdb: inquiry(true, 0xB0, 255), buf: 255, n: 64, data: func(t *testing.T, _ unit, out []byte) {
			if out[1] != 0xB0 || binary.BigEndian.Uint16(out[2:]) != 0x3C || binary.BigEndian.Uint32(out[20:]) != 0 {
				t.Errorf("% x", out[:32])
			}
		}},
		{name: "vpd block limits with unmap", d: thin, cdb: inquiry(true, 0xB0, 255), buf: 255, n: 64, data: func(t *testing.T, _ unit, out []byte) {
			if binary.BigEndian.Uint32(out[20:]) != 0xFFFFFFFF || binary.BigEndian.Uint32(out[24:]) != 256 ||
				binary.BigEndian.Uint32(out[28:]) != 1 || out[32] != 0x80 {
				t.Errorf("% x", out[16:36])
			}
		}},
		{name: "vpd characteristics", cdb: inquiry(true, 0xB1, 255), buf: 255, n: 64, data: func(t *testing.T, _ unit, out []byte) {
			if out[1] != 0xB1 || binary.BigEndian.Uint16(out[4:]) != 1 {
				t.Errorf("% x", out[:8])
			}
		}},
		{name: "vpd provisioning without unmap", cdb: inquiry(true, 0xB2, 255), buf: 255, sense: sInvalidField},
		{name: "vpd provisioning", d: thin, cdb: inquiry(true, 0xB2, 255), buf: 255, n: 8, data: func(t *testing.T, _ unit, out []byte) {
			if !bytes.Equal(out[:8], []byte{0, 0xB2, 0, 4, 0, 0x84, 0, 0}) {
				t.Errorf("% x", out[:8])
			}
		}},
		{name: "vpd unknown page", cdb: inquiry(true, 0xB9, 255), buf: 255, sense: sInvalidField},
		{name: "mode sense(6) all pages, header only", cdb: modeSense6(0, 0x3F, 0, 4), buf: 4, n: 4, data: func(t *testing.T, _ unit, out []byte) {
			if !bytes.Equal(out[:4], []byte{35, 0, 0x10, 0}) {
				t.Errorf("% x", out[:4])
			}
		}},
		{name: "mode sense(6) read-only sets WP", d: ro, cdb: modeSense6(0, 0x3F, 0, 4), buf: 4, n: 4, data: func(t *testing.T, _ unit, out []byte) {
			if out[2] != 0x90 {
				t.Errorf("% x", out[:4])
			}
		}},
		{name: "mode sense(6) all pages", cdb: modeSense6(0, 0x3F, 0, 255), buf: 255, n: 36, data: func(t *testing.T, _ unit, out []byte) {
			if out[4] != 0x08 || out[5] != 0x12 || out[6] != 0x04 || out[24] != 0x0A || out[25] != 0x0A || out[26]&0x04 != 0 {
				t.Errorf("% x", out[:36])
			}
		}},
		{name: "mode sense(6) caching", cdb: modeSense6(0, 0x08, 0, 255), buf: 255, n: 24, data: func(t *testing.T, _ unit, out []byte) {
			if out[0] != 23 || out[4] != 0x08 || out[6]&0x04 == 0 {
				t.Errorf("% x", out[:24])
			}
		}},
		{name: "mode sense(6) caching read-only: WCE 0", d: ro, cdb: modeSense6(0, 0x08, 0, 255), buf: 255, n: 24, data: func(t *testing.T, _ unit, out []byte) {
			if out[6]&0x04 != 0 {
				t.Errorf("% x", out[:24])
			}
		}},
		{name: "mode sense(6) changeable", cdb: modeSense6(1, 0x08, 0, 255), buf: 255, n: 24, data: func(t *testing.T, _ unit, out []byte) {
			if !bytes.Equal(out[6:24], make([]byte, 18)) {
				t.Errorf("% x", out[:24])
			}
		}},
		{name: "mode sense(6) default", cdb: modeSense6(2, 0x0A, 0, 255), buf: 255, n: 16},
		{name: "mode sense(6) saved", cdb: modeSense6(3, 0x08, 0, 255), buf: 255, sense: Sense{KeyIllegalRequest, ASCSavingParametersNotSupported}},
		{name: "mode sense(6) all subpages", cdb: modeSense6(0, 0x3F, 0xFF, 255), buf: 255, n: 36},
		{name: "mode sense(6) subpage", cdb: modeSense6(0, 0x08, 1, 255), buf: 255, sense: sInvalidField},
		{name: "mode sense(6) informational exceptions", cdb: modeSense6(0, 0x1C, 0, 255), buf: 255, sense: sInvalidField},
		{name: "mode sense(10) control", cdb: modeSense10(0, 0x0A, 0, 512), buf: 512, n: 20, data: func(t *testing.T, _ unit, out []byte) {
			if binary.BigEndian.Uint16(out) != 18 || out[3] != 0x10 || binary.BigEndian.Uint16(out[6:]) != 0 || out[8] != 0x0A || out[11] != 0x10 {
				t.Errorf("% x", out[:20])
			}
		}},
		{name: "read capacity(10)", cdb: cdb(OpReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0), buf: 8, n: 8, data: func(t *testing.T, _ unit, out []byte) {
			if binary.BigEndian.Uint32(out) != testBlocks-1 || binary.BigEndian.Uint32(out[4:]) != 512 {
				t.Errorf("% x", out[:8])
			}
		}},
		{name: "read capacity(10) LBA without PMI", cdb: cdb(OpReadCapacity10, 0, 0, 0, 0, 1, 0, 0, 0, 0), buf: 8, sense: sInvalidField},
		{name: "read capacity(10) PMI", cdb: cdb(OpReadCapacity10, 0, 0, 0, 0, 1, 0, 0, 1, 0), buf: 8, n: 8},
		{name: "read capacity(16)", cdb: readCap16(32), buf: 32, n: 32, data: func(t *testing.T, _ unit, out []byte) {
			if binary.BigEndian.Uint64(out) != testBlocks-1 || binary.BigEndian.Uint32(out[8:]) != 512 || out[13] != 0 || out[14] != 0 {
				t.Errorf("% x", out[:32])
			}
		}},
		{name: "read capacity(16) thin: LBPME LBPRZ", d: thin, cdb: readCap16(32), buf: 32, n: 32, data: func(t *testing.T, _ unit, out []byte) {
			if out[14] != 0xC0 {
				t.Errorf("% x", out[:32])
			}
		}},
		{name: "read capacity(16) short allocation", cdb: readCap16(12), buf: 32, n: 12},
		{name: "service action in, other action", cdb: cdb(OpServiceActionIn16, 0x12, be64(0), be32(32), 0, 0), buf: 32, sense: sInvalidField},
		{name: "read(10)", cdb: read10(5, 3), buf: 1536, n: 1536, data: wantDisk(5, 3)},
		{name: "read(10) zero blocks", cdb: read10(5, 0), buf: 0},
		{name: "read(10) last block", cdb: read10(testBlocks-1, 1), buf: 512, n: 512, data: wantDisk(testBlocks-1, 1)},
		{name: "read(10) past the end", cdb: read10(testBlocks-1, 2), buf: 1024, sense: sLBARange},
		{name: "read(10) beyond capacity", cdb: read10(testBlocks, 1), buf: 512, sense: sLBARange},
		{name: "read(10) zero blocks at capacity", cdb: read10(testBlocks, 0)},
		{name: "read(10) zero blocks beyond capacity", cdb: read10(testBlocks+1, 0), sense: sLBARange},
		{name: "read(10) buffer too short", cdb: read10(0, 2), buf: 1023, sense: sInvalidField},
		{name: "read(10) rdprotect", cdb: cdb(OpRead10, 0x20, be32(0), 0, be16(1), 0), buf: 512, sense: sInvalidField},
		{name: "read(10) longer buffer", cdb: read10(7, 1), buf: 4096, n: 512, data: wantDisk(7, 1)},
		{name: "read(12)", cdb: read12(100, 200), buf: 200 * 512, n: 200 * 512, data: wantDisk(100, 200)},
		{name: "read(16)", cdb: read16(2000, 48), buf: 48 * 512, n: 48 * 512, data: wantDisk(2000, 48)},
		{name: "read(16) LBA overflow", cdb: read16(1<<64-1, 2), buf: 1024, sense: sLBARange},
		{name: "read(16) huge length", cdb: read16(0, 0xFFFFFFFF), buf: 512, sense: sLBARange},
		{name: "read(6)", cdb: cdb(OpRead6, 0, 0, 9, 2, 0), buf: 1024, n: 1024, data: wantDisk(9, 2)},
		{name: "read(6) zero means 256", cdb: cdb(OpRead6, 0, 0, 0, 0, 0), buf: 256 * 512, n: 256 * 512, data: wantDisk(0, 256)},
		{name: "write(10)", cdb: write10(3, 2), buf: 1024, in: pattern(1024, 0xA5), n: 1024, data: wantWritten(3, pattern(1024, 0xA5))},
		{name: "write(10) read-only", d: ro, cdb: write10(3, 2), buf: 1024, in: pattern(1024, 1), sense: sWriteProtect},
		{name: "write(10) read-only, also out of range", d: ro, cdb: write10(testBlocks, 2), buf: 1024, sense: sWriteProtect},
		{name: "write(10) out of range", cdb: write10(testBlocks-1, 2), buf: 1024, sense: sLBARange},
		{name: "write(10) buffer too short", cdb: write10(0, 2), buf: 512, sense: sInvalidField},
		{name: "write(10) wrprotect", cdb: cdb(OpWrite10, 0x40, be32(0), 0, be16(1), 0), buf: 512, sense: sInvalidField},
		{name: "write(10) FUA flushes", cdb: cdb(OpWrite10, 0x08, be32(0), 0, be16(1), 0), buf: 512, in: pattern(512, 3), n: 512, data: func(t *testing.T, u unit, _ []byte) {
			if u.ram.Flushes() != 1 {
				t.Errorf("%d flushes", u.ram.Flushes())
			}
		}},
		{name: "write(12)", cdb: write12(1000, 3), buf: 1536, in: pattern(1536, 9), n: 1536, data: wantWritten(1000, pattern(1536, 9))},
		{name: "write(16)", cdb: write16(testBlocks-200, 200), buf: 200 * 512, in: pattern(200*512, 4), n: 200 * 512, data: wantWritten(testBlocks-200, pattern(200*512, 4))},
		{name: "write(16) read-only", d: ro, cdb: write16(0, 1), buf: 512, sense: sWriteProtect},
		{name: "write(6)", cdb: cdb(OpWrite6, 0, 0, 4, 1, 0), buf: 512, in: pattern(512, 8), n: 512, data: wantWritten(4, pattern(512, 8))},
		{name: "synchronize cache(10)", cdb: cdb(OpSynchronizeCache10, 0, be32(0), 0, be16(0), 0), data: func(t *testing.T, u unit, _ []byte) {
			if u.ram.Flushes() != 1 {
				t.Errorf("%d flushes", u.ram.Flushes())
			}
		}},
		{name: "synchronize cache(10) read-only", d: ro, cdb: cdb(OpSynchronizeCache10, 2, be32(0), 0, be16(0), 0)},
		{name: "synchronize cache(10) out of range", cdb: cdb(OpSynchronizeCache10, 0, be32(testBlocks), 0, be16(1), 0), sense: sLBARange},
		{name: "synchronize cache(16)", cdb: cdb(OpSynchronizeCache16, 0, be64(10), be32(10), 0, 0)},
		{name: "synchronize cache(16) out of range", cdb: cdb(OpSynchronizeCache16, 0, be64(testBlocks-1), be32(2), 0, 0), sense: sLBARange},
		{name: "unmap not advertised", cdb: unmapCDB(24), buf: 24, in: unmapList([2]uint64{0, 1}), sense: sInvalidOpcode},
		{name: "unmap read-only (not advertised)", d: disk{ro: true, unmap: true}, cdb: unmapCDB(24), buf: 24, in: unmapList([2]uint64{0, 1}), sense: sInvalidOpcode},
		{name: "unmap", d: thin, cdb: unmapCDB(40), buf: 40, in: unmapList([2]uint64{2, 2}, [2]uint64{10, 1}), n: 40, data: func(t *testing.T, u unit, _ []byte) {
			d := u.ram.Bytes()
			if !bytes.Equal(d[1024:2048], make([]byte, 1024)) || !bytes.Equal(d[5120:5632], make([]byte, 512)) || bytes.Equal(d[2048:2560], make([]byte, 512)) {
				t.Error("not zeroed")
			}
			if u.ram.Unmapped() != 1536 {
				t.Errorf("unmapped %d", u.ram.Unmapped())
			}
		}},
		{name: "unmap empty list", d: thin, cdb: unmapCDB(0)},
		{name: "unmap list length error", d: thin, cdb: unmapCDB(7), buf: 7, sense: Sense{KeyIllegalRequest, ASCParameterListLengthError}},
		{name: "unmap list longer than buffer", d: thin, cdb: unmapCDB(24), buf: 16, sense: sInvalidField},
		{name: "unmap too many descriptors", d: thin, cdb: unmapCDB(8 + 16*257), buf: 8 + 16*257, sense: Sense{KeyIllegalRequest, ASCInvalidFieldInParameterList}},
		{name: "unmap anchor", d: thin, cdb: cdb(OpUnmap, 1, 0, 0, 0, 0, 0, be16(24), 0), buf: 24, sense: sInvalidField},
		{name: "unmap out of range applies nothing", d: thin, cdb: unmapCDB(40), buf: 40, in: unmapList([2]uint64{0, 1}, [2]uint64{testBlocks, 1}), sense: sLBARange, data: func(t *testing.T, u unit, _ []byte) {
			if u.ram.Unmapped() != 0 {
				t.Error("applied")
			}
		}},
		{name: "unmap partial descriptor ignored", d: thin, cdb: unmapCDB(30), buf: 30, in: append(unmapList([2]uint64{0, 1}), 1, 2, 3, 4, 5, 6), n: 30},
		{name: "report luns", cdb: reportLUNs(0, 256), buf: 256, n: 16, data: func(t *testing.T, _ unit, out []byte) {
			if !bytes.Equal(out[:16], []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
				t.Errorf("% x", out[:16])
			}
		}},
		{name: "report luns well-known", cdb: reportLUNs(1, 256), buf: 256, n: 8},
		{name: "report luns bad select", cdb: reportLUNs(0x10, 256), buf: 256, sense: sInvalidField},
		{name: "unknown opcode", cdb: cdb(0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0), sense: sInvalidOpcode},
		{name: "write same(16)", cdb: cdb(0x93, 0, be64(0), be32(1), 0, 0), sense: sInvalidOpcode},
		{name: "report supported opcodes", cdb: cdb(0xA3, 0x0C, 0, 0, 0, 0, be32(512), 0, 0), sense: sInvalidOpcode},
		{name: "prevent allow medium removal", cdb: cdb(0x1E, 0, 0, 0, 1, 0), sense: sInvalidOpcode},
		{name: "vendor specific", cdb: cdb(0xC0, 0, 0, 0, 0, 0), sense: sInvalidOpcode},
		{name: "empty cdb", cdb: nil, sense: sInvalidField},
		{name: "short cdb", cdb: cdb(OpRead10, 0, 0, 0), sense: sInvalidField},
		{name: "naca", cdb: cdb(OpTestUnitReady, 0, 0, 0, 0, ControlNACA), sense: sInvalidField},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := newUnit(t, c.d.ro, c.d.unmap, Options{})
			buf := make(SliceBuffer, c.buf)
			copy(buf, c.in)
			before := bytes.Clone(u.ram.Bytes())
			r := u.Execute(c.cdb, buf)
			want := StatusGood
			if c.sense != (Sense{}) {
				want = StatusCheckCondition
			}
			if r.Status != want || r.Sense != c.sense {
				t.Fatalf("%v %v, want %v %v", r.Status, r.Sense, want, c.sense)
			}
			if want == StatusGood && r.N != c.n {
				t.Fatalf("moved %d bytes, want %d", r.N, c.n)
			}
			if r.Err != nil {
				t.Fatalf("Err %v for the initiator's own mistake", r.Err)
			}
			if (c.d.ro || want != StatusGood) && !bytes.Equal(before, u.ram.Bytes()) {
				t.Fatal("the disk changed")
			}
			if c.data != nil {
				c.data(t, u, buf)
			}
		})
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed ^ byte(i*13+i>>8)
	}
	return b
}

func wantDisk(lba, n int) func(*testing.T, unit, []byte) {
	return func(t *testing.T, u unit, out []byte) {
		if !bytes.Equal(out[:n*512], u.ram.Bytes()[lba*512:(lba+n)*512]) {
			t.Error("data differs from the disk")
		}
	}
}

func wantWritten(lba int, data []byte) func(*testing.T, unit, []byte) {
	return func(t *testing.T, u unit, _ []byte) {
		if !bytes.Equal(u.ram.Bytes()[lba*512:lba*512+len(data)], data) {
			t.Error("the disk does not hold the data")
		}
	}
}

func TestIdentity(t *testing.T) {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	u := newUnit(t, false, false, Options{Vendor: "gohv", Product: "disk0", Revision: "2", Serial: "SN-0001", DeviceID: id, MaxTransferBlocks: 512})
	buf := make(SliceBuffer, 255)
	if r := u.Execute(inquiry(false, 0, 36), buf); string(buf[8:36]) != "gohv    disk0           2   " || r.N != 36 {
		t.Fatalf("%q %+v", buf[8:36], r)
	}
	r := u.Execute(inquiry(true, 0, 255), buf)
	if !bytes.Equal(buf[:r.N], []byte{0, 0, 0, 5, 0, 0x80, 0x83, 0xB0, 0xB1}) {
		t.Fatalf("% x", buf[:r.N])
	}
	r = u.Execute(inquiry(true, 0x80, 255), buf)
	if string(buf[4:r.N]) != "SN-0001" || buf[3] != 7 {
		t.Fatalf("%q", buf[:r.N])
	}
	r = u.Execute(inquiry(true, 0x83, 255), buf)
	p := buf[4:r.N]
	if p[3] != 8+32 || string(p[4:12]) != "gohv    " || string(p[12:44]) != "0102030405060708090a0b0c0d0e0f10" {
		t.Fatalf("% x", p)
	}
	naa := p[44:]
	if !bytes.Equal(naa[:4], []byte{1, 3, 0, 8}) || naa[4]>>4 != 3 || len(naa) != 12 {
		t.Fatalf("% x", naa)
	}
	r = u.Execute(inquiry(true, 0xB0, 255), buf)
	if binary.BigEndian.Uint32(buf[8:]) != 512 {
		t.Fatalf("% x", buf[:16])
	}
	if r := u.Execute(read10(0, 513), make(SliceBuffer, 513*512)); r.Sense != sInvalidField {
		t.Fatalf("beyond the maximum transfer length: %+v", r)
	}
	if r := u.Execute(read10(0, 512), make(SliceBuffer, 512*512)); r.Status != StatusGood {
		t.Fatalf("the maximum transfer length: %+v", r)
	}
	for _, o := range []Options{{Vendor: "ninechars"}, {Product: strings.Repeat("p", 17)}, {Revision: "12345"}, {Serial: "tab\t"}, {Serial: strings.Repeat("s", 253)}} {
		if _, err := NewLogicalUnit(u.ram, o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
}

func TestGeometry(t *testing.T) {
	for _, c := range []struct {
		size int
		bs   int
	}{{0, 512}, {1000, 512}, {4096, 256}, {4096, 1000}, {1 << 17, 1 << 17}} {
		if _, err := NewRAMDisk(make([]byte, c.size), c.bs, false); err == nil {
			t.Errorf("size %d, block %d accepted", c.size, c.bs)
		}
	}
	if _, err := NewLogicalUnit(nil, Options{}); err == nil {
		t.Error("nil disk")
	}
	// A 4 KiB-block disk.
	d, _ := NewRAMDisk(make([]byte, 64<<10), 4096, false)
	u, _ := NewLogicalUnit(d, Options{})
	buf := make(SliceBuffer, 32)
	u.Execute(readCap16(32), buf)
	if binary.BigEndian.Uint64(buf) != 15 || binary.BigEndian.Uint32(buf[8:]) != 4096 {
		t.Fatalf("% x", buf)
	}
	if r := u.Execute(read10(15, 1), make(SliceBuffer, 4096)); r.N != 4096 {
		t.Fatal(r)
	}
}

// bigDisk reports 2^33 blocks without holding them.
type bigDisk struct{ noUnmap }

func (bigDisk) Size() int64 { return 512 << 33 }

func TestReadCapacity10OnAHugeDisk(t *testing.T) {
	ram, _ := NewRAMDisk(make([]byte, 512), 512, false)
	u, err := NewLogicalUnit(bigDisk{noUnmap{ram}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make(SliceBuffer, 32)
	u.Execute(cdb(OpReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0), buf)
	if binary.BigEndian.Uint32(buf) != 0xFFFFFFFF {
		t.Fatalf("% x", buf[:8])
	}
	u.Execute(readCap16(32), buf)
	if binary.BigEndian.Uint64(buf) != 1<<33-1 {
		t.Fatalf("% x", buf[:8])
	}
}

// failing is a disk whose I/O fails.
type failing struct{ noUnmap }

var errDisk = errors.New("disk on fire")

func (failing) ReadAt(p []byte, off int64) (int, error)  { return 0, errDisk }
func (failing) WriteAt(p []byte, off int64) (int, error) { return 0, errDisk }
func (failing) Flush() error                             { return errDisk }

// faultyBuffer refuses every access, as guest pages outside RAM would.
type faultyBuffer struct{ n int }

func (b faultyBuffer) Len() int                         { return b.n }
func (faultyBuffer) ReadAt([]byte, int64) (int, error)  { return 0, io.ErrUnexpectedEOF }
func (faultyBuffer) WriteAt([]byte, int64) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestDiskAndBufferFailures(t *testing.T) {
	ram, _ := NewRAMDisk(make([]byte, 1<<20), 512, false)
	u, _ := NewLogicalUnit(failing{noUnmap{ram}}, Options{})
	for _, c := range []struct {
		cdb  []byte
		want Sense
	}{
		{read10(0, 1), Sense{KeyMediumError, ASCUnrecoveredReadError}},
		{write10(0, 1), Sense{KeyMediumError, ASCWriteError}},
		{cdb(OpSynchronizeCache10, 0, be32(0), 0, be16(0), 0), Sense{KeyMediumError, ASCWriteError}},
	} {
		r := u.Execute(c.cdb, make(SliceBuffer, 512))
		if r.Status != StatusCheckCondition || r.Sense != c.want || !errors.Is(r.Err, errDisk) {
			t.Errorf("%v: %+v", Opcode(c.cdb[0]), r)
		}
	}
	good := newUnit(t, false, true, Options{})
	for _, c := range [][]byte{read10(0, 1), write10(0, 1), inquiry(false, 0, 36), unmapCDB(24)} {
		r := good.Execute(c, faultyBuffer{512})
		if r.Sense != sInvalidField || !errors.Is(r.Err, ErrBuffer) {
			t.Errorf("%v: %+v", Opcode(c[0]), r)
		}
	}
}

func TestNotPresentAndReportLUNs(t *testing.T) {
	buf := make(SliceBuffer, 255)
	r := NotPresent(inquiry(false, 0, 36), buf)
	if r.Status != StatusGood || r.N != 36 || buf[0] != 0x7F || buf[4] != 31 {
		t.Fatalf("%+v % x", r, buf[:8])
	}
	if r := NotPresent(inquiry(true, 0, 255), buf); r.Sense != sInvalidField {
		t.Fatalf("%+v", r)
	}
	r = NotPresent(cdb(OpRequestSense, 0, 0, 0, 18, 0), buf)
	if s, err := ParseSense(buf[:r.N]); r.Status != StatusGood || err != nil || s != sNotSupported {
		t.Fatalf("%+v %v %v", r, s, err)
	}
	for _, c := range [][]byte{cdb(OpTestUnitReady, 0, 0, 0, 0, 0), read10(0, 1), nil, cdb(0xFF)} {
		if r := NotPresent(c, buf); r.Status != StatusCheckCondition || r.Sense != sNotSupported {
			t.Fatalf("% x: %+v", c, r)
		}
	}
	r = ReportLUNs(reportLUNs(0, 256), []uint16{0, 3, 254, 300}, buf)
	want := []byte{0, 0, 0, 32, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,
		0, 3, 0, 0, 0, 0, 0, 0,
		0, 254, 0, 0, 0, 0, 0, 0,
		0x41, 0x2C, 0, 0, 0, 0, 0, 0}
	if r.N != len(want) || !bytes.Equal(buf[:r.N], want) {
		t.Fatalf("% x", buf[:r.N])
	}
	if r := ReportLUNs(reportLUNs(0, 12), []uint16{1, 2}, buf); r.N != 12 {
		t.Fatalf("%+v", r)
	}
	if r := ReportLUNs(inquiry(false, 0, 36), nil, buf); r.Sense != sInvalidField {
		t.Fatalf("%+v", r)
	}
	if r := ReportLUNs(reportLUNs(0, 16), nil, nil); r.Status != StatusGood || r.N != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestSenseFormats(t *testing.T) {
	s := Sense{KeyIllegalRequest, ASCLBAOutOfRange}
	f := s.Fixed()
	if !bytes.Equal(f[:], []byte{0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0, 0, 0, 0, 0}) {
		t.Fatalf("% x", f)
	}
	d := s.Descriptor()
	if !bytes.Equal(d[:], []byte{0x72, 5, 0x21, 0, 0, 0, 0, 0}) {
		t.Fatalf("% x", d)
	}
	for _, b := range [][]byte{f[:], d[:]} {
		if got, err := ParseSense(b); got != s || err != nil {
			t.Fatal(got, err)
		}
	}
	for _, b := range [][]byte{nil, {0x70, 0}, {0x72}, {0x10, 0, 0, 0}} {
		if _, err := ParseSense(b); !errors.Is(err, ErrSense) {
			t.Fatalf("% x: %v", b, err)
		}
	}
	// Names for the log.
	if s.String() != "ILLEGAL REQUEST/LOGICAL BLOCK ADDRESS OUT OF RANGE (05/21/00)" || OpRead16.String() != "READ(16)" || Opcode(0x41).String() != "OPCODE_0x41" {
		t.Fatal(s.String(), OpRead16, Opcode(0x41))
	}
	// Numbers (SPC-4 tables 27, 28; SAM-5 table 37).
	for got, want := range map[uint16]uint16{
		uint16(KeyIllegalRequest): 5, uint16(KeyDataProtect): 7, uint16(KeyMediumError): 3,
		uint16(ASCInvalidCommandOperationCode): 0x2000, uint16(ASCLBAOutOfRange): 0x2100,
		uint16(ASCInvalidFieldInCDB): 0x2400, uint16(ASCLogicalUnitNotSupported): 0x2500,
		uint16(ASCWriteProtected): 0x2700, uint16(StatusCheckCondition): 2,
	} {
		if got != want {
			t.Errorf("%#x, want %#x", got, want)
		}
	}
}

func TestParseCDBFields(t *testing.T) {
	c, err := ParseCDB(cdb(OpWrite16, 0x18, be64(0x0102030405060708), be32(0x0A0B0C0D), 0, 0x80))
	if err != nil || c.LBA != 0x0102030405060708 || c.Blocks != 0x0A0B0C0D || !c.FUA || !c.DPO || c.Control != 0x80 {
		t.Fatalf("%+v %v", c, err)
	}
	c, _ = ParseCDB(cdb(OpRead6, 0xFF, 0xFF, 0xFF, 7, 0))
	if c.LBA != 0x1FFFFF || c.Blocks != 7 {
		t.Fatalf("%+v", c)
	}
	c, _ = ParseCDB(modeSense10(2, 0x3F, 0xFF, 0x1234))
	if c.PC != 2 || c.PageCode != 0x3F || c.Subpage != 0xFF || c.AllocationLength != 0x1234 {
		t.Fatalf("%+v", c)
	}
	c, _ = ParseCDB(cdb(OpStartStopUnit, 1, 0, 0, 0x23, 0))
	if !c.Immed || c.PowerCondition != 2 || !c.LoEj || !c.Start {
		t.Fatalf("%+v", c)
	}
	c, _ = ParseCDB(readCap16(0x11223344))
	if c.ServiceAction != 0x10 || c.AllocationLength != 0x11223344 {
		t.Fatalf("%+v", c)
	}
	if _, err := ParseCDB(cdb(OpRead16, 0, 0)); !errors.Is(err, ErrShortCDB) {
		t.Fatal(err)
	}
	if _, err := ParseCDB(cdb(0x7F, 0)); !errors.Is(err, ErrInvalidOpcode) {
		t.Fatal(err)
	}
	for op, n := range map[Opcode]int{0x00: 6, 0x25: 10, 0x5A: 10, 0x88: 16, 0xA0: 12, 0x7F: 0, 0xC0: 0} {
		if op.GroupLength() != n {
			t.Errorf("%v: %d", op, op.GroupLength())
		}
	}
}

// FuzzParseCDB parses any CDB and executes it against a writable thin
// disk and a read-only one, with a fuzzed buffer: nothing panics, GOOD and
// CHECK CONDITION are the only statuses, sense goes with CHECK CONDITION
// only, no more bytes move than the buffer holds, and a read-only disk
// never changes.
func FuzzParseCDB(f *testing.F) {
	for _, c := range cdbSeeds() {
		f.Add(c, unmapList([2]uint64{1, 1}), uint16(1024))
	}
	rw := newUnit(f, false, true, Options{Serial: "x"})
	ro := newUnit(f, true, false, Options{})
	roBefore := bytes.Clone(ro.ram.Bytes())
	f.Fuzz(func(t *testing.T, b []byte, data []byte, buflen uint16) {
		c, err := ParseCDB(b)
		if err == nil && (len(b) < c.Op.GroupLength() || c.Op != Opcode(b[0])) {
			t.Fatalf("accepted % x as %+v", b, c)
		}
		for _, u := range []unit{rw, ro} {
			buf := make(SliceBuffer, int(buflen)%(300*512))
			copy(buf, data)
			r := u.Execute(b, buf)
			switch r.Status {
			case StatusGood:
				if r.Sense != (Sense{}) {
					t.Fatalf("GOOD with sense %v", r.Sense)
				}
			case StatusCheckCondition:
				if r.Sense.Key == KeyNoSense {
					t.Fatal("CHECK CONDITION without sense")
				}
			default:
				t.Fatalf("status %v", r.Status)
			}
			if r.N < 0 || r.N > len(buf) {
				t.Fatalf("moved %d bytes of a %d-byte buffer", r.N, len(buf))
			}
		}
		NotPresent(b, make(SliceBuffer, int(buflen)%512))
		ReportLUNs(b, []uint16{0, 1}, make(SliceBuffer, int(buflen)%512))
		if !bytes.Equal(roBefore, ro.ram.Bytes()) {
			t.Fatal("the read-only disk changed")
		}
	})
}

// cdbSeeds are FuzzParseCDB's seeds and committed corpus: every command
// served, as Linux sends it.
func cdbSeeds() map[string][]byte {
	return map[string][]byte{
		"read10": read10(1, 2), "write10": write10(3, 1), "read16": read16(5, 1), "write16": write16(7, 2),
		"read12": read12(0, 1), "write12": write12(9, 1), "read6": cdb(OpRead6, 0, 0, 1, 1, 0),
		"inquiry": inquiry(false, 0, 36), "vpd_pages": inquiry(true, 0, 255), "vpd_83": inquiry(true, 0x83, 255),
		"vpd_b0": inquiry(true, 0xB0, 64), "mode_sense6_3f": modeSense6(0, 0x3F, 0, 255),
		"mode_sense10_08": modeSense10(0, 0x08, 0, 64), "read_capacity16": readCap16(32),
		"read_capacity10": cdb(OpReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0), "report_luns": reportLUNs(0, 64),
		"unmap": unmapCDB(24), "sync_cache10": cdb(OpSynchronizeCache10, 0, be32(0), 0, be16(0), 0),
		"request_sense_desc": cdb(OpRequestSense, 1, 0, 0, 8, 0), "test_unit_ready": cdb(OpTestUnitReady, 0, 0, 0, 0, 0),
		"write_same16": cdb(0x93, 0, be64(0), be32(1), 0, 0), "short": cdb(OpRead16, 0, 0),
	}
}

// TestWriteFuzzCorpus writes the seeds under testdata/fuzz when
// GOHV_WRITE_CORPUS is set (the committed corpus comes from here).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GOHV_WRITE_CORPUS") == "" {
		t.Skip("set GOHV_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzParseCDB")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParseCDB")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, c := range cdbSeeds() {
		body := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nuint16(%d)\n", c, unmapList([2]uint64{1, 1}), 1024)
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
