package scsi

import (
	"errors"
	"fmt"
)

// Status is a SAM status byte (SAM-5 5.3).
type Status uint8

// The statuses a LogicalUnit returns (GOOD and CHECK CONDITION) and the
// others an initiator may see.
const (
	StatusGood                Status = 0x00
	StatusCheckCondition      Status = 0x02
	StatusConditionMet        Status = 0x04
	StatusBusy                Status = 0x08
	StatusReservationConflict Status = 0x18
	StatusTaskSetFull         Status = 0x28
	StatusACAActive           Status = 0x30
	StatusTaskAborted         Status = 0x40
)

func (s Status) String() string {
	switch s {
	case StatusGood:
		return "GOOD"
	case StatusCheckCondition:
		return "CHECK CONDITION"
	case StatusBusy:
		return "BUSY"
	}
	return fmt.Sprintf("STATUS_%#02x", uint8(s))
}

// SenseKey is a sense key (SPC-4 4.5.6, table 27).
type SenseKey uint8

// Sense keys.
const (
	KeyNoSense        SenseKey = 0x0
	KeyRecoveredError SenseKey = 0x1
	KeyNotReady       SenseKey = 0x2
	KeyMediumError    SenseKey = 0x3
	KeyHardwareError  SenseKey = 0x4
	KeyIllegalRequest SenseKey = 0x5
	KeyUnitAttention  SenseKey = 0x6
	KeyDataProtect    SenseKey = 0x7
	KeyAbortedCommand SenseKey = 0xB
)

var keyNames = map[SenseKey]string{
	KeyNoSense: "NO SENSE", KeyRecoveredError: "RECOVERED ERROR", KeyNotReady: "NOT READY",
	KeyMediumError: "MEDIUM ERROR", KeyHardwareError: "HARDWARE ERROR", KeyIllegalRequest: "ILLEGAL REQUEST",
	KeyUnitAttention: "UNIT ATTENTION", KeyDataProtect: "DATA PROTECT", KeyAbortedCommand: "ABORTED COMMAND",
}

func (k SenseKey) String() string {
	if n, ok := keyNames[k]; ok {
		return n
	}
	return fmt.Sprintf("KEY_%#x", uint8(k))
}

// AdditionalSense is an additional sense code and qualifier, ASC<<8 | ASCQ
// (SPC-4 4.5.6, table 28).
type AdditionalSense uint16

// The additional sense codes gohv reports.
const (
	ASCNone                         AdditionalSense = 0x0000
	ASCWriteError                   AdditionalSense = 0x0C00
	ASCUnrecoveredReadError         AdditionalSense = 0x1100
	ASCParameterListLengthError     AdditionalSense = 0x1A00
	ASCInvalidCommandOperationCode  AdditionalSense = 0x2000
	ASCLBAOutOfRange                AdditionalSense = 0x2100
	ASCInvalidFieldInCDB            AdditionalSense = 0x2400
	ASCLogicalUnitNotSupported      AdditionalSense = 0x2500
	ASCInvalidFieldInParameterList  AdditionalSense = 0x2600
	ASCWriteProtected               AdditionalSense = 0x2700
	ASCSavingParametersNotSupported AdditionalSense = 0x3900
)

var ascNames = map[AdditionalSense]string{
	ASCNone: "NO ADDITIONAL SENSE INFORMATION", ASCWriteError: "WRITE ERROR",
	ASCUnrecoveredReadError: "UNRECOVERED READ ERROR", ASCParameterListLengthError: "PARAMETER LIST LENGTH ERROR",
	ASCInvalidCommandOperationCode: "INVALID COMMAND OPERATION CODE", ASCLBAOutOfRange: "LOGICAL BLOCK ADDRESS OUT OF RANGE",
	ASCInvalidFieldInCDB: "INVALID FIELD IN CDB", ASCLogicalUnitNotSupported: "LOGICAL UNIT NOT SUPPORTED",
	ASCInvalidFieldInParameterList: "INVALID FIELD IN PARAMETER LIST", ASCWriteProtected: "WRITE PROTECTED",
	ASCSavingParametersNotSupported: "SAVING PARAMETERS NOT SUPPORTED",
}

// ASC is the additional sense code.
func (a AdditionalSense) ASC() uint8 { return uint8(a >> 8) }

// ASCQ is the additional sense code qualifier.
func (a AdditionalSense) ASCQ() uint8 { return uint8(a) }

func (a AdditionalSense) String() string {
	if n, ok := ascNames[a]; ok {
		return n
	}
	return fmt.Sprintf("ASC %#02x/%#02x", a.ASC(), a.ASCQ())
}

// Sense is the sense data of one CHECK CONDITION: a key and an additional
// sense code, current (not deferred), without an information field.
type Sense struct {
	Key  SenseKey
	Code AdditionalSense
}

func (s Sense) String() string {
	return fmt.Sprintf("%v/%v (%02x/%02x/%02x)", s.Key, s.Code, uint8(s.Key), s.Code.ASC(), s.Code.ASCQ())
}

// Sizes of the two sense-data formats as gohv builds them.
const (
	FixedSenseSize      = 18 // SPC-4 4.5.3: 8 + additional sense length 10
	DescriptorSenseSize = 8  // SPC-4 4.5.2: the header, no descriptors
)

// Response codes of sense data (byte 0, bits 6:0).
const (
	ResponseFixedCurrent      = 0x70
	ResponseDescriptorCurrent = 0x72
)

// Fixed is the sense in fixed format (response code 0x70, VALID 0), the
// format of every autosense gohv returns (the control mode page's D_SENSE
// is 0 and not changeable).
func (s Sense) Fixed() [FixedSenseSize]byte {
	var b [FixedSenseSize]byte
	b[0] = ResponseFixedCurrent
	b[2] = byte(s.Key) & 0x0F
	b[7] = FixedSenseSize - 8
	b[12] = s.Code.ASC()
	b[13] = s.Code.ASCQ()
	return b
}

// Descriptor is the sense in descriptor format (response code 0x72) with
// no sense data descriptors: REQUEST SENSE's answer when its DESC bit is
// set.
func (s Sense) Descriptor() [DescriptorSenseSize]byte {
	var b [DescriptorSenseSize]byte
	b[0] = ResponseDescriptorCurrent
	b[1] = byte(s.Key) & 0x0F
	b[2] = s.Code.ASC()
	b[3] = s.Code.ASCQ()
	return b
}

// ErrSense is wrapped by ParseSense's errors.
var ErrSense = errors.New("scsi: not sense data")

// ParseSense reads the key and additional sense code from sense data in
// either format (an initiator's view; the tests use it).
func ParseSense(b []byte) (Sense, error) {
	if len(b) < 1 {
		return Sense{}, fmt.Errorf("empty: %w", ErrSense)
	}
	switch b[0] & 0x7F {
	case 0x70, 0x71:
		if len(b) < 14 {
			return Sense{}, fmt.Errorf("fixed format in %d bytes: %w", len(b), ErrSense)
		}
		return Sense{Key: SenseKey(b[2] & 0x0F), Code: AdditionalSense(b[12])<<8 | AdditionalSense(b[13])}, nil
	case 0x72, 0x73:
		if len(b) < 4 {
			return Sense{}, fmt.Errorf("descriptor format in %d bytes: %w", len(b), ErrSense)
		}
		return Sense{Key: SenseKey(b[1] & 0x0F), Code: AdditionalSense(b[2])<<8 | AdditionalSense(b[3])}, nil
	}
	return Sense{}, fmt.Errorf("response code %#02x: %w", b[0]&0x7F, ErrSense)
}
