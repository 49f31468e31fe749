package scsi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Opcode is a CDB's operation code (byte 0).
type Opcode uint8

// The operation codes a LogicalUnit serves (SPC-4, SBC-3).
const (
	OpTestUnitReady      Opcode = 0x00
	OpRequestSense       Opcode = 0x03
	OpRead6              Opcode = 0x08
	OpWrite6             Opcode = 0x0A
	OpInquiry            Opcode = 0x12
	OpModeSense6         Opcode = 0x1A
	OpStartStopUnit      Opcode = 0x1B
	OpReadCapacity10     Opcode = 0x25
	OpRead10             Opcode = 0x28
	OpWrite10            Opcode = 0x2A
	OpSynchronizeCache10 Opcode = 0x35
	OpUnmap              Opcode = 0x42
	OpModeSense10        Opcode = 0x5A
	OpRead16             Opcode = 0x88
	OpWrite16            Opcode = 0x8A
	OpSynchronizeCache16 Opcode = 0x91
	OpServiceActionIn16  Opcode = 0x9E
	OpReportLUNs         Opcode = 0xA0
	OpRead12             Opcode = 0xA8
	OpWrite12            Opcode = 0xAA
)

// SAReadCapacity16 is READ CAPACITY (16)'s service action under
// SERVICE ACTION IN (16).
const SAReadCapacity16 = 0x10

// ControlNACA is the control byte's NACA bit: gohv supports no ACA, so a
// CDB with it set is refused (SPC-4 5.6).
const ControlNACA = 0x04

var opNames = map[Opcode]string{
	OpTestUnitReady: "TEST UNIT READY", OpRequestSense: "REQUEST SENSE", OpRead6: "READ(6)",
	OpWrite6: "WRITE(6)", OpInquiry: "INQUIRY", OpModeSense6: "MODE SENSE(6)",
	OpStartStopUnit: "START STOP UNIT", OpReadCapacity10: "READ CAPACITY(10)", OpRead10: "READ(10)",
	OpWrite10: "WRITE(10)", OpSynchronizeCache10: "SYNCHRONIZE CACHE(10)", OpUnmap: "UNMAP",
	OpModeSense10: "MODE SENSE(10)", OpRead16: "READ(16)", OpWrite16: "WRITE(16)",
	OpSynchronizeCache16: "SYNCHRONIZE CACHE(16)", OpServiceActionIn16: "SERVICE ACTION IN(16)",
	OpReportLUNs: "REPORT LUNS", OpRead12: "READ(12)", OpWrite12: "WRITE(12)",
}

func (o Opcode) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("OPCODE_%#02x", uint8(o))
}

// GroupLength is the CDB length an operation code's group implies (SPC-4
// 4.2.5.1): 6, 10, 16 or 12 bytes, or 0 for the reserved and
// vendor-specific groups.
func (o Opcode) GroupLength() int {
	switch o >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 0
}

// Errors ParseCDB returns; a LogicalUnit answers the first with INVALID
// COMMAND OPERATION CODE and the second with INVALID FIELD IN CDB.
var (
	ErrInvalidOpcode = errors.New("scsi: operation code not supported")
	ErrShortCDB      = errors.New("scsi: CDB shorter than its operation code needs")
)

// CDB is a parsed command descriptor block: the fields of the commands
// gohv serves, each set only by the commands that have it.
type CDB struct {
	Op            Opcode
	ServiceAction uint8 // SERVICE ACTION IN(16)
	// LBA: READ/WRITE, SYNCHRONIZE CACHE, READ CAPACITY.
	LBA uint64
	// Blocks: READ/WRITE's TRANSFER LENGTH (READ(6)/WRITE(6)'s 0 already
	// made 256), SYNCHRONIZE CACHE's NUMBER OF LOGICAL BLOCKS.
	Blocks uint32
	// AllocationLength: INQUIRY, MODE SENSE, REQUEST SENSE, REPORT LUNS,
	// READ CAPACITY(16).
	AllocationLength uint32
	// ParameterListLength: UNMAP.
	ParameterListLength uint32
	Protect             uint8 // RDPROTECT / WRPROTECT (byte 1, bits 7:5)
	DPO, FUA            bool
	EVPD                bool  // INQUIRY
	CmdDt               bool  // INQUIRY's obsolete CMDDT bit
	PageCode            uint8 // INQUIRY's VPD page, MODE SENSE's page (5:0)
	PC                  uint8 // MODE SENSE's page control (0 current, 1 changeable, 2 default, 3 saved)
	Subpage             uint8 // MODE SENSE
	DBD                 bool  // MODE SENSE: disable block descriptors
	LLBAA               bool  // MODE SENSE(10)
	Desc                bool  // REQUEST SENSE: descriptor-format sense
	PMI                 bool  // READ CAPACITY
	Immed               bool  // SYNCHRONIZE CACHE, START STOP UNIT
	Start, LoEj         bool  // START STOP UNIT
	PowerCondition      uint8 // START STOP UNIT (7:4 of byte 4)
	Anchor              bool  // UNMAP
	SelectReport        uint8 // REPORT LUNS
	Control             uint8 // the last byte of the CDB
}

// ParseCDB decodes a CDB. b is the CDB as the initiator sent it (a VSTOR
// request's cdb_length bytes) and is guest-controlled: ParseCDB never
// panics (FuzzParseCDB). An operation code gohv does not serve is
// ErrInvalidOpcode (with the opcode in the CDB), a CDB shorter than its
// opcode needs ErrShortCDB; bytes beyond that length are ignored.
func ParseCDB(b []byte) (CDB, error) {
	var c CDB
	if len(b) == 0 {
		return c, fmt.Errorf("scsi: empty CDB: %w", ErrShortCDB)
	}
	c.Op = Opcode(b[0])
	if _, ok := opNames[c.Op]; !ok {
		return c, fmt.Errorf("scsi: opcode %#02x: %w", b[0], ErrInvalidOpcode)
	}
	n := c.Op.GroupLength()
	if len(b) < n {
		return c, fmt.Errorf("scsi: %v: %d bytes, need %d: %w", c.Op, len(b), n, ErrShortCDB)
	}
	be := binary.BigEndian
	c.Control = b[n-1]
	rwFlags := func() {
		c.Protect = b[1] >> 5
		c.DPO = b[1]&0x10 != 0
		c.FUA = b[1]&0x08 != 0
	}
	switch c.Op {
	case OpTestUnitReady:
	case OpRequestSense:
		c.Desc = b[1]&0x01 != 0
		c.AllocationLength = uint32(b[4])
	case OpRead6, OpWrite6:
		c.LBA = uint64(b[1]&0x1F)<<16 | uint64(b[2])<<8 | uint64(b[3])
		c.Blocks = uint32(b[4])
		if c.Blocks == 0 {
			c.Blocks = 256 // SBC-3 5.7: zero means 256 blocks
		}
	case OpInquiry:
		c.EVPD = b[1]&0x01 != 0
		c.CmdDt = b[1]&0x02 != 0
		c.PageCode = b[2]
		c.AllocationLength = uint32(be.Uint16(b[3:]))
	case OpModeSense6, OpModeSense10:
		c.DBD = b[1]&0x08 != 0
		c.PC = b[2] >> 6
		c.PageCode = b[2] & 0x3F
		c.Subpage = b[3]
		if c.Op == OpModeSense6 {
			c.AllocationLength = uint32(b[4])
		} else {
			c.LLBAA = b[1]&0x10 != 0
			c.AllocationLength = uint32(be.Uint16(b[7:]))
		}
	case OpStartStopUnit:
		c.Immed = b[1]&0x01 != 0
		c.PowerCondition = b[4] >> 4
		c.LoEj = b[4]&0x02 != 0
		c.Start = b[4]&0x01 != 0
	case OpReadCapacity10:
		c.LBA = uint64(be.Uint32(b[2:]))
		c.PMI = b[8]&0x01 != 0
	case OpRead10, OpWrite10:
		rwFlags()
		c.LBA = uint64(be.Uint32(b[2:]))
		c.Blocks = uint32(be.Uint16(b[7:]))
	case OpRead12, OpWrite12:
		rwFlags()
		c.LBA = uint64(be.Uint32(b[2:]))
		c.Blocks = be.Uint32(b[6:])
	case OpRead16, OpWrite16:
		rwFlags()
		c.LBA = be.Uint64(b[2:])
		c.Blocks = be.Uint32(b[10:])
	case OpSynchronizeCache10:
		c.Immed = b[1]&0x02 != 0
		c.LBA = uint64(be.Uint32(b[2:]))
		c.Blocks = uint32(be.Uint16(b[7:]))
	case OpSynchronizeCache16:
		c.Immed = b[1]&0x02 != 0
		c.LBA = be.Uint64(b[2:])
		c.Blocks = be.Uint32(b[10:])
	case OpUnmap:
		c.Anchor = b[1]&0x01 != 0
		c.ParameterListLength = uint32(be.Uint16(b[7:]))
	case OpServiceActionIn16:
		c.ServiceAction = b[1] & 0x1F
		c.LBA = be.Uint64(b[2:])
		c.AllocationLength = be.Uint32(b[10:])
		c.PMI = b[14]&0x01 != 0
	case OpReportLUNs:
		c.SelectReport = b[2]
		c.AllocationLength = be.Uint32(b[6:])
	}
	return c, nil
}
