package testguests

import (
	"fmt"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// This file: issue 15's peer guest, the loop Linux 6.1 KVM's round trips
// were measured with, byte for byte, so gohv's figures and KVM's compare
// directly. It is 32-bit code (the Go assembler writes only 64-bit), so it
// is machine code here.

// PeerKind is the body of the peer loop.
type PeerKind int

const (
	PeerNOP       PeerKind = iota // nop: the bare loop (three instructions an iteration)
	PeerCPUID                     // xor eax,eax; cpuid
	PeerHypercall                 // mov eax,0xffff; vmmcall (vmcall on Intel); mov ebx,eax
	PeerOUT                       // out 0x10,al: to a device model
)

// Where the peer guest lives and the ports it uses.
const (
	PeerGDTBase  = 0x1000
	PeerCodeBase = 0x2000
	PeerStackTop = 0x8000
	PeerOutPort  = 0x10 // the OUT body's port: a device model answers
	PeerDonePort = 0x11 // written once after the second RDTSC
)

// PeerLoopStart is the offset in the peer code of the first RDTSC: what
// comes before it only names the guest to the Hyper-V interface.
var PeerLoopStart = len(peerPrologue)

// peerPrologue writes HV_X64_MSR_GUEST_OS_ID (gohv answers a hypercall
// with #UD until the guest has, TLFS 3.13; KVM needs no such step). It
// runs before the first RDTSC, outside what is measured.
var peerPrologue = []byte{
	0xb9, 0x00, 0x00, 0x00, 0x40, // mov ecx, HV_X64_MSR_GUEST_OS_ID (tlfs.MsrGuestOSID; peer_test.go)
	0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1
	0x31, 0xd2, //                   xor edx, edx
	0x0f, 0x30, //                   wrmsr
}

// PeerBody is the loop body of kind k; hypercall is the vendor's
// hypercall instruction (Backend.HypercallInstruction).
func PeerBody(k PeerKind, hypercall [3]byte) ([]byte, error) {
	switch k {
	case PeerNOP:
		return []byte{0x90}, nil
	case PeerCPUID:
		return []byte{0x31, 0xc0, 0x0f, 0xa2}, nil
	case PeerHypercall:
		return []byte{0xb8, 0xff, 0xff, 0x00, 0x00, hypercall[0], hypercall[1], hypercall[2], 0x89, 0xc3}, nil
	case PeerOUT:
		return []byte{0xe6, PeerOutPort}, nil
	}
	return nil, fmt.Errorf("testguests: no peer loop body %d", k)
}

// peerCode is the whole program: the prologue, then the loop
//
//	rdtsc; mov esi,eax; mov edi,edx
//	loop: <body>; dec ebp; jnz loop
//	rdtsc; out 0x11,al; hlt; jmp $-1
func peerCode(body []byte) []byte {
	c := append([]byte(nil), peerPrologue...)
	c = append(c, 0x0f, 0x31, 0x89, 0xc6, 0x89, 0xd7)
	c = append(c, body...)
	c = append(c, 0x4d, 0x75, byte(-(len(body) + 3)))
	return append(c, 0x0f, 0x31, 0xe6, PeerDonePort, 0xf4, 0xeb, 0xfd)
}

// LoadPeer sets VP 0 of p to 32-bit flat protected mode (CR0.PE, no
// paging, CS and DS flat 4 GiB segments from a GDT, CPL 0, no IDT: any
// exception is a triple fault) at the peer loop with body k and EBP = n.
// When the loop ends the guest writes port PeerDonePort with the start
// TSC in EDI:ESI and the end TSC in EDX:EAX (the caller's device reads
// them there).
func LoadPeer(p *hv.Partition, k PeerKind, hypercall [3]byte, n uint32) error {
	if n == 0 {
		return fmt.Errorf("testguests: a peer loop of 0 iterations runs 2^32")
	}
	body, err := PeerBody(k, hypercall)
	if err != nil {
		return err
	}
	gdt := []uint64{0,
		x86.SegmentDescriptor(0, 0xfffff, x86.SegTypeCodeXR|x86.SegS|x86.SegP|x86.SegDB|x86.SegG),
		x86.SegmentDescriptor(0, 0xfffff, x86.SegTypeDataRW|x86.SegS|x86.SegP|x86.SegDB|x86.SegG)}
	if err := writeU64s(p.Mem, PeerGDTBase, gdt); err != nil {
		return err
	}
	if err := p.Mem.WriteRAM(PeerCodeBase, peerCode(body)); err != nil {
		return err
	}
	code := vcpu.Segment{Selector: SelCode, Attrib: x86.SegTypeCodeXRA | x86.SegS | x86.SegP | x86.SegDB | x86.SegG, Limit: 0xffff_ffff}
	data := vcpu.Segment{Selector: SelData, Attrib: x86.SegTypeDataRWA | x86.SegS | x86.SegP | x86.SegDB | x86.SegG, Limit: 0xffff_ffff}
	r := vcpu.ResetRegs()
	r.RIP = PeerCodeBase
	r.CR0 = x86.CR0PE | x86.CR0ET | x86.CR0NE
	r.CS, r.DS, r.ES, r.SS, r.FS, r.GS = code, data, data, data, data, data
	r.TR = vcpu.Segment{Attrib: x86.SegTypeTSSBusy | x86.SegP, Limit: 0x67}
	r.GDTR = vcpu.DescTable{Base: PeerGDTBase, Limit: uint32(8*len(gdt) - 1)}
	r.IDTR = vcpu.DescTable{}
	r.GPR[x86.RSP] = PeerStackTop
	r.GPR[x86.RBP] = uint64(n)
	p.VP(0).SetState(r)
	return nil
}
