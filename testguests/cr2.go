package testguests

import (
	"bytes"
	"fmt"

	"gohv/hv"
	"gohv/x86"
)

// The CR2 guest (cr2_amd64.s) checks that a VP's CR2 is its own: the
// address of its last page fault, whatever other VPs fault on while it is
// out of guest mode. VMX does not switch CR2 on entry and exit (the VMCS
// has no field for it), so the hypervisor must; SVM's VMCB holds it.

// Declarations for vet: guest code, never called in the host.
func guestCR2()
func handlerCR2()

func cr2BlobAddrs(p *[2]uintptr)

// Guest-physical layout the CR2 guest adds to Load's environment.
const (
	// CR2HandlerBase is where the #PF handler goes (free RAM from
	// DataBase on).
	CR2HandlerBase = DataBase
	// CR2Page is the 2 MiB page Load's identity map leaves out for the
	// CR2 guest (PD 3's last entry): every address in it faults.
	CR2Page = 0xffe0_0000
	cr2PDE  = PML4Base + 0x1000 + 4*0x1000 + 8*511 // PD 3 (the fourth after the PDPT), entry 511
)

// CR2 guest ports: see cr2_amd64.s.
const (
	CR2PortInHandler = 0xe3 // OUT: the guest is in its #PF handler, CR2 not yet read
	CR2PortReport    = 0xe4 // OUT: the CR2 it read, low dword then high
	CR2PortWait      = 0xe5 // IN: returns when the guest may fault
)

// LoadCR2 sets p up as Load does, with the CR2 guest at CodeBase loading
// from addr (in CR2Page) and its #PF handler behind vector 14's gate; with
// waitFirst it reads port CR2PortWait before it faults.
func LoadCR2(p *hv.Partition, addr uint64, waitFirst bool) error {
	if addr&^(2<<20-1) != CR2Page {
		return fmt.Errorf("testguests: CR2 guest address %#x is not in the page at %#x", addr, CR2Page)
	}
	if err := Load(p, Halt, Options{}); err != nil {
		return err
	}
	var addrs [2]uintptr
	cr2BlobAddrs(&addrs)
	var blobs [2][]byte
	for i, a := range addrs {
		var buf [apicBlobLimit]byte
		n := apicText(&buf, a)
		if n == 0 || !bytes.HasSuffix(buf[:n], endMarker) {
			return fmt.Errorf("testguests: CR2 blob %d has no end marker in %d bytes", i, apicBlobLimit)
		}
		blobs[i] = buf[:n]
	}
	m := p.Mem
	if err := m.WriteRAM(CodeBase, blobs[0]); err != nil {
		return err
	}
	if err := m.WriteRAM(CR2HandlerBase, blobs[1]); err != nil {
		return err
	}
	g := x86.GateDescriptor64(CR2HandlerBase, SelCode, 0, x86.SegTypeIntGate|x86.SegP)
	if err := writeU64s(m, IDTBase+16*x86.VectorPF, g[:]); err != nil {
		return err
	}
	if err := writeU64s(m, cr2PDE, []uint64{0}); err != nil {
		return err
	}
	vp := p.VP(0)
	r := *vp.Regs()
	r.GPR[x86.RBX] = addr
	if waitFirst {
		r.GPR[x86.R12] = 1
	}
	vp.SetState(r)
	return nil
}
