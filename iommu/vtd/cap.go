package vtd

import "fmt"

// Cap is CAP_REG decoded (VT-d 10.4.2): the fields gohv uses.
type Cap struct {
	Raw      uint64
	Domains  uint32 // ND (bits 2:0): 2^(4+2*ND) domain IDs
	RWBF     bool   // Required Write-Buffer Flushing (bit 4)
	CM       bool   // Caching Mode (bit 7): not-present entries may be cached
	SAGAW    uint8  // Supported Adjusted Guest Address Widths (bits 12:8)
	MGAW     uint8  // Maximum Guest Address Width (bits 21:16, plus one)
	FROffset uint32 // Fault-recording Register Offset (bits 33:24) times 16, in bytes
	PSI      bool   // Page Selective Invalidation (bit 39)
	NFR      int    // Number of Fault-recording Registers (bits 47:40, plus one)
}

// Cap fields' positions (10.4.2).
const (
	capNDMask     = 0x7
	capRWBF       = 1 << 4
	capCM         = 1 << 7
	capSAGAWShift = 8
	capSAGAWMask  = 0x1f
	capMGAWShift  = 16
	capMGAWMask   = 0x3f
	capFROShift   = 24
	capFROMask    = 0x3ff
	capPSI        = 1 << 39
	capNFRShift   = 40
	capNFRMask    = 0xff
)

// DecodeCap decodes a CAP_REG value.
func DecodeCap(v uint64) Cap {
	return Cap{
		Raw:      v,
		Domains:  1 << (4 + 2*(v&capNDMask)),
		RWBF:     v&capRWBF != 0,
		CM:       v&capCM != 0,
		SAGAW:    uint8(v >> capSAGAWShift & capSAGAWMask),
		MGAW:     uint8(v>>capMGAWShift&capMGAWMask) + 1,
		FROffset: uint32(v>>capFROShift&capFROMask) * frcdSize,
		PSI:      v&capPSI != 0,
		NFR:      int(v>>capNFRShift&capNFRMask) + 1,
	}
}

// ECap is ECAP_REG decoded (VT-d 10.4.3): the fields gohv uses.
type ECap struct {
	Raw       uint64
	C         bool   // Page-walk Coherency (bit 0): the unit snoops the CPU's caches
	QI        bool   // Queued Invalidation support (bit 1)
	DT        bool   // Device-TLB support (bit 2)
	IR        bool   // Interrupt Remapping support (bit 3)
	EIM       bool   // Extended Interrupt Mode (bit 4)
	PT        bool   // Pass Through (bit 6)
	SC        bool   // Snoop Control (bit 7)
	IROOffset uint32 // IOTLB Register Offset (bits 17:8) times 16, in bytes
	SMTS      bool   // Scalable Mode Translation Support (bit 43)
}

// ECap fields' positions (10.4.3).
const (
	ecapC        = 1 << 0
	ecapQI       = 1 << 1
	ecapDT       = 1 << 2
	ecapIR       = 1 << 3
	ecapEIM      = 1 << 4
	ecapPT       = 1 << 6
	ecapSC       = 1 << 7
	ecapIROShift = 8
	ecapIROMask  = 0x3ff
	ecapSMTS     = 1 << 43
)

// DecodeECap decodes an ECAP_REG value.
func DecodeECap(v uint64) ECap {
	return ECap{
		Raw:       v,
		C:         v&ecapC != 0,
		QI:        v&ecapQI != 0,
		DT:        v&ecapDT != 0,
		IR:        v&ecapIR != 0,
		EIM:       v&ecapEIM != 0,
		PT:        v&ecapPT != 0,
		SC:        v&ecapSC != 0,
		IROOffset: uint32(v>>ecapIROShift&ecapIROMask) * 16,
		SMTS:      v&ecapSMTS != 0,
	}
}

// String is a short summary for the boot log.
func (c Cap) String() string {
	return fmt.Sprintf("mgaw %d sagaw %#x %d domains %d fault records at %#x rwbf=%v cm=%v",
		c.MGAW, c.SAGAW, c.Domains, c.NFR, c.FROffset, c.RWBF, c.CM)
}

// String is a short summary for the boot log.
func (e ECap) String() string {
	return fmt.Sprintf("iotlb at %#x qi=%v ir=%v pt=%v sc=%v smts=%v", e.IROOffset, e.QI, e.IR, e.PT, e.SC, e.SMTS)
}

// Extent is the size of the register file CAP_REG and ECAP_REG describe,
// in whole 4 KiB pages: at least one page, and far enough to hold the
// fault recording registers and the IOTLB registers wherever the unit
// puts them.
func Extent(c Cap, e ECap) uint64 {
	end := max(uint64(c.FROffset)+uint64(c.NFR)*frcdSize, uint64(e.IROOffset)+16, 1)
	return (end + 0xfff) &^ 0xfff
}
