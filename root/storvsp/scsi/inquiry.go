package scsi

import (
	"encoding/binary"
	"slices"
)

// Standard INQUIRY data (SPC-4 6.6.2).
const (
	inquiryStdSize        = 36
	inquiryVersionSPC3    = 0x05
	inquiryResponseFormat = 0x02
	inquiryCmdQue         = 0x02 // byte 7: command queuing

	// PeripheralDirectAccess is byte 0 of a present disk: qualifier 0,
	// device type 0 (SBC).
	PeripheralDirectAccess = 0x00
	// PeripheralNotPresent is byte 0 for a logical unit the target
	// cannot have: qualifier 3, device type 0x1F (trap 8).
	PeripheralNotPresent = 0x7F
)

// VPD page codes served (SPC-4 7.8, SBC-3 6.6).
const (
	VPDSupportedPages             = 0x00
	VPDUnitSerialNumber           = 0x80
	VPDDeviceIdentification       = 0x83
	VPDBlockLimits                = 0xB0
	VPDBlockDeviceCharacteristics = 0xB1
	VPDLogicalBlockProvisioning   = 0xB2
)

func (u *LogicalUnit) standardInquiry() [inquiryStdSize]byte {
	var d [inquiryStdSize]byte
	d[0] = PeripheralDirectAccess
	d[1] = 0 // RMB 0: the medium is not removable
	d[2] = inquiryVersionSPC3
	d[3] = inquiryResponseFormat
	d[4] = inquiryStdSize - 5
	d[7] = inquiryCmdQue
	pad(d[8:16], u.opts.Vendor)
	pad(d[16:32], u.opts.Product)
	pad(d[32:36], u.opts.Revision)
	return d
}

func pad(dst []byte, s string) {
	n := copy(dst, s)
	for i := n; i < len(dst); i++ {
		dst[i] = ' '
	}
}

func (u *LogicalUnit) inquire(c CDB, buf Buffer) Result {
	if c.CmdDt {
		return illegal(ASCInvalidFieldInCDB)
	}
	if !c.EVPD {
		if c.PageCode != 0 {
			return illegal(ASCInvalidFieldInCDB)
		}
		return dataIn(buf, u.inquiry[:], c.AllocationLength)
	}
	page := u.vpdPage(c.PageCode)
	if page == nil {
		// Linux asks only for pages VPD 0x00 lists (scsi_get_vpd_page).
		return illegal(ASCInvalidFieldInCDB)
	}
	return dataIn(buf, page, c.AllocationLength)
}

// vpdPages lists the pages served, ascending.
func (u *LogicalUnit) vpdPages() []byte {
	p := []byte{VPDSupportedPages}
	if u.opts.Serial != "" {
		p = append(p, VPDUnitSerialNumber)
	}
	p = append(p, VPDDeviceIdentification, VPDBlockLimits, VPDBlockDeviceCharacteristics)
	if u.unmapper != nil {
		p = append(p, VPDLogicalBlockProvisioning)
	}
	return p
}

// vpdPage builds page code's page with its 4-byte header, or nil.
func (u *LogicalUnit) vpdPage(code uint8) []byte {
	if !slices.Contains(u.vpdPages(), code) {
		return nil
	}
	var body []byte
	switch code {
	case VPDSupportedPages:
		body = u.vpdPages()
	case VPDUnitSerialNumber:
		body = []byte(u.opts.Serial)
	case VPDDeviceIdentification:
		body = u.deviceIdentification()
	case VPDBlockLimits:
		body = u.blockLimits()
	case VPDBlockDeviceCharacteristics:
		body = make([]byte, 0x3C)
		binary.BigEndian.PutUint16(body[0:], 0x0001) // MEDIUM ROTATION RATE: non-rotating
	case VPDLogicalBlockProvisioning:
		body = make([]byte, 4)
		// LBPU (UNMAP), LBPRZ (unmapped blocks read as zeros); not
		// LBPWS/LBPWS10 (no WRITE SAME), ANC_SUP 0 (no anchors), DP 0;
		// provisioning type 0 (not reported).
		body[1] = 0x80 | 0x04
	}
	page := make([]byte, 4+len(body))
	page[0] = PeripheralDirectAccess
	page[1] = code
	binary.BigEndian.PutUint16(page[2:], uint16(len(body)))
	copy(page[4:], body)
	return page
}

// deviceIdentification is VPD 0x83's designator list (SPC-4 7.8.6): a T10
// vendor-ID designator, and a locally assigned NAA one for a non-zero
// DeviceID, both associated with the logical unit.
func (u *LogicalUnit) deviceIdentification() []byte {
	var b []byte
	// T10 vendor ID based (type 1), ASCII (code set 2): vendor, then a
	// vendor-specific identifier.
	id := make([]byte, 8, 8+64)
	pad(id, u.opts.Vendor)
	id = append(id, u.designatorID()...)
	if len(id) > 255 {
		id = id[:255]
	}
	b = append(b, 0x02, 0x01, 0x00, byte(len(id)))
	b = append(b, id...)
	if u.opts.DeviceID != ([16]byte{}) {
		// NAA (type 3), binary (code set 1), NAA 3 "locally assigned":
		// 60 bits folded from the device ID.
		v := binary.BigEndian.Uint64(u.opts.DeviceID[0:]) ^ binary.BigEndian.Uint64(u.opts.DeviceID[8:])
		v = 3<<60 | v&(1<<60-1)
		b = append(b, 0x01, 0x03, 0x00, 8)
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// blockLimits is VPD 0xB0 (SBC-3 6.6.3), 0x3C bytes after the header.
func (u *LogicalUnit) blockLimits() []byte {
	b := make([]byte, 0x3C)
	// offsets below are the page's minus the 4-byte header
	binary.BigEndian.PutUint32(b[8-4:], u.opts.MaxTransferBlocks) // MAXIMUM TRANSFER LENGTH
	if u.unmapper != nil {
		binary.BigEndian.PutUint32(b[20-4:], 0xFFFF_FFFF)         // MAXIMUM UNMAP LBA COUNT: no limit
		binary.BigEndian.PutUint32(b[24-4:], MaxUnmapDescriptors) // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
		binary.BigEndian.PutUint32(b[28-4:], 1)                   // OPTIMAL UNMAP GRANULARITY
		b[32-4] = 0x80                                            // UGAVALID, alignment 0
	}
	return b
}
