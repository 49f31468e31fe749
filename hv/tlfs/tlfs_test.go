package tlfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestNumbersMatchTheTLFS pins each number to the value the TLFS (and the
// Linux and OpenVMM definitions that follow it) gives, written out again
// here on purpose.
func TestNumbersMatchTheTLFS(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"CPUID max/vendor leaf", CPUIDVendorAndMaxFunction, 0x40000000},
		{"CPUID features leaf", CPUIDFeatures, 0x40000003},
		{"CPUID implementation limits", CPUIDImplementationLimits, 0x40000005},
		{`"Hv#1"`, InterfaceSignature, 0x31237648},
		{"AccessPartitionReferenceCounter", AccessPartitionReferenceCounter, 2},
		{"AccessSynicRegs", AccessSynicRegs, 4},
		{"AccessHypercallMsrs", AccessHypercallMsrs, 0x20},
		{"AccessVpIndex", AccessVpIndex, 0x40},
		{"AccessPartitionReferenceTsc", AccessPartitionReferenceTsc, 0x200},
		{"AccessFrequencyRegs", AccessFrequencyRegs, 0x800},
		{"PostMessages", PostMessages, 0x10},
		{"SignalEvents", SignalEvents, 0x20},
		{"CpuManagement", CpuManagement, 0x1000},
		{"FrequencyRegsAvailable", FeatureFrequencyRegs, 0x100},
		{"GuestCrashRegsAvailable", FeatureGuestCrashRegs, 0x400},
		{"DirectSyntheticTimers", FeatureDirectSyntheticTimers, 0x80000},
		{"DeprecateAutoEoi", RecommendDeprecateAutoEoi, 0x200},
		{"HV_X64_MSR_GUEST_OS_ID", MsrGuestOSID, 0x40000000},
		{"HV_X64_MSR_HYPERCALL", MsrHypercall, 0x40000001},
		{"HV_X64_MSR_VP_INDEX", MsrVPIndex, 0x40000002},
		{"HV_X64_MSR_TIME_REF_COUNT", MsrTimeRefCount, 0x40000020},
		{"HV_X64_MSR_REFERENCE_TSC", MsrReferenceTSC, 0x40000021},
		{"HV_X64_MSR_APIC_FREQUENCY", MsrAPICFrequency, 0x40000023},
		{"HV_X64_MSR_VP_ASSIST_PAGE", MsrVPAssistPage, 0x40000073},
		{"HV_X64_MSR_SCONTROL", MsrSControl, 0x40000080},
		{"HV_X64_MSR_SIMP", MsrSIMP, 0x40000083},
		{"HV_X64_MSR_EOM", MsrEOM, 0x40000084},
		{"HV_X64_MSR_SINT2", MsrSINT0 + 2, 0x40000092},
		{"HV_X64_MSR_SINT15", MsrSINT15, 0x4000009f},
		{"HV_X64_MSR_STIMER0_CONFIG", MsrSTimer0Config, 0x400000b0},
		{"HV_X64_MSR_STIMER3_COUNT", MsrSTimer3Count, 0x400000b7},
		{"HV_X64_MSR_CRASH_P0", MsrCrashP0, 0x40000100},
		{"HV_X64_MSR_CRASH_CTL", MsrCrashCtl, 0x40000105},
		{"HV_X64_MSR_TSC_INVARIANT_CONTROL", MsrTSCInvariantControl, 0x40000118},
		{"SINT masked", SINTMasked, 0x10000},
		{"SINT auto-EOI", SINTAutoEOI, 0x20000},
		{"STIMER direct mode", STimerDirectMode, 0x1000},
		{"CRASH_CTL notify", CrashNotify, 1 << 63},
		{"HvCallFlushVirtualAddressSpace", HvCallFlushVirtualAddressSpace, 0x2},
		{"HvCallNotifyLongSpinWait", HvCallNotifyLongSpinWait, 0x8},
		{"HvCallPostMessage", HvCallPostMessage, 0x5c},
		{"HvCallSignalEvent", HvCallSignalEvent, 0x5d},
		{"HvCallSendSyntheticClusterIpiEx", HvCallSendSyntheticClusterIpiEx, 0x15},
		{"HV_STATUS_INVALID_ALIGNMENT", uint64(StatusInvalidAlignment), 4},
		{"HV_STATUS_INVALID_PORT_ID", uint64(StatusInvalidPortID), 0x11},
		{"HV_STATUS_INVALID_CONNECTION_ID", uint64(StatusInvalidConnectionID), 0x12},
		{"HV_STATUS_INSUFFICIENT_BUFFERS", uint64(StatusInsufficientBuffers), 0x13},
		{"HvMessageTimerExpired", uint64(MessageTypeTimerExpired), 0x80000010},
		{"HV_MESSAGE size", MessageSize, 256},
		{"HV_MESSAGE payload", MessagePayloadSize, 240},
		{"HvCallPostMessage input", PostMessageInputSize, 256},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the TLFS says %#x", c.name, c.got, c.want)
		}
	}
	if VendorSignature != "Microsoft Hv" || len(VendorSignature) != 12 {
		t.Error("vendor signature")
	}
}

// TestControlWord decodes the input values Linux builds (fast
// HvCallSignalEvent, slow HvCallPostMessage, a rep call) and refuses
// reserved bits (TLFS 3.7).
func TestControlWord(t *testing.T) {
	if c := DecodeControl(0x1_005d); c.Code != HvCallSignalEvent || !c.Fast || c.Reserved != 0 {
		t.Errorf("fast signal: %+v", c)
	}
	c := DecodeControl(0x0123_0005_0006_0003)
	if c.Code != 3 || c.Fast || c.VarHeaderUnits != 3 || c.RepCount != 5 || c.RepStart != 0x123 || c.Reserved != 0 {
		t.Errorf("rep call: %+v", c)
	}
	if c.Encode() != 0x0123_0005_0006_0003 {
		t.Errorf("encode %#x", c.Encode())
	}
	for _, bad := range []uint64{1 << 27, 1 << 31, 1 << 44, 1 << 63} {
		if DecodeControl(bad|0x5c).Reserved == 0 {
			t.Errorf("reserved bit %#x not reported", bad)
		}
	}
	if r := Result(StatusInvalidParameter, 7); r != 0x7_0000_0005 {
		t.Errorf("result %#x", r)
	}
	if StatusInvalidConnectionID.String() != "HV_STATUS_INVALID_CONNECTION_ID" || Status(0x77).String() != "HV_STATUS_0x0077" {
		t.Error(StatusInvalidConnectionID, Status(0x77))
	}
}

func TestPostMessageInput(t *testing.T) {
	in := make([]byte, PostMessageInputSize)
	m := PostMessageInput{ConnectionID: 1, Type: 1, Payload: []byte("hello")}
	if err := PutPostMessageInput(in, m); err != nil {
		t.Fatal(err)
	}
	// As a guest lays it out: offsets 0, 8, 12, 16.
	if binary.LittleEndian.Uint32(in[0:]) != 1 || binary.LittleEndian.Uint32(in[8:]) != 1 ||
		binary.LittleEndian.Uint32(in[12:]) != 5 || string(in[16:21]) != "hello" {
		t.Fatalf("% x", in[:24])
	}
	got, err := ParsePostMessageInput(in)
	if err != nil || got.ConnectionID != 1 || got.Type != 1 || string(got.Payload) != "hello" {
		t.Fatalf("%+v %v", got, err)
	}
	for _, c := range []struct {
		name string
		edit func(b []byte)
		want error
	}{
		{"connection id bits 31:24", func(b []byte) { b[3] = 1 }, ErrReservedBits},
		{"reserved dword", func(b []byte) { b[4] = 1 }, ErrReservedBits},
		{"payload size 241", func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 241) }, ErrPayloadSize},
		{"type 0", func(b []byte) { binary.LittleEndian.PutUint32(b[8:], 0) }, ErrMessageType},
		{"hypervisor's type", func(b []byte) { binary.LittleEndian.PutUint32(b[8:], 0x80000010) }, ErrMessageType},
	} {
		b := bytes.Clone(in)
		c.edit(b)
		if _, err := ParsePostMessageInput(b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ParsePostMessageInput(in[:100]); !errors.Is(err, ErrShortInput) {
		t.Error("short input accepted")
	}
}

func TestSignalEventInput(t *testing.T) {
	s, err := ParseSignalEventInput(0x0000_0003_0000_2001)
	if err != nil || s.ConnectionID != 0x2001 || s.FlagNumber != 3 || s.Encode() != 0x0000_0003_0000_2001 {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []uint64{1 << 24, 1 << 48, 1 << 63} {
		if _, err := ParseSignalEventInput(bad); !errors.Is(err, ErrReservedBits) {
			t.Errorf("%#x: %v", bad, err)
		}
	}
}

func TestMessageSlot(t *testing.T) {
	slot := bytes.Repeat([]byte{0xee}, MessageSize)
	h := MessageHeader{Type: MessageTypeTimerExpired, PayloadSize: TimerMessagePayloadSize, Origin: 7}
	var p [TimerMessagePayloadSize]byte
	TimerMessagePayload{TimerIndex: 2, ExpirationTime: 100, DeliveryTime: 105}.Put(p[:])
	if err := PutMessage(slot, h, p[:]); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(slot) != 0x80000010 || slot[4] != 24 || slot[5] != 0 || binary.LittleEndian.Uint64(slot[8:]) != 7 {
		t.Fatalf("header % x", slot[:16])
	}
	for _, b := range slot[16+24:] {
		if b != 0 {
			t.Fatal("payload tail not cleared")
		}
	}
	gh, payload, err := ParseMessage(slot)
	if err != nil || gh != h {
		t.Fatalf("%+v %v", gh, err)
	}
	tp, err := ParseTimerMessagePayload(payload)
	if err != nil || tp.TimerIndex != 2 || tp.ExpirationTime != 100 || tp.DeliveryTime != 105 {
		t.Fatalf("%+v %v", tp, err)
	}
	slot[4] = 241
	if _, _, err := ParseMessage(slot); err == nil {
		t.Fatal("payload size 241 accepted")
	}
	if err := PutMessage(slot, MessageHeader{PayloadSize: 3}, []byte{1, 2}); err == nil {
		t.Fatal("size field disagreeing with the payload accepted")
	}
}

// TestReferenceTSC: the page's arithmetic counts 100 ns for TSCs of
// various rates, to within one tick over an hour.
func TestReferenceTSC(t *testing.T) {
	for _, hz := range []uint64{1_000_000_000, 2_599_000_000, 3_500_000_000, 100_000_000} {
		scale := RefTSCScale(hz)
		hour := hz * 3600
		got := RefTime(hour, scale, 0)
		want := uint64(3600 * ReferenceHz)
		if got > want || want-got > 1 {
			t.Errorf("%d Hz: one hour reads %d ticks, want %d", hz, got, want)
		}
		if RefTime(hour, scale, -5) != got-5 {
			t.Errorf("%d Hz: offset not applied", hz)
		}
	}
	page := make([]byte, 4096)
	PutRefTSCPage(page, 3, 0x1234, -2)
	if binary.LittleEndian.Uint32(page) != 3 || binary.LittleEndian.Uint64(page[8:]) != 0x1234 || int64(binary.LittleEndian.Uint64(page[16:])) != -2 {
		t.Fatalf("% x", page[:24])
	}
}

func FuzzParsePostMessageInput(f *testing.F) {
	in := make([]byte, PostMessageInputSize)
	PutPostMessageInput(in, PostMessageInput{ConnectionID: 1, Type: 1, Payload: []byte("x")})
	f.Add(in)
	f.Add(make([]byte, 10))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParsePostMessageInput(b)
		if err != nil {
			return
		}
		if len(m.Payload) > MessagePayloadSize || m.ConnectionID&^ConnectionIDMask != 0 || m.Type == 0 || m.Type&MessageTypeHypervisorMask != 0 {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func FuzzParseMessage(f *testing.F) {
	f.Add(make([]byte, MessageSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := ParseMessage(b)
		if err == nil && (len(p) != int(h.PayloadSize) || len(p) > MessagePayloadSize) {
			t.Fatalf("%+v, %d bytes", h, len(p))
		}
	})
}
