package tlfs

import "encoding/binary"

// Synthetic IPIs (TLFS "HvCallSendSyntheticClusterIpi" and
// "HvCallSendSyntheticClusterIpiEx"): a fixed interrupt of one vector to
// a set of the partition's VPs in one hypercall.
const (
	// SendIPIInputSize is HvCallSendSyntheticClusterIpi's input: Vector
	// (0, 4 bytes), TargetVtl (4), RsvdZ (5-7), ProcessorMask (8). Its
	// fast form passes the first 8 bytes in RDX and the mask in R8.
	SendIPIInputSize = 16
	// SendIPIExInputFixedSize is the Ex form's fixed header: Vector (0),
	// TargetVtl (4), RsvdZ (5-7), then HV_VP_SET from 8, whose bank masks
	// are the call's variable header.
	SendIPIExInputFixedSize = 8 + VPSetFixedSize
	// IPIVectorMin and IPIVectorMax bound the vector (Linux's
	// HV_IPI_LOW_VECTOR and HV_IPI_HIGH_VECTOR): below 16 are the
	// exceptions.
	IPIVectorMin = 0x10
	IPIVectorMax = 0xff
)

// SendIPIInput is the input of both synthetic-IPI calls, the plain form's
// ProcessorMask held as a one-bank sparse VPSet, as FlushVirtualAddressInput
// does.
type SendIPIInput struct {
	Vector uint32
	// TargetVTL and Reserved must be zero: gohv partitions have one VTL.
	TargetVTL  uint8
	Reserved   [3]byte
	Processors VPSet
}

// Valid reports whether the vector is one a synthetic IPI may carry and
// the VTL and reserved bytes are zero.
func (in SendIPIInput) Valid() bool {
	return in.Vector >= IPIVectorMin && in.Vector <= IPIVectorMax && in.TargetVTL == 0 && in.Reserved == [3]byte{}
}

func parseIPIHeader(in []byte) SendIPIInput {
	return SendIPIInput{Vector: binary.LittleEndian.Uint32(in), TargetVTL: in[4], Reserved: [3]byte(in[5:8])}
}

// ParseSendIPIInput decodes HvCallSendSyntheticClusterIpi's input
// (SendIPIInputSize bytes). Processors.BankContents is a view into in.
func ParseSendIPIInput(in []byte) (SendIPIInput, error) {
	if len(in) < SendIPIInputSize {
		return SendIPIInput{}, ErrShortInput
	}
	s := parseIPIHeader(in)
	s.Processors = VPSet{Format: GenericSetSparse4K, ValidBanksMask: 1, BankContents: in[8:SendIPIInputSize]}
	return s, nil
}

// ParseSendIPIExInput decodes HvCallSendSyntheticClusterIpiEx's input and
// returns its size: SendIPIExInputFixedSize plus 8 per valid bank.
// Guest-controlled: see ParseVPSet.
func ParseSendIPIExInput(in []byte) (SendIPIInput, int, error) {
	if len(in) < SendIPIExInputFixedSize {
		return SendIPIInput{}, 0, ErrShortInput
	}
	set, n, err := ParseVPSet(in[8:])
	if err != nil {
		return SendIPIInput{}, 0, err
	}
	s := parseIPIHeader(in)
	s.Processors = set
	return s, 8 + n, nil
}
