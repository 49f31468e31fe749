package scsi

import "encoding/binary"

// Mode pages served (SPC-4 7.5, SBC-3 6.4).
const (
	ModePageCaching  = 0x08
	ModePageControl  = 0x0A
	ModePageAll      = 0x3F
	ModeSubpageAll   = 0xFF
	modeCachingSize  = 20
	modeControlSize  = 12
	modeHeader6Size  = 4
	modeHeader10Size = 8
)

// Mode parameter header, DEVICE-SPECIFIC PARAMETER for direct-access
// devices (SBC-3 6.4.1).
const (
	ModeWP     = 0x80 // write protected
	ModeDPOFUA = 0x10 // DPO and FUA honoured
)

// Page controls (SPC-4 6.11, table 99).
const (
	pcCurrent    = 0
	pcChangeable = 1
	pcDefault    = 2
	pcSaved      = 3
)

// modeSense answers MODE SENSE (6) and (10): the caching and control pages
// (or both for 0x3F), no block descriptors (allowed with DBD 0: "zero or
// more"), WP for a read-only disk, DPOFUA always. Nothing is changeable
// (MODE SELECT is not served), default values are the current ones, and
// saved values are not supported.
func (u *LogicalUnit) modeSense(c CDB, buf Buffer) Result {
	if c.PC == pcSaved {
		return illegal(ASCSavingParametersNotSupported)
	}
	var pages []byte
	switch {
	case c.PageCode == ModePageAll && (c.Subpage == 0 || c.Subpage == ModeSubpageAll):
		pages = append(u.cachingPage(c.PC), u.controlPage(c.PC)...)
	case c.Subpage != 0:
		return illegal(ASCInvalidFieldInCDB)
	case c.PageCode == ModePageCaching:
		pages = u.cachingPage(c.PC)
	case c.PageCode == ModePageControl:
		pages = u.controlPage(c.PC)
	default:
		return illegal(ASCInvalidFieldInCDB)
	}
	var dsp byte = ModeDPOFUA
	if u.ro {
		dsp |= ModeWP
	}
	var data []byte
	if c.Op == OpModeSense6 {
		data = make([]byte, modeHeader6Size, modeHeader6Size+len(pages))
		data = append(data, pages...)
		data[0] = byte(len(data) - 1) // MODE DATA LENGTH excludes itself
		data[2] = dsp
	} else {
		data = make([]byte, modeHeader10Size, modeHeader10Size+len(pages))
		data = append(data, pages...)
		binary.BigEndian.PutUint16(data, uint16(len(data)-2))
		data[3] = dsp
	}
	return dataIn(buf, data, c.AllocationLength)
}

// cachingPage (SBC-3 6.4.5): WCE set on a writable disk, so Linux sends
// SYNCHRONIZE CACHE for its flushes and FUA writes, which reach
// Disk.Flush.
func (u *LogicalUnit) cachingPage(pc uint8) []byte {
	p := make([]byte, modeCachingSize)
	p[0], p[1] = ModePageCaching, modeCachingSize-2
	if pc != pcChangeable && !u.ro {
		p[2] = 0x04 // WCE
	}
	return p
}

// controlPage (SPC-4 7.5.8): D_SENSE 0 (fixed-format sense), queue
// algorithm modifier 1 (unrestricted reordering).
func (u *LogicalUnit) controlPage(pc uint8) []byte {
	p := make([]byte, modeControlSize)
	p[0], p[1] = ModePageControl, modeControlSize-2
	if pc != pcChangeable {
		p[3] = 0x10
	}
	return p
}
