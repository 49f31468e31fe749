package hv

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"gohv/apic"
	"gohv/hv/emul"
	"gohv/hv/hypercall"
	"gohv/hv/synic"
	"gohv/hv/tlfs"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// VP is a virtual processor: a backend VCPU driven by a run loop on a
// goroutine locked to its own thread.
type VP struct {
	p     *Partition
	index int
	cpu   vcpu.VCPU
	regs  *vcpu.Regs // cpu.Regs(), kept: no interface call on the exit path
	// exitReq is cpu when the backend can call an entry off
	// (vcpu.ExitRequester), else nil: Kick and syncExit ask it, so an
	// interrupt or flush posted after the last look at the LAPIC holds
	// the entry back instead of waiting for the guest's next exit.
	exitReq vcpu.ExitRequester
	exit    vcpu.Exit
	lapic   *apic.LAPIC
	synic   *synic.SynIC
	// stimers are the synthetic timers' host timers (synthetic.go).
	stimers []*refTimer

	waiter waiter // where the VP sleeps in HLT or wait-for-SIPI until kicked

	// Where the VP runs, for the other VPs' threads and the root: the
	// host CPU (placement.go; -1 when the VP does not run), whether its
	// thread is in guest mode or on its way in (from the last look at
	// the LAPIC before an entry to the next exit), and how many times it
	// has left guest mode (Run returning, or an exit the backend's loop
	// offered to fastExit). syncExit waits on the last two.
	hostCPU atomic.Int32
	ranOn   atomic.Int32  // the host CPU it last ran on, -1 before it ran
	moves   atomic.Uint64 // moves to another host CPU (migrate.go)
	inRun   atomic.Bool
	runs    atomic.Uint64

	// The host CPU Start placed it on (or why it could not), for its
	// thread to bind to: Start places a partition's VPs in index order,
	// so they spread over the CPUs as their numbers do whatever order
	// their threads start in.
	placed   int
	placeErr error

	// State only the VP's thread touches.
	asked       bool      // deliver asked the backend for a window or a TPR threshold since it last cleared both
	cr8         uint64    // Regs.CR8 as last loaded, to see the guest change it
	nmiPending  bool      // an NMI waits for the guest to be able to take it
	waitSIPI    bool      // INIT left this VP waiting for a start-up IPI
	alarm       int64     // the host alarm this thread has set (HostClock.SetAlarm)
	sliceEnd    int64     // host time this VP's turn on the CPU ends (TimeSlice)
	sliceEndTSC uint64    // the same in host TSC cycles, which the check after every exit reads: cheaper than Nanotime
	sliceTSC    uint64    // TimeSlice in host TSC cycles
	fastLeft    int       // fastExit's exits until it next reads the clock
	shadowRIP   uint64    // where an exit last found the guest in an STI/MOV SS shadow
	shadowSeen  bool      // shadowRIP is valid: the guest has not moved on since
	apicPage    mmioRange // where the LAPIC's page answers (apicMoved); size 0 for nowhere
	apicEnabled bool      // IA32_APIC_BASE.EN, as apicMoved last saw it
	vpAssist    uint64    // HV_X64_MSR_VP_ASSIST_PAGE
	haltedNanos int64     // time spent in HLT, for HV_X64_MSR_VP_RUNTIME
	busy        bool      // counted in Hypervisor.busy on its host CPU (migrate.go)
	movedAt     int64     // host time it last moved to another host CPU (or tried to)
	sharedSince int64     // host time maybeMigrate first found another running VP on its CPU; 0: not sharing

	// codePage is the host view of guest page codePFN, the page the last
	// instruction fetch read (readCode).
	codePage  *[x86.PageSize]byte
	codePFN   uint64
	frameMask uint64 // the guest's page-frame address bits (emul.Paging.FrameMask)

	calls    hypercall.Caller // hypercall input buffers, reused: no allocation per call
	emuState emul.State       // instruction emulation scratch, reused: no allocation per exit
	view     guestView
	fetch    [15]byte

	// Counters, read by reports and benchmarks.
	Exits     [vcpu.NumExitKinds]uint64
	Injected  uint64
	HLTSleeps uint64
	// GuestIdles counts reads of HV_X64_MSR_GUEST_IDLE (guestIdle).
	GuestIdles uint64
	// HaltsSkipped counts HLTs that an interrupt arriving in a lost
	// STI shadow completed (haltFirst).
	HaltsSkipped uint64
}

// newVP wraps a backend VCPU and gives it a local APIC; it starts in the
// architectural RESET state until a loader sets another.
func newVP(p *Partition, i int, cpu vcpu.VCPU) (*VP, error) {
	vp := &VP{p: p, index: i, cpu: cpu, regs: cpu.Regs()}
	vp.hostCPU.Store(-1)
	vp.ranOn.Store(-1)
	vp.view.vp = vp
	vp.sliceTSC = uint64(TimeSlice) * p.hv.Host.TSCHz() / uint64(time.Second)
	pg := emul.Paging{MaxPhysAddr: p.hv.Model.PhysAddrBits()}
	vp.frameMask = pg.FrameMask()
	vp.calls.VP = uint32(i)
	if f, ok := cpu.(vcpu.FastExiter); ok {
		f.SetFastExit(vp.fastExit)
	}
	if r, ok := cpu.(vcpu.ExitRequester); ok {
		vp.exitReq = r
	}
	l, err := p.newLAPIC(vp)
	if err != nil {
		return nil, err
	}
	vp.lapic = l
	vp.newSynIC()
	vp.apicMoved()
	vp.SetState(vcpu.ResetRegs())
	return vp, nil
}

// BreakGuestStateForTest corrupts one hardware guest-state field through
// the backend's test seam (vcpu.StateBreaker) so the image's checks can
// prove an entry failure is named and contained; it returns the name the
// failure report must contain, or "" when the backend has no such seam.
func (vp *VP) BreakGuestStateForTest() string {
	if b, ok := vp.cpu.(vcpu.StateBreaker); ok {
		return b.BreakGuestStateForTest()
	}
	return ""
}

// Regs is the VP's register file; set the initial state before Start.
func (vp *VP) Regs() *vcpu.Regs { return vp.regs }

// SetState loads a whole register state before Start.
func (vp *VP) SetState(r vcpu.Regs) {
	vp.cpu.SyncState()
	*vp.regs = r
	vp.cpu.MarkStateDirty()
}

// TimeSlice bounds how long a VP's guest keeps a host CPU before a host
// interrupt brings it back to let the other threads and goroutines run:
// the root's services (VMBus channels, the console), other partitions'
// VPs. Without it a guest that spins (a driver's busy-wait for a reply its
// host service would send) would keep the CPU from that very service.
const TimeSlice = 2 * time.Millisecond

func (vp *VP) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer vp.p.wg.Done()
	defer vp.p.hv.Host.SetAlarm(0) // the thread goes back to the runtime without it
	if err := vp.bind(); err != nil {
		vp.p.crash(vp.index, fmt.Errorf("vp %d: %w: %w", vp.index, ErrHypervisor, err))
		return
	}
	defer vp.unbind()
	vp.newSlice()
	for !vp.p.stopping.Load() {
		// Before the look at what the guest is owed: a Kick after it
		// keeps the backend from entering (vcpu.ExitRequester).
		if vp.exitReq != nil {
			vp.exitReq.ClearExitRequest()
		}
		if !vp.deliver() {
			vp.sleep(vp.startable) // wait-for-SIPI: nothing runs until a SIPI
			continue
		}
		// A guest timer due while the guest runs, or the end of the VP's
		// slice, needs a host interrupt to bring the VP back on time.
		at := vp.nextDeadline()
		if at == 0 || at > vp.sliceEnd {
			at = vp.sliceEnd
		}
		if at != vp.alarm {
			vp.p.hv.Host.SetAlarm(at)
			vp.alarm = at
		}
		vp.inRun.Store(true)
		err := vp.cpu.Run(&vp.exit)
		vp.inRun.Store(false)
		vp.runs.Add(1)
		if err != nil {
			vp.p.crash(vp.index, fmt.Errorf("vp %d: %w: backend: %w", vp.index, ErrHypervisor, err))
			return
		}
		vp.Exits[vp.exit.Kind]++
		vp.noteShadow(&vp.exit)
		vp.handle(&vp.exit)
		// A guest that exits all the time (an MSR or hypercall storm) is
		// seldom in guest mode when its slice's host interrupt comes:
		// the host takes it after an exit instead, and no ExitInterrupt
		// says so. Its slice ends here then.
		if vp.exit.Kind != vcpu.ExitInterrupt && vp.p.hv.Host.TSC() >= vp.sliceEndTSC {
			vp.yield()
		}
	}
}

// place picks the VP's host CPU (the partition's choice or the least
// loaded) before its thread starts. Partition.Start, in VP order.
func (vp *VP) place() {
	want := -1
	if n := len(vp.p.hostCPUs); n > 0 {
		want = vp.p.hostCPUs[vp.index%n]
	}
	vp.placed, vp.placeErr = vp.p.hv.placeVP(want)
}

// bind binds the VP's thread to the host CPU place chose and makes the
// backend's VCPU that CPU's. VP thread, before its first entry.
func (vp *VP) bind() error {
	cpu, err := vp.placed, vp.placeErr
	if err != nil {
		return err
	}
	if err := vp.p.hv.Host.PinThread(cpu); err != nil {
		vp.p.hv.unplaceVP(cpu)
		return err
	}
	if got := vp.p.hv.Host.CurrentCPU(); got != cpu {
		vp.p.hv.Host.PinThread(-1)
		vp.p.hv.unplaceVP(cpu)
		return fmt.Errorf("bound to host CPU %d, the thread runs on %d", cpu, got)
	}
	if err := vp.cpu.Bind(cpu); err != nil {
		vp.p.hv.Host.PinThread(-1)
		vp.p.hv.unplaceVP(cpu)
		return fmt.Errorf("host CPU %d: %w", cpu, err)
	}
	vp.hostCPU.Store(int32(cpu))
	vp.ranOn.Store(int32(cpu))
	vp.movedAt = vp.p.hv.Host.Nanotime()
	vp.setBusy(true)
	vp.p.log.Debug("vp placed", "vp", vp.index, "host-cpu", cpu)
	return nil
}

// unbind undoes bind as the VP's thread ends. The register file is made
// current first (a backend that reads it lazily can no longer once the
// CPU lets go of the VP), so the root reads the guest's last state.
func (vp *VP) unbind() {
	vp.setBusy(false)
	vp.cpu.SyncState()
	vp.cpu.Unbind()
	vp.p.hv.Host.PinThread(-1)
	vp.p.hv.unplaceVP(int(vp.hostCPU.Load()))
	vp.hostCPU.Store(-1)
}

// yield gives the host CPU up at the end of the VP's slice or after a host
// interrupt: the goroutines that woke run (the root's services, the LAPIC
// timers' callbacks among them; with one host CPU they cannot while this
// thread keeps entering the guest), the VP's timers are caught up in case
// their callbacks are still waiting, and a new slice starts. VP thread;
// must not allocate.
func (vp *VP) yield() {
	runtime.Gosched()
	vp.maybeMigrate()
	vp.newSlice()
	vp.pollTimers()
	vp.alarm = -1 // set the next one on the way in
}

// newSlice starts the VP's next turn on the CPU, after it gave the CPU up.
func (vp *VP) newSlice() {
	vp.sliceEnd = vp.p.hv.Host.Nanotime() + int64(TimeSlice)
	vp.sliceEndTSC = vp.p.hv.Host.TSC() + vp.sliceTSC
}

// handle acts on one exit. Must not allocate on the paths a running guest
// takes (CPUID, MSR, CR, port I/O, hypercall, HLT, host interrupt);
// ending the partition may. Guest-controlled: e and the registers.
func (vp *VP) handle(e *vcpu.Exit) {
	r := vp.regs
	p := vp.p
	vp.syncCR8()
	switch e.Kind {
	case vcpu.ExitInterrupt:
		// The host took its interrupt at STGI or on the VM exit. If it
		// was the VP's alarm (its slice's end or a guest timer's
		// deadline), let the goroutines it woke run (the LAPIC timers'
		// callbacks among them; with one host CPU they cannot while
		// this thread keeps entering the guest), and catch up the
		// LAPIC's timer here in case its callback is still waiting. On
		// a host of several CPUs any other interrupt — a kick for an
		// interrupt this VP now has, a reschedule for another thread,
		// which metal switches to at the trap if its slice is over —
		// leaves the VP to deliver and enter again: a yield on its
		// locked thread is a hand-off through another thread of the Go
		// runtime, milliseconds under QEMU, on every cross-CPU wakeup.
		if !vp.p.multiCPU || vp.alarm <= 0 || vp.p.hv.Host.Nanotime() >= vp.alarm {
			vp.yield()
		}
	case vcpu.ExitInterruptWindow, vcpu.ExitNone:
		// deliver() runs before the next entry.
	case vcpu.ExitCPUID:
		vp.cpuid(e)
	case vcpu.ExitMSRRead:
		msr := uint32(r.GPR[x86.RCX])
		var v uint64
		var err error
		switch {
		case apic.HandlesMSR(msr):
			v, err = vp.lapic.ReadMSR(msr)
		case synic.HandlesMSR(msr):
			v, err = vp.synic.ReadMSR(msr)
		case msr >= tlfs.MsrRangeFirst && msr <= tlfs.MsrRangeLast:
			v, err = vp.readHyperVMSR(msr)
		default:
			v, err = p.hv.Model.ReadMSR(r, msr)
		}
		if err != nil {
			vp.raiseGP()
			return
		}
		r.GPR[x86.RAX], r.GPR[x86.RDX] = v&0xffff_ffff, v>>32
		vp.skip(e, opRDMSR)
		if msr == tlfs.MsrGuestIdle {
			vp.guestIdle()
		}
	case vcpu.ExitMSRWrite:
		msr, v := uint32(r.GPR[x86.RCX]), r.GPR[x86.RAX]&0xffff_ffff|r.GPR[x86.RDX]<<32
		var dirty bool
		var err error
		switch {
		case apic.HandlesMSR(msr):
			err = vp.lapic.WriteMSR(msr, v)
			vp.tprChanged()
			if msr == x86.MsrAPICBase {
				vp.apicMoved()
			}
		case synic.HandlesMSR(msr):
			err = vp.synic.WriteMSR(msr, v)
		case msr >= tlfs.MsrRangeFirst && msr <= tlfs.MsrRangeLast:
			err = vp.writeHyperVMSR(msr, v)
		default:
			dirty, err = p.hv.Model.WriteMSR(r, msr, v)
		}
		if err != nil {
			vp.raiseGP()
			return
		}
		if dirty {
			vp.cpu.MarkStateDirty()
		}
		vp.skip(e, opWRMSR)
	case vcpu.ExitCRWrite:
		v := e.Value
		if e.ValueFromInstruction {
			var ok bool
			if v, ok = vp.crWriteSource(e.CR); !ok {
				p.crash(vp.index, fmt.Errorf("vp %d: %w: the write to CR%d at rip %#x is not a MOV from a register", vp.index, ErrUnsupported, e.CR, r.RIP))
				return
			}
		}
		if !vp.in64BitMode() {
			v &= 0xffff_ffff // outside 64-bit mode MOV to CR takes a 32-bit operand
		}
		if err := p.hv.Model.WriteCR(r, e.CR, v); err != nil {
			vp.raiseGP()
			return
		}
		if e.CR == 8 {
			vp.syncCR8()
		}
		vp.cpu.MarkStateDirty()
		vp.skip(e, opMOVCR)
	case vcpu.ExitIO:
		vp.portIO(e)
	case vcpu.ExitHypercall:
		vp.hypercall(e)
	case vcpu.ExitHLT:
		vp.skip(e, opHLT)
		vp.halt()
	case vcpu.ExitNestedFault:
		vp.nestedFault(e)
	case vcpu.ExitInstruction:
		vp.cpu.Inject(vcpu.Exception(x86.VectorUD, 0))
	case vcpu.ExitException:
		// Only #UD is intercepted: VMMCALL (AMD's hypercall instruction)
		// raises it on Intel and is served as a hypercall; anything else
		// goes back to the guest.
		vp.prepare()
		if e.Vector == x86.VectorUD && vp.fetchAt(3) && vp.fetch[0] == 0x0f && vp.fetch[1] == 0x01 && vp.fetch[2] == 0xd9 {
			e.InstrLen = 3
			vp.hypercall(e)
			return
		}
		vp.cpu.Inject(vcpu.Exception(e.Vector, e.ErrorCode))
	case vcpu.ExitShutdown:
		p.crash(vp.index, fmt.Errorf("vp %d: %w at rip %#x (%s)", vp.index, ErrTripleFault, r.RIP, vp.describeState()))
	case vcpu.ExitInvalidState:
		p.crash(vp.index, &InvalidStateError{VP: vp.index, Detail: e.Detail, CR0: r.CR0, CR4: r.CR4, EFER: r.EFER})
	default:
		p.crash(vp.index, fmt.Errorf("vp %d: %w: exit %v, code %#x (info %#x, %#x) at rip %#x %s",
			vp.index, ErrUnsupported, e.Kind, e.Code, e.Info1, e.Info2, r.RIP, e.Detail))
	}
}

// cpuid answers CPUID from the CPU model. Must not allocate.
func (vp *VP) cpuid(e *vcpu.Exit) {
	r := vp.regs
	a, b, c, d := vp.p.hv.Model.CPUID(uint32(r.GPR[x86.RAX]), uint32(r.GPR[x86.RCX]))
	if uint32(r.GPR[x86.RAX]) == x86.CPUIDFeatures {
		b |= uint32(vp.index) << 24 // initial APIC ID
		if !vp.apicEnabled {
			d &^= x86.CPUID1EDXAPIC // follows IA32_APIC_BASE.EN (SDM Vol. 3A 11.4.3)
		}
	}
	r.GPR[x86.RAX], r.GPR[x86.RBX], r.GPR[x86.RCX], r.GPR[x86.RDX] = uint64(a), uint64(b), uint64(c), uint64(d)
	vp.skip(e, opCPUID)
}

// in64BitMode reports whether the VP executes 64-bit code (EFER.LMA and
// CS.L).
func (vp *VP) in64BitMode() bool {
	r := vp.regs
	return r.LongMode() && r.CS.Attrib&x86.SegL != 0
}

func (vp *VP) raiseGP() { vp.cpu.Inject(vcpu.Exception(x86.VectorGP, 0)) }

// opcode is an exiting instruction's unprefixed encoding.
type opcode struct {
	n int
	b [3]byte
}

var (
	opCPUID   = opcode{2, [3]byte{0x0f, 0xa2}}
	opRDMSR   = opcode{2, [3]byte{0x0f, 0x32}}
	opWRMSR   = opcode{2, [3]byte{0x0f, 0x30}}
	opHLT     = opcode{1, [3]byte{0xf4}}
	opVMMCALL = opcode{3, [3]byte{0x0f, 0x01, 0xd9}}
	opMOVCR   = opcode{3, [3]byte{0x0f, 0x22}} // MOV to CRn with its ModRM byte: decoded when no length came
	opIO      = opcode{1, [3]byte{}}           // IOIO exits always carry the length
)

// skip advances RIP past the exiting instruction: by the length the
// hardware reported, else by the opcode's length when the bytes at RIP are
// exactly that opcode, else by decoding it; and ends the interrupt shadow
// the exit reported (the instruction after STI or MOV SS is done). Must
// not allocate.
func (vp *VP) skip(e *vcpu.Exit, op opcode) {
	r := vp.regs
	n := int(e.InstrLen)
	if n == 0 {
		n = vp.decodeLength(op)
	}
	r.RIP += uint64(n)
	if r.CS.Attrib&x86.SegL == 0 {
		r.RIP &= 0xffff_ffff
	}
	if e.Shadow {
		vp.cpu.ClearInterruptShadow()
	}
}

// portIO handles IN/OUT. String and REP forms go through the instruction
// emulator (they touch guest memory). Must not allocate for IN/OUT.
func (vp *VP) portIO(e *vcpu.Exit) {
	r := vp.regs
	if e.String {
		if err := vp.stringIO(e); err != nil {
			vp.p.crash(vp.index, fmt.Errorf("vp %d: port %#x string I/O at rip %#x: %w", vp.index, e.Port, r.RIP, err))
		}
		return
	}
	size := int(e.Size)
	dev := vp.p.portDevice(e.Port)
	if e.In {
		v := uint32(0xffff_ffff) >> (32 - 8*size)
		if dev != nil {
			v = dev.In(e.Port, size) & (0xffff_ffff >> (32 - 8*size))
		}
		switch size {
		case 4:
			r.GPR[x86.RAX] = uint64(v) // a 32-bit destination zero-extends
		case 2:
			r.GPR[x86.RAX] = r.GPR[x86.RAX]&^0xffff | uint64(v)
		default:
			r.GPR[x86.RAX] = r.GPR[x86.RAX]&^0xff | uint64(v)
		}
	} else if dev != nil {
		dev.Out(e.Port, size, uint32(r.GPR[x86.RAX])&(0xffff_ffff>>(32-8*size)))
	}
	vp.skip(e, opIO)
}

func errOverlap(gpa, size uint64) error {
	return fmt.Errorf("hv: range %#x+%#x overlaps guest RAM or another device", gpa, size)
}

// describeState is the VP's mode and the code at RIP, for the report of
// a guest that stopped in a way a person will debug (a triple fault): the
// segment, control and descriptor-table registers that decide how an
// exception is taken, and the instruction bytes up to 15 or the page's
// end. Not on any fast path: it syncs the whole state.
func (vp *VP) describeState() string {
	vp.prepare()
	r := vp.regs
	code := "unreadable"
	la := r.CS.Base + r.RIP
	if n := min(len(vp.fetch), int(x86.PageSize-la%x86.PageSize)); vp.fetchAt(n) {
		code = fmt.Sprintf("% x", vp.fetch[:n])
	}
	return fmt.Sprintf("cs %#x base %#x attrib %#x, ss %#x attrib %#x, tr attrib %#x, cr0 %#x, cr4 %#x, efer %#x, gdtr %#x+%#x, idtr %#x+%#x; code %s",
		r.CS.Selector, r.CS.Base, r.CS.Attrib, r.SS.Selector, r.SS.Attrib, r.TR.Attrib, r.CR0, r.CR4, r.EFER,
		r.GDTR.Base, r.GDTR.Limit, r.IDTR.Base, r.IDTR.Limit, code)
}
