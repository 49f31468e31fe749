package tlfs

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// HV_FLUSH_FLAGS, the Flags input of the virtual-TLB flush hypercalls
// (TLFS "HvCallFlushVirtualAddressSpace", "HvCallFlushVirtualAddressList"
// and their Ex forms). All other bits are reserved and must be zero.
const (
	FlushAllProcessors           = 1 << 0 // HV_FLUSH_ALL_PROCESSORS: ProcessorMask/ProcessorSet ignored
	FlushAllVirtualAddressSpaces = 1 << 1 // HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES: AddressSpace ignored
	FlushNonGlobalMappingsOnly   = 1 << 2 // HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY: the Space forms only
	// FlushUseExtendedRangeFormat is HV_FLUSH_USE_EXTENDED_RANGE_FORMAT,
	// meaningful only where CPUID 0x40000003.EDX bit 14 (extended GVA
	// ranges for flush) is advertised.
	FlushUseExtendedRangeFormat = 1 << 3
)

// HV_GENERIC_SET_FORMAT, the Format of an HV_VP_SET (TLFS "HV_VP_SET").
const (
	GenericSetSparse4K = 0 // a sparse set: ValidBanksMask and one mask per valid bank
	GenericSetAll      = 1 // every VP of the partition
)

// Sizes of the inputs of the hypercalls gohv serves.
const (
	// VPsPerSparseBank is the number of VPs one bank of an HV_VP_SET
	// describes; MaxSparseBanks the number of banks ValidBanksMask can
	// name (HV_MAX_SPARSE_VCPU_BANKS), so a sparse set reaches VP 4095.
	VPsPerSparseBank = 64
	MaxSparseBanks   = 64
	// VPSetFixedSize is HV_VP_SET's Format and ValidBanksMask; the
	// BankContents follow, one 8-byte mask per bit set in ValidBanksMask.
	VPSetFixedSize = 16
	// FlushInputSize is the input of HvCallFlushVirtualAddressSpace and
	// the header of HvCallFlushVirtualAddressList: AddressSpace (0),
	// Flags (8), ProcessorMask (16).
	FlushInputSize = 24
	// FlushExInputFixedSize is the fixed header of the Ex forms:
	// AddressSpace (0), Flags (8), then HV_VP_SET from 16. The bank masks
	// are the call's variable header (TLFS 3, "Variable Sized Hypercall
	// Input Headers"): the control word's variable header size counts
	// them in 8-byte units.
	FlushExInputFixedSize = 16 + VPSetFixedSize
	// GVARangeSize is one element of the flush-list forms' rep list.
	GVARangeSize = 8
	// SignalEventInputSize is HvCallSignalEvent's input: ConnectionId
	// (0), FlagNumber (4), RsvdZ (6).
	SignalEventInputSize = 8
	// NotifyLongSpinWaitInputSize is HvCallNotifyLongSpinWait's input:
	// SpinCount (0, 4 bytes), RsvdZ (4).
	NotifyLongSpinWaitInputSize = 8
)

// ErrVPSetFormat is returned for an HV_VP_SET whose Format is neither
// GenericSetSparse4K nor GenericSetAll.
var ErrVPSetFormat = errors.New("tlfs: processor set format neither sparse nor all")

// GVARange is one element of a flush list (TLFS
// "HvCallFlushVirtualAddressList"): a page-aligned guest virtual address in
// bits 63:12 and, in bits 11:0, the number of pages beyond the first, so
// one element covers 1 to 4096 pages.
type GVARange uint64

// Base is the range's first page address.
func (r GVARange) Base() uint64 { return uint64(r) &^ 0xfff }

// Pages is the number of pages the range covers (1 to 4096).
func (r GVARange) Pages() uint64 { return uint64(r)&0xfff + 1 }

// MakeGVARange encodes a range of pages (1 to 4096) from the page holding
// gva; ok is false when pages is out of that range.
func MakeGVARange(gva, pages uint64) (r GVARange, ok bool) {
	if pages < 1 || pages > 4096 {
		return 0, false
	}
	return GVARange(gva&^0xfff | (pages - 1)), true
}

// VPSet is HV_VP_SET (TLFS "HV_VP_SET"): Format, ValidBanksMask and the
// bank masks. The masks stay in their little-endian wire form:
// BankContents is a view into the input it was parsed from, one 8 bytes
// per bit set in ValidBanksMask, lowest bank first.
type VPSet struct {
	Format         uint64
	ValidBanksMask uint64
	BankContents   []byte
}

// Contains reports whether VP index vp is in the set. A set of format
// GenericSetAll holds every VP.
func (s VPSet) Contains(vp uint32) bool {
	if s.Format == GenericSetAll {
		return true
	}
	bank := vp / VPsPerSparseBank
	if s.Format != GenericSetSparse4K || bank >= MaxSparseBanks || s.ValidBanksMask&(1<<bank) == 0 {
		return false
	}
	i := bits.OnesCount64(s.ValidBanksMask & (1<<bank - 1))
	if 8*i+8 > len(s.BankContents) {
		return false
	}
	return binary.LittleEndian.Uint64(s.BankContents[8*i:])&(1<<(vp%VPsPerSparseBank)) != 0
}

// ParseVPSet decodes an HV_VP_SET at the start of b and returns it with
// its size in bytes (VPSetFixedSize plus 8 per valid bank).
// Guest-controlled: the format is checked and every bank mask the valid
// mask names must be in b; BankContents is a view into b.
func ParseVPSet(b []byte) (VPSet, int, error) {
	if len(b) < VPSetFixedSize {
		return VPSet{}, 0, ErrShortInput
	}
	s := VPSet{Format: binary.LittleEndian.Uint64(b), ValidBanksMask: binary.LittleEndian.Uint64(b[8:])}
	if s.Format != GenericSetSparse4K && s.Format != GenericSetAll {
		return VPSet{}, 0, ErrVPSetFormat
	}
	n := VPSetFixedSize + 8*bits.OnesCount64(s.ValidBanksMask)
	if len(b) < n {
		return VPSet{}, 0, ErrShortInput
	}
	s.BankContents = b[VPSetFixedSize:n]
	return s, n, nil
}

// FlushVirtualAddressInput is the header of the four virtual-TLB flush
// hypercalls, the plain forms' ProcessorMask held as a one-bank sparse
// VPSet so that both forms read alike.
type FlushVirtualAddressInput struct {
	AddressSpace uint64 // HV_ADDRESS_SPACE_ID: a CR3 value
	Flags        uint64 // HV_FLUSH_FLAGS
	Processors   VPSet
}

// Includes reports whether the flush applies to VP index vp: all of them
// under FlushAllProcessors, else those of the processor set.
func (f FlushVirtualAddressInput) Includes(vp uint32) bool {
	return f.Flags&FlushAllProcessors != 0 || f.Processors.Contains(vp)
}

// ParseFlushVirtualAddressInput decodes the input (FlushInputSize bytes)
// of HvCallFlushVirtualAddressSpace and the header of
// HvCallFlushVirtualAddressList. Processors.BankContents is a view into
// in. Flags are not checked: which are valid depends on the call.
func ParseFlushVirtualAddressInput(in []byte) (FlushVirtualAddressInput, error) {
	if len(in) < FlushInputSize {
		return FlushVirtualAddressInput{}, ErrShortInput
	}
	return FlushVirtualAddressInput{
		AddressSpace: binary.LittleEndian.Uint64(in),
		Flags:        binary.LittleEndian.Uint64(in[8:]),
		Processors:   VPSet{Format: GenericSetSparse4K, ValidBanksMask: 1, BankContents: in[16:FlushInputSize]},
	}, nil
}

// ParseFlushVirtualAddressExInput decodes the header of
// HvCallFlushVirtualAddressSpaceEx and HvCallFlushVirtualAddressListEx and
// returns its size: FlushExInputFixedSize plus 8 per valid bank.
// Guest-controlled: see ParseVPSet.
func ParseFlushVirtualAddressExInput(in []byte) (FlushVirtualAddressInput, int, error) {
	if len(in) < FlushExInputFixedSize {
		return FlushVirtualAddressInput{}, 0, ErrShortInput
	}
	set, n, err := ParseVPSet(in[16:])
	if err != nil {
		return FlushVirtualAddressInput{}, 0, err
	}
	return FlushVirtualAddressInput{
		AddressSpace: binary.LittleEndian.Uint64(in),
		Flags:        binary.LittleEndian.Uint64(in[8:]),
		Processors:   set,
	}, 16 + n, nil
}
