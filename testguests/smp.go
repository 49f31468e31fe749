package testguests

import (
	"encoding/binary"
	"fmt"

	"gohv/hv"
	"gohv/x86"
)

// The hostile SMP guest (smp_amd64.s) runs in a partition of two VPs and
// does to its own processors what issue 14 lists: INIT to its BSP from
// itself and from the AP, INIT and SIPI to APIC IDs no VP has, IPI storms
// from the AP at the BSP, and (mode 1) a SIPI whose page is MMIO or no
// memory at all. Both VPs share the APIC guests' environment (LoadAPIC)
// and data page; the AP and a BSP that an INIT restarted come back to
// long mode through a 16-bit trampoline at SMPTrampoline, which is also
// the start-up page (SIPI vector SMPTrampoline>>12). A BSP's INIT sends
// it to the reset vector, so the partition needs RAM at 0xfffff000 for
// the code LoadSMPHostile puts there (ResetVectorPage).

// Guest-physical layout the SMP guest adds to LoadAPIC's.
const (
	// SMPTrampoline is the start-up page: 16-bit code that loads Load's
	// GDT, IDT and page tables and jumps to the 64-bit entry.
	SMPTrampoline = 0xe000
	// SMPVector is the SIPI vector of SMPTrampoline.
	SMPVector = SMPTrampoline >> 12
	// ResetVectorPage is the page of the reset vector (0xfffffff0).
	ResetVectorPage = 0xffff_f000

	smpGDTR   = SMPTrampoline + 0x80 // the trampoline's LGDT operand
	smpIDTR   = SMPTrampoline + 0x88 // its LIDT operand
	smpResets = SMPTrampoline + 0xf0 // u16: passes through the reset vector
	smpEntry  = SMPTrampoline + 0x100
	smpAPCode = CodeBase + 0x10000
	// VP n's stack top is StackTop - n<<smpStackShift (apicSMPEntry).
	smpStackShift = 14

	// The SMP area of the data page, after the results.
	smpEntries = 0x900 // u64 per APIC ID 0-7: arrivals at the 64-bit entry
	smpCmd     = 0x940 // u64: the BSP's command to the AP
	smpAck     = 0x948 // u64: the last command the AP finished
	smpSent    = 0x950 // u64: IPIs the AP's last storm sent
	smpHeart   = 0x958 // u64: the AP's idle loop's iterations
	smpAPStep  = 0x960 // u64: 1 once the AP runs its program
	smpGo      = 0x968 // u64: the root's go for the baseline and the storms

	smpStormVector = 0x50
	smpMaxAbsent   = 8

	// Mode SMPPingFlush's parameters (D_PARAMS slots past the absent
	// IDs), its flush rounds' area after the SMP area, its vectors, and
	// the page tables of its test address: PDPT[4] of Load's tables
	// (PML4Base+0x1000 + 4*8) -> smpTVPD -> smpTVPT -> smpTVA or smpTVB.
	smpParamRounds  = apicParams + 8*(5+smpMaxAbsent)
	smpParamFlushes = smpParamRounds + 8
	smpFCmd         = 0x970 // u64: the flush round the AP is to answer
	smpFSeen        = 0x978 // u64: what the AP read at smpTestVA after it saw the round
	smpFAck         = 0x980 // u64: the round the AP answered
	smpIdle0        = 0x988 // u64: the AP's TSC before its idle read of HV_X64_MSR_GUEST_IDLE
	smpIdle1        = 0x990 // u64: and after it
	smpPingVector   = 0x58
	smpPongVector   = 0x59
	smpTVPDPTE      = PML4Base + 0x1000 + 4*8
	smpTVPD         = 0x39_0000
	smpTVPT         = 0x39_1000
	smpTVA          = 0x39_2000
	smpTVB          = 0x39_3000
	// SMPTestVA is the guest-virtual address mode SMPPingFlush remaps.
	SMPTestVA = 4 << 30
	// SMPMaxRounds bounds SMPParams.Rounds and Flushes: the per-round
	// TSC deltas fill the data page's bench area.
	SMPMaxRounds = 2048
)

// SMPStormVector is the vector the AP's storms send to the BSP.
const SMPStormVector = smpStormVector

// SMP guest results (APICState.Results indexes; smp_amd64.s describes
// them).
const (
	SMPBaseline    = 0  // spin iterations in the window with IF clear, no storm
	SMPStorm1Spins = 1  // the same under the storm
	SMPStorm1Sent  = 2  // IPIs the AP sent in that storm
	SMPStorm1Taken = 3  // interrupts VP 0 took after it: 1
	SMPStorm2Spins = 4  // spin iterations with IF set under the second storm
	SMPStorm2Sent  = 5  // IPIs the AP sent in it
	SMPStorm2Taken = 6  // interrupts VP 0 took during it
	SMPESR         = 7  // ESR after the IPIs to absent IDs: 0
	SMPSelfID      = 8  // after the BSP's INIT to itself: the ID register, 0
	SMPSelfSVR     = 9  // SVR, 0xff
	SMPSelfBase    = 10 // IA32_APIC_BASE, 0xfee00900
	SMPSelfResets  = 11 // passes through the reset vector, 1
	SMPByAPID      = 12 // after the AP's INIT: the same four
	SMPByAPSVR     = 13
	SMPByAPBase    = 14
	SMPByAPResets  = 15 // 2
	SMPHeartBefore = 16 // the AP's heartbeat before the BSP's INIT to itself
	SMPHeartAfter  = 17 // and once it moved after it
	// The guest's TSC at its phases (the partitions share the TSC).
	SMPAtBaseline  = 18 // the baseline spin's start
	SMPAtStorm1    = 19 // the first storm's command
	SMPAtStorm1End = 20 // its end, as VP 0 saw the AP's echo
	SMPAtStorm2    = 21
	SMPAtStorm2End = 22
	SMPAtSelfINIT  = 23 // the INIT to itself
	SMPAtAPINIT    = 24 // the command for the AP's INIT
	SMPAtEnd       = 25
	smpResultSlots = 26

	// Mode SMPPingFlush's results.
	SMPPingsByICR       = 0 // IPI round trips done with the ping sent through the ICR
	SMPPingsByHypercall = 1 // with the ping sent by HvCallSendSyntheticClusterIpi
	SMPFlushesDone      = 2 // flush rounds done after the control
	SMPControlRead      = 3 // the control round's read: 2 the new page, 1 the old
	SMPLastHypercall    = 4 // the last hypercall's RAX
	SMPLastAPRead       = 5 // the AP's last read of SMPTestVA
	SMPLastBSPRead      = 6 // VP 0's
	SMPIdleKick         = 7 // the TSC VP 0 sent the AP the IPI that ends its GUEST_IDLE read
	SMPIdleStart        = 8 // the AP's TSC before that read
	SMPIdleEnd          = 9 // and after it: not before SMPIdleKick
)

// SMPMode is what the SMP guest's BSP does.
type SMPMode uint64

const (
	// SMPHostile runs the whole hostile sequence and powers off with 0.
	SMPHostile SMPMode = 0
	// SMPBadStart sends INIT and one SIPI to APIC ID 1 at the page given
	// and waits for the partition to end.
	SMPBadStart SMPMode = 1
	// SMPPingFlush starts the AP, runs IPI round trips between the two
	// VPs (pings through the ICR, then through
	// HvCallSendSyntheticClusterIpi; each VP halts while it waits) and
	// flush rounds (the BSP remaps SMPTestVA and flushes the AP's TLB by
	// HvCallFlushVirtualAddressSpace or List; the AP, reading it in a loop
	// without exits, must see the new page), has the AP idle on
	// HV_X64_MSR_GUEST_IDLE until an IPI, then powers off with 0.
	SMPPingFlush SMPMode = 2
)

// SMPParams are the SMP guest's parameters.
type SMPParams struct {
	Mode SMPMode
	// Vector is the SIPI vector the AP starts at: SMPVector, or for
	// SMPBadStart a page of MMIO or of no memory.
	Vector uint8
	// StormIPIs is how many IPIs each of the AP's storms sends (it gives
	// up after four seconds of TSC).
	StormIPIs uint64
	// BaselineTicks is how long VP 0 spins, with the AP idle, to measure
	// its speed before the storms, in guest TSC ticks.
	BaselineTicks uint64
	// Absent are APIC IDs no VP has (at most 8, none 0xff: broadcast),
	// each sent an INIT and a SIPI.
	Absent []uint8
	// Rounds is how many IPI round trips SMPPingFlush makes of each kind,
	// Flushes how many flush rounds (each at most SMPMaxRounds).
	Rounds, Flushes uint64
}

// SMPTimings are SMPPingFlush's measurements, in guest TSC ticks: each
// IPI round trip with the ping sent through the ICR and by hypercall,
// and each flush hypercall's call, those of the first half of the rounds
// (the AP's loop with IF clear) and of the second (IF set).
type SMPTimings struct {
	ByICR, ByHypercall []uint64
	FlushesIFClear     []uint64
	FlushesIFSet       []uint64
}

// SMPState is what the SMP guest left in its data page besides the
// APIC state: arrivals at the 64-bit entry per APIC ID, passes through
// the reset vector, the AP's last command done and its heartbeat.
type SMPState struct {
	Entries [8]uint64
	Resets  uint64
	Ack     uint64
	Heart   uint64
	APStep  uint64
}

// trampoline is the start-up page's 16-bit code (SDM Vol. 3A 9.9.1's
// switch to IA-32e mode, from real mode in one step: CR0.PE and PG
// together, then a far jump to a 64-bit code segment).
func trampoline() []byte {
	le := binary.LittleEndian
	var b []byte
	b = append(b, 0xfa)             // cli
	b = append(b, 0x31, 0xc0)       // xor ax, ax
	b = append(b, 0x8e, 0xd8)       // mov ds, ax
	b = append(b, 0x0f, 0x01, 0x16) // lgdt [smpGDTR]
	b = le.AppendUint16(b, smpGDTR)
	b = append(b, 0x0f, 0x01, 0x1e) // lidt [smpIDTR]
	b = le.AppendUint16(b, smpIDTR)
	b = append(b, 0x66, 0xb8) // mov eax, CR4
	b = le.AppendUint32(b, x86.CR4PAE|x86.CR4OSFXSR|x86.CR4OSXMMEXCPT)
	b = append(b, 0x0f, 0x22, 0xe0) // mov cr4, eax
	b = append(b, 0x66, 0xb8)       // mov eax, PML4Base
	b = le.AppendUint32(b, PML4Base)
	b = append(b, 0x0f, 0x22, 0xd8) // mov cr3, eax
	b = append(b, 0x66, 0xb9)       // mov ecx, IA32_EFER
	b = le.AppendUint32(b, x86.MsrEFER)
	b = append(b, 0x0f, 0x32) // rdmsr
	b = append(b, 0x66, 0x0d) // or eax, EFER.LME
	b = le.AppendUint32(b, x86.EFERLME)
	b = append(b, 0x0f, 0x30) // wrmsr
	b = append(b, 0x66, 0xb8) // mov eax, CR0
	b = le.AppendUint32(b, x86.CR0PE|x86.CR0ET|x86.CR0NE|x86.CR0WP|x86.CR0PG)
	b = append(b, 0x0f, 0x22, 0xc0) // mov cr0, eax
	b = append(b, 0x66, 0xea)       // jmp dword far SelCode:smpEntry
	b = le.AppendUint32(b, smpEntry)
	b = le.AppendUint16(b, SelCode)
	return b
}

// resetVectorCode is the code at 0xfffffff0 (F000:FFF0 in the INIT
// state): count the pass and go to the trampoline.
func resetVectorCode() []byte {
	le := binary.LittleEndian
	b := []byte{0xff, 0x06} // inc word [smpResets]
	b = le.AppendUint16(b, smpResets)
	b = append(b, 0xea, 0, 0) // jmp far SMPVector<<8:0
	return le.AppendUint16(b, SMPVector<<8)
}

// LoadSMPHostile sets p up for the hostile SMP guest: LoadAPIC's
// environment with APICSMPHostile at CodeBase, the AP's program, the
// trampoline and its 64-bit entry, the reset-vector code when p has RAM
// at ResetVectorPage, and the parameters. p needs two VPs.
func LoadSMPHostile(p *hv.Partition, c APICClocks, prm SMPParams) error {
	if p.VPCount() < 2 {
		return fmt.Errorf("testguests: partition %s has %d VP, the SMP guest needs 2", p.Name, p.VPCount())
	}
	if len(prm.Absent) > smpMaxAbsent {
		return fmt.Errorf("testguests: %d absent APIC IDs, room for %d", len(prm.Absent), smpMaxAbsent)
	}
	if prm.Rounds > SMPMaxRounds || prm.Flushes > SMPMaxRounds {
		return fmt.Errorf("testguests: %d round trips and %d flush rounds, at most %d each", prm.Rounds, prm.Flushes, SMPMaxRounds)
	}
	if prm.Mode == SMPPingFlush && p.Mem.RAMSize() < smpTVB+x86.PageSize {
		return fmt.Errorf("testguests: partition %s needs at least %d MiB of RAM for the ping-pong and flush guest", p.Name, (smpTVB+x86.PageSize+(1<<20)-1)>>20)
	}
	if err := LoadAPIC(p, APICSMPHostile, c); err != nil {
		return err
	}
	ap, err := apicCode(apicBlobSMPAP)
	if err != nil {
		return err
	}
	entry, err := apicCode(apicBlobSMPEntry)
	if err != nil {
		return err
	}
	tr := trampoline()
	if len(tr) > smpGDTR-SMPTrampoline || len(entry) > x86.PageSize-(smpEntry-SMPTrampoline) {
		return fmt.Errorf("testguests: trampoline (%d bytes) or entry (%d bytes) does not fit its page", len(tr), len(entry))
	}
	m := p.Mem
	page := make([]byte, x86.PageSize)
	copy(page, tr)
	binary.LittleEndian.PutUint16(page[smpGDTR-SMPTrampoline:], 3*8-1) // Load's three descriptors
	binary.LittleEndian.PutUint32(page[smpGDTR-SMPTrampoline+2:], GDTBase)
	binary.LittleEndian.PutUint16(page[smpIDTR-SMPTrampoline:], 256*16-1)
	binary.LittleEndian.PutUint32(page[smpIDTR-SMPTrampoline+2:], IDTBase)
	copy(page[smpEntry-SMPTrampoline:], entry)
	if err := m.WriteRAM(SMPTrampoline, page); err != nil {
		return err
	}
	if err := m.WriteRAM(smpAPCode, ap); err != nil {
		return err
	}
	if _, err := m.Page(ResetVectorPage >> 12); err == nil {
		if err := m.WriteRAM(ResetVectorPage+0xff0, resetVectorCode()); err != nil {
			return err
		}
	}
	params := []uint64{uint64(prm.Mode), uint64(prm.Vector), prm.StormIPIs, prm.BaselineTicks, uint64(len(prm.Absent))}
	for _, id := range prm.Absent {
		params = append(params, uint64(id))
	}
	params = append(params, make([]uint64, (smpParamRounds-apicParams)/8-len(params))...)
	params = append(params, prm.Rounds, prm.Flushes)
	return SetAPICParams(m, params...)
}

// SMPGo lets the SMP guest, waiting at step 4, go on to its baseline and
// storms.
func SMPGo(m *hv.GuestMemory) error { return writeU64s(m, APICData+smpGo, []uint64{1}) }

// ReadSMPState reads the SMP area of the guest's data page and the
// reset-vector count.
func ReadSMPState(m *hv.GuestMemory) (SMPState, error) {
	var s SMPState
	b := make([]byte, smpAPStep+8-smpEntries)
	if err := m.ReadRAM(APICData+smpEntries, b); err != nil {
		return s, fmt.Errorf("testguests: smp area: %w", err)
	}
	le := binary.LittleEndian
	for i := range s.Entries {
		s.Entries[i] = le.Uint64(b[8*i:])
	}
	s.Ack, s.Heart, s.APStep = le.Uint64(b[smpAck-smpEntries:]), le.Uint64(b[smpHeart-smpEntries:]), le.Uint64(b[smpAPStep-smpEntries:])
	var r [2]byte
	if err := m.ReadRAM(smpResets, r[:]); err != nil {
		return s, fmt.Errorf("testguests: reset count: %w", err)
	}
	s.Resets = uint64(le.Uint16(r[:]))
	return s, nil
}

// ReadSMPTimings reads SMPPingFlush's per-round TSC deltas for rounds
// round trips of each kind and flushes flush calls (the parameters it
// ran with).
func ReadSMPTimings(m *hv.GuestMemory, rounds, flushes uint64) (SMPTimings, error) {
	if rounds > SMPMaxRounds || flushes > SMPMaxRounds {
		return SMPTimings{}, fmt.Errorf("testguests: %d round trips and %d flush rounds, at most %d each", rounds, flushes, SMPMaxRounds)
	}
	b := make([]byte, 8*(2*rounds+flushes))
	if err := m.ReadRAM(APICData+apicBenchArea, b); err != nil {
		return SMPTimings{}, fmt.Errorf("testguests: smp timings: %w", err)
	}
	v := make([]uint64, len(b)/8)
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	half := 2*rounds + flushes/2
	return SMPTimings{ByICR: v[:rounds], ByHypercall: v[rounds : 2*rounds], FlushesIFClear: v[2*rounds : half], FlushesIFSet: v[half:]}, nil
}
