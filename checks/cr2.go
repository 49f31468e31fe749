package checks

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"gohv/hv"
	"gohv/testguests"
)

// checkCR2AcrossPartitions: a VP's CR2 is the address of its own last
// page fault, even when another partition's VP faulted on the same host
// CPU between its fault and its handler's read. Partition a faults and,
// in its #PF handler, exits to the root, which runs b until b has faulted
// at another address; a's handler then reads CR2. VMX leaves CR2 in the
// register across entries and exits, so without the backend's switch a
// reads b's address (Linux's handlers then resolved the wrong address and
// killed processes that had done nothing wrong). SVM's VMCB holds CR2.
func checkCR2AcrossPartitions(env *Env) (string, error) {
	const (
		addrA = testguests.CR2Page + 0x1a8
		addrB = testguests.CR2Page + 0x1b0
	)
	s := &cr2Scene{aIn: make(chan struct{}), bFaulted: make(chan struct{})}
	setup := func(role int, addr uint64) func(p *hv.Partition) error {
		return func(p *hv.Partition) error {
			p.AddPort(testguests.CR2PortInHandler, 3, &cr2Device{s: s, role: role})
			return testguests.LoadCR2(p, addr, role == 1)
		}
	}
	a, err1 := env.start("cr2a", 4<<20, testguests.Halt, testguests.Options{}, setup(0, addrA))
	defer destroy(a)
	b, err2 := env.start("cr2b", 4<<20, testguests.Halt, testguests.Options{}, setup(1, addrB))
	defer destroy(b)
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	ra, rb := a.WaitOrStop(10*time.Second), b.WaitOrStop(10*time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	detail := fmt.Sprintf("a faulted at %#x, then b at %#x while a was in its handler: a read CR2 %#x, b %#x",
		addrA, addrB, s.cr2[0], s.cr2[1])
	if err := errors.Join(poweredOff(ra, 0, "cr2a"), poweredOff(rb, 0, "cr2b"), s.err); err != nil {
		return "", fmtErr("%s: %w", detail, err)
	}
	if s.cr2[0] != addrA || s.cr2[1] != addrB {
		return "", fmtErr("%s: each must read its own fault's address", detail)
	}
	return detail, nil
}

// cr2Scene orders the two CR2 guests: b faults only once a is in its
// handler, and a's handler reads CR2 only after b has faulted.
type cr2Scene struct {
	aIn, bFaulted chan struct{}

	mu     sync.Mutex
	cr2    [2]uint64 // what each handler read
	halves [2]int    // dwords of cr2[i] reported so far
	err    error
}

// cr2Device is one partition's side of the scene (role 0 is a, 1 is b)
// on the ports testguests.CR2Port*. It blocks its VP's thread, which is
// what lets the other partition's VP run on the one host CPU.
type cr2Device struct {
	s    *cr2Scene
	role int
}

const cr2Wait = 5 * time.Second

func (d *cr2Device) In(port uint16, size int) uint32 {
	if port == testguests.CR2PortWait && d.role == 1 {
		d.wait(d.s.aIn, "a's fault")
	}
	return 0
}

func (d *cr2Device) Out(port uint16, size int, v uint32) {
	s := d.s
	switch port {
	case testguests.CR2PortInHandler:
		if d.role == 0 {
			close(s.aIn)
			d.wait(s.bFaulted, "b's fault")
		} else {
			close(s.bFaulted)
		}
	case testguests.CR2PortReport:
		s.mu.Lock()
		if h := s.halves[d.role]; h < 2 {
			s.cr2[d.role] |= uint64(v) << (32 * h)
			s.halves[d.role]++
		}
		s.mu.Unlock()
	}
}

func (d *cr2Device) wait(c chan struct{}, what string) {
	select {
	case <-c:
	case <-time.After(cr2Wait):
		d.s.mu.Lock()
		d.s.err = errors.Join(d.s.err, fmt.Errorf("partition %c waited %v for %s", 'a'+d.role, cr2Wait, what))
		d.s.mu.Unlock()
	}
}
