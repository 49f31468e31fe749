package loader

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// The C declarations of arch/x86/include/uapi/asm/bootparam.h (Linux 6.1),
// transcribed field by field; encoding/binary lays them out packed, as the
// C structs are (__attribute__((packed))), so the offsets below are derived
// from the declaration rather than copied from the constants under test.
type cSetupHeader struct {
	SetupSects          uint8
	RootFlags           uint16
	SysSize             uint32
	RAMSize             uint16
	VidMode             uint16
	RootDev             uint16
	BootFlag            uint16
	Jump                uint16
	Header              uint32
	Version             uint16
	RealmodeSwtch       uint32
	StartSysSeg         uint16
	KernelVersion       uint16
	TypeOfLoader        uint8
	LoadFlags           uint8
	SetupMoveSize       uint16
	Code32Start         uint32
	RamdiskImage        uint32
	RamdiskSize         uint32
	BootsectKludge      uint32
	HeapEndPtr          uint16
	ExtLoaderVer        uint8
	ExtLoaderType       uint8
	CmdLinePtr          uint32
	InitrdAddrMax       uint32
	KernelAlignment     uint32
	RelocatableKernel   uint8
	MinAlignment        uint8
	XLoadFlags          uint16
	CmdlineSize         uint32
	HardwareSubarch     uint32
	HardwareSubarchData uint64
	PayloadOffset       uint32
	PayloadLength       uint32
	SetupData           uint64
	PrefAddress         uint64
	InitSize            uint32
	HandoverOffset      uint32
	KernelInfoOffset    uint32
}

type cBootParams struct {
	ScreenInfo          [0x40]byte // struct screen_info
	APMBIOSInfo         [0x14]byte // struct apm_bios_info
	Pad2                [4]byte
	TbootAddr           uint64
	ISTInfo             [0x10]byte // struct ist_info
	ACPIRSDPAddr        uint64
	Pad3                [8]byte
	HD0Info             [16]byte
	HD1Info             [16]byte
	SysDescTable        [0x10]byte // struct sys_desc_table
	OLPCOFWHeader       [0x10]byte // struct olpc_ofw_header
	ExtRamdiskImage     uint32
	ExtRamdiskSize      uint32
	ExtCmdLinePtr       uint32
	Pad4                [112]byte
	CCBlobAddress       uint32
	EDIDInfo            [0x80]byte // struct edid_info
	EFIInfo             [0x20]byte // struct efi_info
	AltMemK             uint32
	Scratch             uint32
	E820Entries         uint8
	EDDBufEntries       uint8
	EDDMBRSigBufEntries uint8
	KbdStatus           uint8
	SecureBoot          uint8
	Pad5                [2]byte
	Sentinel            uint8
	Pad6                [1]byte
	Hdr                 cSetupHeader
	Pad7                [0x290 - 0x1f1 - 0x7b]byte // 0x7b = sizeof(struct setup_header), checked below
	EDDMBRSigBuffer     [16]uint32
	E820Table           [128]cE820Entry
	Pad8                [48]byte
	EDDBuf              [6][82]byte // struct edd_info
	Pad9                [276]byte
}

type cE820Entry struct {
	Addr, Size uint64
	Type       uint32
}

// offsetOf is the packed offset of a field path ("Hdr.InitSize").
func offsetOf(t *testing.T, v any, path ...string) int {
	t.Helper()
	typ := reflect.TypeOf(v)
	off := 0
	for _, name := range path {
		found := false
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if f.Name == name {
				typ, found = f.Type, true
				break
			}
			off += binary.Size(reflect.Zero(f.Type).Interface())
		}
		if !found {
			t.Fatalf("no field %s", name)
		}
	}
	return off
}

// TestBootParamsOffsets pins every boot_params and setup_header offset the
// loader uses to the C declaration (and so to zero-page.rst and boot.rst).
func TestBootParamsOffsets(t *testing.T) {
	if n := binary.Size(cSetupHeader{}); n != 0x7b {
		t.Fatalf("sizeof(struct setup_header) = %#x, want 0x7b (0x1f1..0x26c)", n)
	}
	if n := binary.Size(cBootParams{}); n != bootParamsSize {
		t.Fatalf("sizeof(struct boot_params) = %#x", n)
	}
	if n := binary.Size(cE820Entry{}); n != e820EntrySize {
		t.Fatalf("sizeof(struct boot_e820_entry) = %d", n)
	}
	var bp cBootParams
	for _, c := range []struct {
		got  int
		path []string
	}{
		{bpACPIRSDPAddr, []string{"ACPIRSDPAddr"}},
		{bpExtRamdiskImage, []string{"ExtRamdiskImage"}},
		{bpExtRamdiskSize, []string{"ExtRamdiskSize"}},
		{bpExtCmdLinePtr, []string{"ExtCmdLinePtr"}},
		{bpE820Entries, []string{"E820Entries"}},
		{bpSentinel, []string{"Sentinel"}},
		{bpHdr, []string{"Hdr"}},
		{bpHdrAreaEnd, []string{"EDDMBRSigBuffer"}},
		{bpE820Table, []string{"E820Table"}},
		{hdrSetupSects, []string{"Hdr", "SetupSects"}},
		{hdrSysSize, []string{"Hdr", "SysSize"}},
		{hdrBootFlag, []string{"Hdr", "BootFlag"}},
		{hdrJump, []string{"Hdr", "Jump"}},
		{hdrHeader, []string{"Hdr", "Header"}},
		{hdrVersion, []string{"Hdr", "Version"}},
		{hdrKernelVersion, []string{"Hdr", "KernelVersion"}},
		{hdrTypeOfLoader, []string{"Hdr", "TypeOfLoader"}},
		{hdrLoadFlags, []string{"Hdr", "LoadFlags"}},
		{hdrRamdiskImage, []string{"Hdr", "RamdiskImage"}},
		{hdrRamdiskSize, []string{"Hdr", "RamdiskSize"}},
		{hdrCmdLinePtr, []string{"Hdr", "CmdLinePtr"}},
		{hdrInitrdAddrMax, []string{"Hdr", "InitrdAddrMax"}},
		{hdrKernelAlignment, []string{"Hdr", "KernelAlignment"}},
		{hdrRelocatableKernel, []string{"Hdr", "RelocatableKernel"}},
		{hdrMinAlignment, []string{"Hdr", "MinAlignment"}},
		{hdrXLoadFlags, []string{"Hdr", "XLoadFlags"}},
		{hdrCmdlineSize, []string{"Hdr", "CmdlineSize"}},
		{hdrHardwareSubarch, []string{"Hdr", "HardwareSubarch"}},
		{hdrHardwareSubarchData, []string{"Hdr", "HardwareSubarchData"}},
		{hdrSetupData, []string{"Hdr", "SetupData"}},
		{hdrPrefAddress, []string{"Hdr", "PrefAddress"}},
		{hdrInitSize, []string{"Hdr", "InitSize"}},
		{hdrInitSizeEnd, []string{"Hdr", "HandoverOffset"}},
	} {
		if want := offsetOf(t, bp, c.path...); c.got != want {
			t.Errorf("%v at %#x, the C declaration puts it at %#x", c.path, c.got, want)
		}
	}
	// The offsets the brief and zero-page.rst give, literally.
	for _, c := range []struct{ got, want int }{
		{bpE820Entries, 0x1e8}, {bpE820Table, 0x2d0}, {bpACPIRSDPAddr, 0x070},
		{bpExtRamdiskImage, 0x0c0}, {bpExtRamdiskSize, 0x0c4}, {bpExtCmdLinePtr, 0x0c8}, {bpHdr, 0x1f1},
	} {
		if c.got != c.want {
			t.Errorf("offset %#x, want %#x", c.got, c.want)
		}
	}
	if bpE820Table+E820MaxEntries*e820EntrySize > bootParamsSize {
		t.Error("e820_table overflows boot_params")
	}
}
