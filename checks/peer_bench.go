package checks

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"gohv/hv"
	"gohv/testguests"
	"gohv/x86"
)

// peerKind is one body of issue 15's peer loop (testguests.LoadPeer) with
// Linux 6.1 KVM's figure for it, measured nested in the same emulators:
// guest instructions per iteration.
type peerKind struct {
	kind            testguests.PeerKind
	name            string
	n               uint32
	kvmQEMU, kvmBox float64 // QEMU -cpu EPYC; Bochs corei7_skylake_x
	what            string
}

var peerKinds = []peerKind{
	{testguests.PeerNOP, "peer-nop", 100000, 3, 3, "nop: the bare loop"},
	{testguests.PeerCPUID, "peer-cpuid", 100000, 2613, 1061, "xor eax,eax; cpuid"},
	{testguests.PeerHypercall, "peer-hypercall", 100000, 2769, 1051, "mov eax,0xffff; vmmcall/vmcall (unknown code: an error status); mov ebx,eax"},
	{testguests.PeerOUT, "peer-out", 10000, 3398, 7322, "out 0x10,al to a device model (KVM: with a minimal user-space VMM)"},
}

// peerRuns is how many measured runs each kind gets after one warm-up.
const peerRuns = 5

// benchPeer runs issue 15's peer guest — a one-VP 32-bit flat
// protected-mode loop of CPUID, an unknown-code hypercall, an OUT to a
// device model, or NOP, between two RDTSCs — and reports (end − start) / N,
// the median of five runs after a warm-up, beside KVM's figure for the
// same loop.
func benchPeer(env *Env) error {
	if env.hv == nil {
		if err := openHypervisor(env); err != nil {
			return err
		}
	}
	insn := env.hv.Backend.HypercallInstruction()
	vtx := insn[2] == 0xc1 // VMCALL: VT-x (Bochs); VMMCALL: AMD-V (QEMU)
	where := "QEMU -cpu EPYC"
	if vtx {
		where = "Bochs corei7_skylake_x"
	}
	fmt.Fprintf(env.Out, "gohv: bench peer measured on %s: issue 15's 32-bit loop, median of %d runs after a warm-up\n", env.hv.Backend.Name(), peerRuns)
	for _, k := range peerKinds {
		per := make([]float64, 0, peerRuns)
		var exits uint64
		for run := 0; run <= peerRuns; run++ {
			m, err := runPeer(env, k, insn)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", k.name, run, err)
			}
			if run > 0 {
				per = append(per, m.perIteration)
				exits = m.exits
			}
		}
		sort.Float64s(per)
		kvm := k.kvmQEMU
		if vtx {
			kvm = k.kvmBox
		}
		fmt.Fprintf(env.Out, "gohv: measure %s %.2f tsc-cycles per iteration of %s over %d (runs %.2f..%.2f; %d exits a run; Linux 6.1 KVM: %.0f on %s; %.2f of it)\n",
			k.name, per[len(per)/2], k.what, k.n, per[0], per[len(per)-1], exits, kvm, where, per[len(per)/2]/kvm)
	}
	return nil
}

// peerResult is what one run of the peer loop measured.
type peerResult struct {
	perIteration float64
	exits        uint64 // VP 0's exits, all kinds
}

// runPeer runs the peer guest once with body k and returns its figure.
func runPeer(env *Env, k peerKind, insn [3]byte) (peerResult, error) {
	p, err := env.hv.NewPartition(hv.Config{Name: "peer", RAMBytes: 1 << 20, Console: env.Out})
	if err != nil {
		return peerResult{}, err
	}
	defer p.Destroy()
	dev := &peerDevice{p: p}
	p.AddPort(testguests.PeerOutPort, 2, dev) // PeerOutPort and PeerDonePort
	if err := testguests.LoadPeer(p, k.kind, insn, k.n); err != nil {
		return peerResult{}, err
	}
	p.Start()
	r := p.WaitOrStop(5 * time.Minute)
	if !dev.done || !errors.Is(r.Err, hv.ErrPowerOff) {
		return peerResult{}, fmtErr("the loop did not reach port %#x: %v", testguests.PeerDonePort, r)
	}
	if k.kind == testguests.PeerOUT && dev.outs != uint64(k.n) {
		return peerResult{}, fmtErr("%d OUTs to port %#x, want %d", dev.outs, testguests.PeerOutPort, k.n)
	}
	if k.kind == testguests.PeerHypercall && dev.ebx == 0 {
		return peerResult{}, fmtErr("the unknown hypercall returned status 0 in EAX, want an error")
	}
	var exits uint64
	for _, n := range p.VP(0).Exits {
		exits += n
	}
	return peerResult{float64(dev.end-dev.start) / float64(k.n), exits}, nil
}

// peerDevice is the peer guest's device model: port PeerOutPort takes the
// OUT body's writes (and counts them), port PeerDonePort reads the start
// and end TSCs off VP 0's registers and ends the partition. Called on the
// VP's thread.
type peerDevice struct {
	p          *hv.Partition
	outs       uint64
	start, end uint64
	ebx        uint64 // the last hypercall's status, as the loop copied it
	done       bool
}

func (d *peerDevice) In(port uint16, size int) uint32 { return 0xffff_ffff >> (32 - 8*size) }

func (d *peerDevice) Out(port uint16, size int, v uint32) {
	if port == testguests.PeerOutPort {
		d.outs++
		return
	}
	g := &d.p.VP(0).Regs().GPR
	d.start = g[x86.RDI]<<32 | g[x86.RSI]&0xffff_ffff
	d.end = g[x86.RDX]<<32 | g[x86.RAX]&0xffff_ffff
	d.ebx = g[x86.RBX] & 0xffff_ffff
	d.done = true
	d.p.PowerOff("the peer loop ended")
}
