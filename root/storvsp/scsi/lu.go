package scsi

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Options are a logical unit's identity and limits.
type Options struct {
	// Vendor (≤ 8), Product (≤ 16) and Revision (≤ 4): printable ASCII
	// for the standard INQUIRY data, space-padded. Empty means "Msft",
	// "Virtual Disk", "1.0": Linux's storvsc keys its Hyper-V quirks
	// (SPC-3 level on protocols 5.1 and 6.0) on the vendor "Msft".
	Vendor, Product, Revision string
	// Serial is VPD page 0x80's unit serial number (printable ASCII, at
	// most 252 bytes); empty leaves the page out.
	Serial string
	// DeviceID makes the identifiers of VPD page 0x83 unique: a T10
	// vendor-ID designator carrying it in hex and, when non-zero, a
	// locally assigned NAA designator (Linux's /dev/disk/by-id/wwn-*).
	DeviceID [16]byte
	// MaxTransferBlocks is VPD 0xB0's MAXIMUM TRANSFER LENGTH; longer
	// READs and WRITEs are refused with INVALID FIELD IN CDB. 0: no limit.
	MaxTransferBlocks uint32
}

// MaxUnmapDescriptors is the most block descriptors one UNMAP may carry
// (VPD 0xB0's MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT); it bounds the
// parameter list read from the initiator to 8 + 16·256 bytes.
const MaxUnmapDescriptors = 256

// LogicalUnit is a direct-access block device (SBC-3) over a Disk: it
// executes one CDB at a time per call, any number of calls at once.
type LogicalUnit struct {
	disk     Disk
	unmapper Unmapper // nil: UNMAP not advertised
	bs       int64
	blocks   uint64
	ro       bool
	opts     Options
	inquiry  [inquiryStdSize]byte
}

// NewLogicalUnit checks the disk's geometry and the identity strings. The
// disk's size, block size and read-only flag are read once, here.
func NewLogicalUnit(d Disk, o Options) (*LogicalUnit, error) {
	if d == nil {
		return nil, errors.New("scsi: nil disk")
	}
	bs := d.BlockSize()
	if err := checkGeometry(d.Size(), bs); err != nil {
		return nil, err
	}
	if o.Vendor == "" {
		o.Vendor = "Msft"
	}
	if o.Product == "" {
		o.Product = "Virtual Disk"
	}
	if o.Revision == "" {
		o.Revision = "1.0"
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"vendor", o.Vendor, 8}, {"product", o.Product, 16}, {"revision", o.Revision, 4}, {"serial", o.Serial, 252}} {
		if len(f.v) > f.max {
			return nil, fmt.Errorf("scsi: %s %q longer than %d bytes", f.name, f.v, f.max)
		}
		for _, c := range []byte(f.v) {
			if c < 0x20 || c > 0x7E {
				return nil, fmt.Errorf("scsi: %s %q: not printable ASCII", f.name, f.v)
			}
		}
	}
	u := &LogicalUnit{disk: d, bs: int64(bs), blocks: uint64(d.Size() / int64(bs)), ro: d.ReadOnly(), opts: o}
	if m, ok := d.(Unmapper); ok && !u.ro {
		u.unmapper = m
	}
	u.inquiry = u.standardInquiry()
	return u, nil
}

// Blocks is the capacity in logical blocks.
func (u *LogicalUnit) Blocks() uint64 { return u.blocks }

// BlockSize is the logical block size in bytes.
func (u *LogicalUnit) BlockSize() int { return int(u.bs) }

// ReadOnly says whether writes are refused.
func (u *LogicalUnit) ReadOnly() bool { return u.ro }

// Unmaps says whether UNMAP is advertised and served.
func (u *LogicalUnit) Unmaps() bool { return u.unmapper != nil }

// Result is how a command ended.
type Result struct {
	Status Status
	// Sense is the sense data of a CHECK CONDITION (zero otherwise).
	Sense Sense
	// N is how many data bytes moved to or from the buffer.
	N int
	// Err is the disk's or the buffer's failure behind a CHECK
	// CONDITION, for the log; nil when the initiator's CDB alone
	// explains it. Its errors.Is ErrBuffer when the initiator's buffer
	// could not be read or written.
	Err error
}

// ErrBuffer is wrapped by Result.Err when the initiator's own buffer
// failed (for the VSP: a guest page outside the partition's RAM). The
// command ends ILLEGAL REQUEST / INVALID FIELD IN CDB.
var ErrBuffer = errors.New("scsi: initiator buffer")

func good(n int) Result { return Result{Status: StatusGood, N: n} }

func check(k SenseKey, a AdditionalSense) Result {
	return Result{Status: StatusCheckCondition, Sense: Sense{Key: k, Code: a}}
}

func illegal(a AdditionalSense) Result { return check(KeyIllegalRequest, a) }

func bufferFault(err error) Result {
	r := illegal(ASCInvalidFieldInCDB)
	r.Err = fmt.Errorf("%w: %w", ErrBuffer, err)
	return r
}

type emptyBuffer struct{}

func (emptyBuffer) Len() int                           { return 0 }
func (emptyBuffer) ReadAt([]byte, int64) (int, error)  { return 0, errors.New("no data buffer") }
func (emptyBuffer) WriteAt([]byte, int64) (int, error) { return 0, errors.New("no data buffer") }

// Execute runs one command. cdb and everything buf holds are the
// initiator's and untrusted; buf may be nil when the command moves no
// data. Execute never panics on them; every outcome is a Result (see the
// package documentation's table).
func (u *LogicalUnit) Execute(cdb []byte, buf Buffer) Result {
	if buf == nil {
		buf = emptyBuffer{}
	}
	c, err := ParseCDB(cdb)
	if errors.Is(err, ErrInvalidOpcode) {
		return illegal(ASCInvalidCommandOperationCode)
	}
	if err != nil {
		return illegal(ASCInvalidFieldInCDB)
	}
	if c.Control&ControlNACA != 0 {
		return illegal(ASCInvalidFieldInCDB)
	}
	switch c.Op {
	case OpTestUnitReady, OpStartStopUnit:
		return good(0)
	case OpRequestSense:
		return requestSense(c, buf, Sense{})
	case OpInquiry:
		return u.inquire(c, buf)
	case OpModeSense6, OpModeSense10:
		return u.modeSense(c, buf)
	case OpReadCapacity10:
		return u.readCapacity10(c, buf)
	case OpServiceActionIn16:
		if c.ServiceAction != SAReadCapacity16 {
			return illegal(ASCInvalidFieldInCDB)
		}
		return u.readCapacity16(c, buf)
	case OpRead6, OpRead10, OpRead12, OpRead16:
		return u.read(c, buf)
	case OpWrite6, OpWrite10, OpWrite12, OpWrite16:
		return u.write(c, buf)
	case OpSynchronizeCache10, OpSynchronizeCache16:
		return u.synchronizeCache(c)
	case OpUnmap:
		if u.unmapper == nil {
			return illegal(ASCInvalidCommandOperationCode) // not advertised
		}
		return u.unmap(c, buf)
	case OpReportLUNs:
		return ReportLUNs(cdb, []uint16{0}, buf)
	}
	return illegal(ASCInvalidCommandOperationCode)
}

// dataIn copies data, cut to the allocation length and the buffer, into
// the buffer.
func dataIn(buf Buffer, data []byte, alloc uint32) Result {
	n := min(len(data), buf.Len())
	if uint64(n) > uint64(alloc) {
		n = int(alloc)
	}
	if n == 0 {
		return good(0)
	}
	if _, err := buf.WriteAt(data[:n], 0); err != nil {
		return bufferFault(err)
	}
	return good(n)
}

// requestSense answers REQUEST SENSE with s (NO SENSE for a logical unit:
// every error's sense went out with its command), in fixed or descriptor
// format as the DESC bit asks.
func requestSense(c CDB, buf Buffer, s Sense) Result {
	if c.Desc {
		d := s.Descriptor()
		return dataIn(buf, d[:], c.AllocationLength)
	}
	f := s.Fixed()
	return dataIn(buf, f[:], c.AllocationLength)
}

// ReportLUNs answers REPORT LUNS (SPC-4 6.33) for a target holding luns:
// SELECT REPORT 0x00 and 0x02 list them (single-level peripheral device
// addressing, ascending as given), 0x01 (well-known LUNs only) lists none,
// anything else is INVALID FIELD IN CDB. A target with several logical
// units (the VSP's path/target) answers it for all of them; a
// LogicalUnit's Execute answers as the only unit, LUN 0.
func ReportLUNs(cdb []byte, luns []uint16, buf Buffer) Result {
	if buf == nil {
		buf = emptyBuffer{}
	}
	c, err := ParseCDB(cdb)
	if err != nil || c.Op != OpReportLUNs || c.Control&ControlNACA != 0 {
		return illegal(ASCInvalidFieldInCDB)
	}
	switch c.SelectReport {
	case 0x00, 0x02:
	case 0x01:
		luns = nil
	default:
		return illegal(ASCInvalidFieldInCDB)
	}
	data := make([]byte, 8+8*len(luns))
	binary.BigEndian.PutUint32(data, uint32(8*len(luns)))
	for i, l := range luns {
		// Peripheral device addressing (SAM-5 4.7.7.2) for LUNs below
		// 256, flat space addressing above.
		e := data[8+8*i:]
		if l < 256 {
			e[1] = byte(l)
		} else {
			binary.BigEndian.PutUint16(e, 0x4000|l&0x3FFF)
		}
	}
	return dataIn(buf, data, c.AllocationLength)
}

// NotPresent answers a command addressed to a logical unit the target
// does not have (SPC-4 6.6.2, "logical unit not present"):
//
//   - standard INQUIRY: 36 bytes with peripheral qualifier 3 and device
//     type 0x1F (byte 0 = 0x7F), so a Linux scan, whose storvsc forces
//     INQUIRY to succeed whatever the host says, sees no disk there;
//   - INQUIRY for a VPD page: ILLEGAL REQUEST / INVALID FIELD IN CDB;
//   - REQUEST SENSE: GOOD, with the sense LOGICAL UNIT NOT SUPPORTED;
//   - everything else: CHECK CONDITION, ILLEGAL REQUEST / LOGICAL UNIT
//     NOT SUPPORTED.
//
// REPORT LUNS belongs to the target: answer it with ReportLUNs.
func NotPresent(cdb []byte, buf Buffer) Result {
	if buf == nil {
		buf = emptyBuffer{}
	}
	notSupported := Sense{Key: KeyIllegalRequest, Code: ASCLogicalUnitNotSupported}
	c, err := ParseCDB(cdb)
	if err != nil {
		return Result{Status: StatusCheckCondition, Sense: notSupported}
	}
	switch c.Op {
	case OpInquiry:
		if c.EVPD || c.CmdDt || c.PageCode != 0 || c.Control&ControlNACA != 0 {
			return illegal(ASCInvalidFieldInCDB)
		}
		var d [inquiryStdSize]byte
		d[0] = PeripheralNotPresent
		d[2] = inquiryVersionSPC3
		d[3] = inquiryResponseFormat
		d[4] = inquiryStdSize - 5
		return dataIn(buf, d[:], c.AllocationLength)
	case OpRequestSense:
		return requestSense(c, buf, notSupported)
	}
	return Result{Status: StatusCheckCondition, Sense: notSupported}
}

// designatorID is the vendor-specific part of the T10 vendor-ID
// designator: the device ID in hex, else the serial, else the product.
func (u *LogicalUnit) designatorID() string {
	if u.opts.DeviceID != ([16]byte{}) {
		return hex.EncodeToString(u.opts.DeviceID[:])
	}
	if u.opts.Serial != "" {
		return u.opts.Serial
	}
	return u.opts.Product
}
