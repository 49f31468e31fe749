package hv

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"gohv/ept"
)

// State is a partition's life-cycle state.
type State uint8

const (
	StateCreated State = iota
	StateRunning
	StateStopped // stopped on request or by its own debug-exit write
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
}

// Partition is one child partition: its guest-physical memory, its VPs, the
// devices the root emulates for it, and how it ended.
type Partition struct {
	ID   int
	Name string
	Mem  *GuestMemory

	hv      *Hypervisor
	vps     []*VP
	ports   []portRange
	console io.Writer

	stopping atomic.Bool
	stopCh   chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup

	mu        sync.Mutex
	state     State
	reason    string
	status    uint32
	hasStatus bool
}

// Hypervisor is the core bound to one vendor backend.
type Hypervisor struct {
	Backend Backend
	Host    HostMemory
	Model   *CPUModel

	mu     sync.Mutex
	nextID int
}

// New makes the core for a backend.
func New(b Backend, host HostMemory) *Hypervisor {
	return &Hypervisor{Backend: b, Host: host, Model: NewCPUModel(), nextID: 1}
}

// NewPartition creates a partition with its RAM and one VP. The RAM is
// zeroed host pages owned by the partition and mapped read/write/execute in
// its nested tables; nothing else is mapped.
func (h *Hypervisor) NewPartition(c Config) (*Partition, error) {
	if c.RAMBytes == 0 || c.RAMBytes%PageSize != 0 {
		return nil, fmt.Errorf("hv: partition %q: RAM size %#x is not a positive multiple of 4 KiB", c.Name, c.RAMBytes)
	}
	h.mu.Lock()
	id := h.nextID
	h.nextID++
	h.mu.Unlock()
	f := ept.NPT
	if h.Backend.NestedFormat() == FormatEPT {
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
	p := &Partition{ID: id, Name: c.Name, Mem: mem, hv: h, console: c.Console,
		stopCh: make(chan struct{}), done: make(chan struct{})}
	root, err := mem.NestedRoot()
	if err != nil {
		mem.Destroy()
		return nil, fmt.Errorf("hv: partition %q: %w", c.Name, err)
	}
	cpu, err := h.Backend.NewVCPU(root)
	if err != nil {
		mem.Destroy()
		return nil, fmt.Errorf("hv: partition %q: vp 0: %w", c.Name, err)
	}
	p.vps = append(p.vps, newVP(p, 0, cpu))
	p.AddPort(0x3f8, 8, NewUART(c.Name, c.Console))
	p.AddPort(DebugExitPort, 4, debugExit{p})
	return p, nil
}

// VP returns virtual processor i.
func (p *Partition) VP(i int) *VP { return p.vps[i] }

// Start runs every VP on its own thread.
func (p *Partition) Start() {
	p.mu.Lock()
	if p.state != StateCreated {
		p.mu.Unlock()
		return
	}
	p.state = StateRunning
	p.mu.Unlock()
	for _, vp := range p.vps {
		p.wg.Add(1)
		go vp.run()
	}
	go func() {
		p.wg.Wait()
		p.mu.Lock()
		if p.state == StateRunning {
			p.state = StateStopped
			if p.reason == "" {
				p.reason = "all VPs ended"
			}
		}
		p.mu.Unlock()
		for _, vp := range p.vps {
			vp.cpu.Close()
		}
		close(p.done)
	}()
}

// Stop asks the partition to stop: every VP leaves the guest at its next
// exit (a host timer tick at the latest) or wakes from HLT, and its thread is
// released. Safe to call more than once and from any goroutine.
func (p *Partition) Stop(reason string) { p.end(StateStopped, reason, 0, false) }

// crash ends the partition because of something its guest did.
func (p *Partition) crash(reason string) { p.end(StateCrashed, reason, 0, false) }

func (p *Partition) end(s State, reason string, status uint32, hasStatus bool) {
	p.mu.Lock()
	first := !p.stopping.Load()
	if first {
		p.stopping.Store(true)
		if p.state == StateRunning || p.state == StateCreated {
			p.state = s
		}
		p.reason, p.status, p.hasStatus = reason, status, hasStatus
	}
	p.mu.Unlock()
	if first {
		close(p.stopCh)
	}
}

// Destroy frees the partition's memory after it has ended; the root may
// inspect the memory until then.
func (p *Partition) Destroy() {
	<-p.done
	p.Mem.Destroy()
}

// Done is closed when every VP thread has ended.
func (p *Partition) Done() <-chan struct{} { return p.done }

// Wait blocks until Done.
func (p *Partition) Wait() { <-p.done }

// Result says how the partition ended.
type Result struct {
	State     State
	Reason    string
	Status    uint32 // the value written to the debug-exit port
	HasStatus bool
}

func (p *Partition) Result() Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Result{p.state, p.reason, p.status, p.hasStatus}
}

func (r Result) String() string {
	if r.HasStatus {
		return fmt.Sprintf("%s: %s, status %#x", r.State, r.Reason, r.Status)
	}
	return fmt.Sprintf("%s: %s", r.State, r.Reason)
}
