package hypercall

import (
	"encoding/binary"
	"errors"

	"gohv/hv/tlfs"
)

// The fake partition: RAM at [0, ramSize) with a hole of one page at
// holeGPA, and an MMIO page at mmioGPA; everything else is outside the
// partition. Every refusal is an error, as hv.GuestMemory's are.
const (
	ramSize  = 0x10000
	holeGPA  = 0x8000
	mmioGPA  = 0xfee0_0000
	inputGPA = 0x2000 // where the tests put their input lists
)

var (
	errNotRAM = errors.New("fake memory: not RAM")
	errMMIO   = errors.New("fake memory: MMIO")
)

type fakeMem struct {
	ram [ramSize]byte
	// reads and readBytes count ReadRAM calls and the bytes they copied.
	reads, readBytes int
	// afterRead, if set, runs after each successful read: another VP
	// writing the input page while the call runs.
	afterRead func(m *fakeMem)
	// failFrom, if not 0, fails the read of that number and all after:
	// the partition's memory map changing under a running call.
	failFrom int
}

func (m *fakeMem) where(gpa uint64, n int) ([]byte, error) {
	end := gpa + uint64(n)
	switch {
	case gpa <= mmioGPA+0xfff && end > mmioGPA:
		return nil, errMMIO
	case end < gpa || end > ramSize:
		return nil, errNotRAM
	case gpa < holeGPA+0x1000 && end > holeGPA:
		return nil, errNotRAM
	}
	return m.ram[gpa:end], nil
}

func (m *fakeMem) ReadRAM(gpa uint64, b []byte) error {
	src, err := m.where(gpa, len(b))
	if err != nil {
		return err
	}
	if m.failFrom != 0 && m.reads+1 >= m.failFrom {
		return errNotRAM
	}
	copy(b, src)
	m.reads++
	m.readBytes += len(b)
	if m.afterRead != nil {
		m.afterRead(m)
	}
	return nil
}

func (m *fakeMem) WriteRAM(gpa uint64, b []byte) error {
	dst, err := m.where(gpa, len(b))
	if err != nil {
		return err
	}
	copy(dst, b)
	return nil
}

func (m *fakeMem) put64(gpa uint64, v ...uint64) {
	for i, x := range v {
		binary.LittleEndian.PutUint64(m.ram[gpa+8*uint64(i):], x)
	}
}

func (m *fakeMem) put32(gpa uint64, v ...uint32) {
	for i, x := range v {
		binary.LittleEndian.PutUint32(m.ram[gpa+4*uint64(i):], x)
	}
}

// recorder implements every handler interface and Allower, answers
// status, and records what it was given in fixed arrays, so that it
// allocates nothing itself.
type recorder struct {
	status  tlfs.Status
	allowed func(code uint16) bool // nil: everything

	calls int
	vp    uint32

	post        tlfs.PostMessageInput
	postPayload [tlfs.MessagePayloadSize]byte
	signal      tlfs.SignalEventInput
	spin        uint32

	spaceCalls, listCalls int
	flush                 tlfs.FlushVirtualAddressInput
	banks                 [tlfs.MaxSparseBanks * 8]byte
	ranges                [4096]tlfs.GVARange
	nranges               int
	maxChunk              int

	ipi      tlfs.SendIPIInput
	ipiBanks [tlfs.MaxSparseBanks * 8]byte
}

func (r *recorder) Allowed(code uint16) bool { return r.allowed == nil || r.allowed(code) }

func (r *recorder) PostMessage(vp uint32, in tlfs.PostMessageInput) tlfs.Status {
	r.calls, r.vp = r.calls+1, vp
	n := copy(r.postPayload[:], in.Payload)
	r.post = in
	r.post.Payload = r.postPayload[:n]
	return r.status
}

func (r *recorder) SignalEvent(vp uint32, in tlfs.SignalEventInput) tlfs.Status {
	r.calls, r.vp, r.signal = r.calls+1, vp, in
	return r.status
}

func (r *recorder) NotifyLongSpinWait(vp uint32, count uint32) tlfs.Status {
	r.calls, r.vp, r.spin = r.calls+1, vp, count
	return r.status
}

func (r *recorder) keepFlush(in tlfs.FlushVirtualAddressInput) {
	n := copy(r.banks[:], in.Processors.BankContents)
	r.flush = in
	r.flush.Processors.BankContents = r.banks[:n]
}

func (r *recorder) FlushVirtualAddressSpace(vp uint32, in tlfs.FlushVirtualAddressInput) tlfs.Status {
	r.calls, r.vp, r.spaceCalls = r.calls+1, vp, r.spaceCalls+1
	r.keepFlush(in)
	return r.status
}

func (r *recorder) FlushVirtualAddressList(vp uint32, in tlfs.FlushVirtualAddressInput, ranges []tlfs.GVARange) tlfs.Status {
	r.calls, r.vp, r.listCalls = r.calls+1, vp, r.listCalls+1
	r.keepFlush(in)
	r.maxChunk = max(r.maxChunk, len(ranges))
	if r.status == tlfs.StatusSuccess {
		r.nranges += copy(r.ranges[r.nranges:], ranges)
	}
	return r.status
}

// signalOnly implements one interface only.
type signalOnly struct{ r *recorder }

func (s signalOnly) SignalEvent(vp uint32, in tlfs.SignalEventInput) tlfs.Status {
	return s.r.SignalEvent(vp, in)
}

// control builds an input value.
func control(code uint16, fast bool, varHdr, count, start uint16) uint64 {
	return tlfs.Control{Code: code, Fast: fast, VarHeaderUnits: varHdr, RepCount: count, RepStart: start}.Encode()
}

// status and reps split a result value.
func status(rax uint64) tlfs.Status { return tlfs.Status(rax) }
func reps(rax uint64) uint16        { return uint16(rax>>32) & 0xfff }

func (r *recorder) SendSyntheticClusterIPI(vp uint32, in tlfs.SendIPIInput) tlfs.Status {
	r.calls, r.vp = r.calls+1, vp
	n := copy(r.ipiBanks[:], in.Processors.BankContents)
	r.ipi = in
	r.ipi.Processors.BankContents = r.ipiBanks[:n] // the input is a view of the caller's buffer
	return r.status
}
