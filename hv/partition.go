package hv

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gohv/apic"
	"gohv/apic/ioapic"
	"gohv/ept"
	"gohv/hv/synic"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// State is a partition's life-cycle state.
type State uint8

const (
	StateCreated State = iota
	StateRunning
	StateStopped // stopped on request or by the guest's own power-off
	StateCrashed // stopped because the guest did something the hypervisor cannot continue from
)

func (s State) String() string {
	return [...]string{"created", "running", "stopped", "crashed"}[s]
}

// Config describes a partition to create.
type Config struct {
	Name     string
	RAMBytes uint64    // RAM at guest-physical 0, a multiple of 4 KiB
	Console  io.Writer // where the partition's COM1 lines go, prefixed with its name
	// VPs is the number of virtual processors, 1 (for 0) to MaxVPs. VP 0
	// is the bootstrap processor; the others start in wait-for-SIPI, as
	// a PC's application processors do after reset, until the guest
	// starts them with INIT and SIPI through its local APIC.
	VPs int
	// HostCPUs pins VP i to host CPU HostCPUs[i % len(HostCPUs)]; empty,
	// each VP goes to the least loaded online CPU when it starts.
	HostCPUs []int
}

// MaxVPs is the most VPs a partition has: their local APIC IDs (the VP
// indexes) stay below the I/O APIC's ID (IOAPICID), which an xAPIC
// guest's MADT must keep distinct from them.
const MaxVPs = IOAPICID

// Partition is one child partition: its guest-physical memory, its VPs, the
// devices the root emulates for it, and how it ended.
type Partition struct {
	ID   int
	Name string
	Mem  *GuestMemory

	hv       *Hypervisor
	hostCPUs []int // Config.HostCPUs
	multiCPU bool  // the host has CPUs besides the boot CPU online (vp.go: ExitInterrupt)
	log      *slog.Logger
	vps      []*VP
	ports    []portRange
	console  io.Writer
	bus      apic.StaticBus // the VPs' local APICs
	ioapic   *ioapic.IOAPIC
	hyperv   hyperv
	calls    partitionCalls
	hvPorts  synic.Ports // Hyper-V message and event ports (connection IDs)
	com1     *UART

	started  int64 // host Nanotime at Start
	stopping atomic.Bool
	done     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	state  State
	result Result
	// launched: Start ran the VP threads, or Destroy ended a partition
	// that never started; either way done closes once, and a later Start
	// does nothing.
	launched bool
}

// Host is what the core needs of the machine it runs on: physical pages,
// the calibrated clock and the CPUs (metal in the image, fakes in host
// tests).
type Host interface {
	vcpu.HostMemory
	HostClock
	HostCPUs
}

// Hypervisor is the core bound to one vendor backend.
type Hypervisor struct {
	Backend vcpu.Backend
	Host    Host
	Model   *CPUModel
	// Log receives the core's events (partitions started and ended), with
	// the attributes "partition" and "vp". Never nil.
	Log *slog.Logger

	mu     sync.Mutex
	nextID int
	placed [vcpu.MaxHostCPUs]int // VPs running on each host CPU (placement.go)
	tcg    bool                  // the host is QEMU's TCG: CPU 0 takes no VP while others are online (placement.go)
	// busy counts the VPs on each host CPU that are running, not halted
	// or waiting for a SIPI (migrate.go). Each VP's thread adds its own.
	busy [vcpu.MaxHostCPUs]atomic.Int32
}

// New makes the core for a backend. log may be nil (events are dropped).
func New(b vcpu.Backend, host Host, model *CPUModel, log *slog.Logger) *Hypervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hypervisor{Backend: b, Host: host, Model: model, Log: log, nextID: 1, tcg: qemuTCG(hostCPUID)}
}

// NewPartition creates a partition with its RAM and its VPs. The RAM is
// zeroed host pages owned by the partition and mapped read/write/execute in
// its nested tables; nothing else is mapped.
func (h *Hypervisor) NewPartition(c Config) (*Partition, error) {
	if c.RAMBytes == 0 || c.RAMBytes%x86.PageSize != 0 {
		return nil, fmt.Errorf("hv: partition %q: RAM size %#x is not a positive multiple of 4 KiB", c.Name, c.RAMBytes)
	}
	if c.VPs == 0 {
		c.VPs = 1
	}
	if c.VPs < 0 || c.VPs > MaxVPs {
		return nil, fmt.Errorf("hv: partition %q: %d VPs; 1 to %d are allowed", c.Name, c.VPs, MaxVPs)
	}
	for _, cpu := range c.HostCPUs {
		if err := h.usableCPU(cpu); err != nil {
			return nil, fmt.Errorf("hv: partition %q: %w", c.Name, err)
		}
	}
	if c.RAMBytes > IOAPICBase {
		return nil, fmt.Errorf("hv: partition %q: %d MiB of RAM at 0 would cover the interrupt controllers at %#x; at most %d MiB",
			c.Name, c.RAMBytes>>20, IOAPICBase, IOAPICBase>>20)
	}
	h.mu.Lock()
	id := h.nextID
	h.nextID++
	h.mu.Unlock()
	f := ept.NPT
	if h.Backend.NestedFormat() == vcpu.FormatEPT {
		f = ept.EPT
	}
	mem, err := newGuestMemory(h.Host, f)
	if err != nil {
		return nil, fmt.Errorf("hv: partition %q: %w", c.Name, err)
	}
	if err := mem.AddRAM(0, c.RAMBytes); err != nil {
		mem.Destroy()
		return nil, fmt.Errorf("hv: partition %q: %w", c.Name, err)
	}
	p := &Partition{ID: id, Name: c.Name, Mem: mem, hv: h, console: c.Console, hostCPUs: c.HostCPUs, multiCPU: h.othersOnline(),
		log: h.Log.With("partition", c.Name), result: Result{VP: -1},
		done: make(chan struct{})}
	root, err := mem.NestedRoot()
	if err != nil {
		mem.Destroy()
		return nil, fmt.Errorf("hv: partition %q: %w", c.Name, err)
	}
	p.initHyperV()
	p.calls.p = p
	if err := p.newInterruptControllers(); err != nil {
		mem.Destroy()
		return nil, fmt.Errorf("hv: partition %q: %w", c.Name, err)
	}
	for i := range c.VPs {
		if err := p.addVP(root, i); err != nil {
			for _, vp := range p.vps {
				vp.cpu.Close()
			}
			mem.Destroy()
			return nil, fmt.Errorf("hv: partition %q: %w", c.Name, err)
		}
	}
	p.com1 = NewUART(c.Name, c.Console, func(level bool) { p.SetIRQ(COM1IRQ, level) })
	p.AddPort(0x3f8, 8, p.com1)
	p.AddPort(DebugExitPort, 4, debugExit{p})
	return p, nil
}

// addVP makes VP i over a new backend VCPU on the partition's nested
// tables; an application processor (i > 0) waits for a SIPI.
func (p *Partition) addVP(root uint64, i int) error {
	cpu, err := p.hv.Backend.NewVCPU(root)
	if err != nil {
		return fmt.Errorf("vp %d: %w", i, err)
	}
	vp, err := newVP(p, i, cpu)
	if err != nil {
		cpu.Close()
		return err
	}
	vp.waitSIPI = i > 0
	p.vps = append(p.vps, vp)
	return nil
}

// COM1 is the partition's first serial port: its lines go to the
// partition's console, and the root's console input reaches the guest
// through its Receive.
func (p *Partition) COM1() *UART { return p.com1 }

// VP returns virtual processor i.
func (p *Partition) VP(i int) *VP { return p.vps[i] }

// VPCount is the number of virtual processors.
func (p *Partition) VPCount() int { return len(p.vps) }

// placeVPs chooses every VP's host CPU, in VP order (VP.place), before
// their threads start.
func (p *Partition) placeVPs() {
	for _, vp := range p.vps {
		vp.place()
	}
}

// Start runs every VP on its own thread.
func (p *Partition) Start() {
	p.mu.Lock()
	if p.state != StateCreated || p.launched {
		p.mu.Unlock()
		return
	}
	p.state, p.launched = StateRunning, true
	p.mu.Unlock()
	p.log.Debug("partition started", "vps", len(p.vps))
	p.started = p.hv.Host.Nanotime()
	p.placeVPs()
	for _, vp := range p.vps {
		p.wg.Add(1)
		go vp.run()
	}
	go func() {
		p.wg.Wait()
		p.mu.Lock()
		if p.state == StateRunning {
			// Every VP returned without a stop: cannot happen today (a VP
			// runs until the partition stops), kept as a defined end.
			p.state = StateStopped
			p.result = Result{State: StateStopped, Err: fmt.Errorf("all VPs ended: %w", ErrStopRequested), VP: -1}
		}
		r := p.result
		p.mu.Unlock()
		for _, vp := range p.vps {
			vp.cpu.Close()
		}
		attrs := append(resultAttrs(r), "ran", time.Duration(p.hv.Host.Nanotime()-p.started).Round(time.Microsecond).String(),
			"exits", p.exitSummary())
		if p.hv.Host.CPUOnline(1) {
			attrs = append(attrs, "host-cpus", p.ranOn()) // more than one CPU to choose from
		}
		var moves uint64
		for _, vp := range p.vps {
			moves += vp.Migrations()
		}
		if moves > 0 {
			attrs = append(attrs, "vp-moves", moves)
		}
		p.log.Info("partition ended", attrs...)
		close(p.done)
	}()
}

// Stop asks the partition to stop: every VP leaves the guest at its next
// exit (a host timer tick at the latest) or wakes from HLT, and its thread is
// released. The result wraps ErrStopRequested with the reason. Safe to call
// more than once and from any goroutine; the first end wins.
func (p *Partition) Stop(reason string) {
	p.end(StateStopped, fmt.Errorf("%w: %s", ErrStopRequested, reason), 0, false)
}

// PowerOff ends the partition because its guest turned itself off
// (ErrPowerOff, with why: "ACPI S5"). Device models call it; safe from any
// goroutine.
func (p *Partition) PowerOff(why string) {
	p.end(StateStopped, fmt.Errorf("%w: %s", ErrPowerOff, why), 0, false)
}

// Reboot ends the partition because its guest asked to be reset
// (ErrReboot, with the device that carried the request). Whether it starts
// again is the root's decision. Safe from any goroutine.
func (p *Partition) Reboot(why string) {
	p.end(StateStopped, fmt.Errorf("%w: %s", ErrReboot, why), 0, false)
}

// Fail ends the partition because the root failed it: a service of the
// root (a VSP) broke on this partition's input. err is reported as the
// reason, wrapped in ErrHypervisor. Safe from any goroutine.
func (p *Partition) Fail(err error) {
	p.end(StateCrashed, fmt.Errorf("%w: %w", ErrHypervisor, err), 0, false)
}

// crash ends the partition because of something VP vp's guest did (or,
// for ErrHypervisor, because the backend failed). err wraps one of the
// Err* reasons; an error that wraps none is classified as ErrUnsupported.
func (p *Partition) crash(vp int, err error) {
	for _, known := range []error{ErrTripleFault, ErrGuestCrash, ErrOutsideMemory, ErrInvalidState, ErrUnsupported, ErrHypervisor} {
		if errors.Is(err, known) {
			p.endBy(vp, StateCrashed, err, 0, false)
			return
		}
	}
	p.endBy(vp, StateCrashed, fmt.Errorf("%w: %w", ErrUnsupported, err), 0, false)
}

func (p *Partition) end(s State, err error, status uint32, hasStatus bool) {
	p.endBy(-1, s, err, status, hasStatus)
}

// endBy records the first end; vp is the VP that caused it, -1 for none.
func (p *Partition) endBy(vp int, s State, err error, status uint32, hasStatus bool) {
	p.mu.Lock()
	first := !p.stopping.Load()
	if first {
		p.stopping.Store(true)
		if p.state == StateRunning || p.state == StateCreated {
			p.state = s
		}
		p.result = Result{State: p.state, Err: err, Status: status, HasStatus: hasStatus, VP: vp}
	}
	p.mu.Unlock()
	if first {
		for _, vp := range p.vps {
			vp.Kick() // a halted VP wakes to see the stop
		}
	}
}

// Destroy frees the partition's memory after it has ended; the root may
// inspect the memory until then. A partition that was never started (its
// setup failed) ends here, its VPs never having run.
func (p *Partition) Destroy() {
	p.mu.Lock()
	never := !p.launched
	if never {
		p.launched = true
		if p.state == StateCreated {
			p.state = StateStopped
			p.result = Result{State: StateStopped, Err: fmt.Errorf("destroyed before it started: %w", ErrStopRequested), VP: -1}
		}
		p.stopping.Store(true)
	}
	p.mu.Unlock()
	if never {
		for _, vp := range p.vps {
			vp.cpu.Close()
		}
		close(p.done)
	}
	<-p.done
	p.Mem.Destroy()
}

// Done is closed when every VP thread has ended.
func (p *Partition) Done() <-chan struct{} { return p.done }

// Wait blocks until Done.
func (p *Partition) Wait() { <-p.done }

// WaitOrStop waits for the partition to end by itself for at most timeout,
// then stops it (ErrStopRequested, "timed out after ...") and waits for
// its VP threads. It returns how the partition ended.
func (p *Partition) WaitOrStop(timeout time.Duration) Result {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Stop(fmt.Sprintf("timed out after %v", timeout))
		p.Wait()
	}
	return p.Result()
}

// Result says how the partition ended.
type Result struct {
	State State
	// Err is why it ended: it wraps one of ErrStopRequested, ErrPowerOff,
	// ErrReboot, ErrTripleFault, ErrGuestCrash, ErrOutsideMemory, ErrInvalidState,
	// ErrUnsupported, ErrHypervisor. nil while the partition runs.
	Err       error
	Status    uint32 // the value written to the debug-exit port
	HasStatus bool
	// VP is the virtual processor whose exit ended the partition, -1 when
	// none did (a stop requested by the root).
	VP int
}

// Result is how the partition ended, or a zero Err while it runs.
func (p *Partition) Result() Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.result
	r.State = p.state
	return r
}

// PoweredOffWith reports whether the guest turned itself off with status.
func (r Result) PoweredOffWith(status uint32) bool {
	return r.State == StateStopped && errors.Is(r.Err, ErrPowerOff) && r.HasStatus && r.Status == status
}

func (r Result) String() string {
	reason := "running"
	if r.Err != nil {
		reason = r.Err.Error()
	}
	if r.HasStatus {
		return fmt.Sprintf("%s: %s, status %#x", r.State, reason, r.Status)
	}
	return fmt.Sprintf("%s: %s", r.State, reason)
}

// exitSummary lists the VPs' exits by kind, most frequent first
// ("io:1234,msr-write:56"), for the end-of-life report.
// ranOn lists the host CPU each VP ran on ("3,2": VP 0 on CPU 3, VP 1 on
// CPU 2; "-" for a VP that never ran).
func (p *Partition) ranOn() string {
	s := make([]string, len(p.vps))
	for i, vp := range p.vps {
		s[i] = "-"
		if c := vp.ranOn.Load(); c >= 0 {
			s[i] = strconv.Itoa(int(c))
		}
	}
	return strings.Join(s, ",")
}

func (p *Partition) exitSummary() string {
	var n [vcpu.NumExitKinds]uint64
	for _, vp := range p.vps {
		for k, c := range vp.Exits {
			n[k] += c
		}
	}
	kinds := make([]vcpu.ExitKind, 0, len(n))
	for k := range n {
		if n[k] > 0 {
			kinds = append(kinds, vcpu.ExitKind(k))
		}
	}
	sort.Slice(kinds, func(a, b int) bool { return n[kinds[a]] > n[kinds[b]] })
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%v:%d", k, n[k])
	}
	return b.String()
}

func resultAttrs(r Result) []any {
	a := []any{"state", r.State.String()}
	if r.VP >= 0 {
		a = append(a, "vp", r.VP)
	}
	a = append(a, "reason", r.Err)
	if r.HasStatus {
		a = append(a, "status", fmt.Sprintf("%#x", r.Status))
	}
	return a
}
