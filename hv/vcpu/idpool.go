package vcpu

import (
	"fmt"
	"sync"
)

// IDPool hands out the tags that keep VPs' cached translations apart: SVM
// ASIDs and VMX VPIDs. ID 0 is the host's and is never handed out. Safe for
// concurrent use.
type IDPool struct {
	mu   sync.Mutex
	next uint32
	max  uint32 // highest ID, inclusive
	free []uint32
}

// NewIDPool makes a pool of IDs 1..max.
func NewIDPool(max uint32) *IDPool { return &IDPool{next: 1, max: max} }

// Alloc takes an ID; released ones are reused first.
func (p *IDPool) Alloc() (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		id := p.free[n-1]
		p.free = p.free[:n-1]
		return id, nil
	}
	if p.next > p.max {
		return 0, fmt.Errorf("all %d IDs in use", p.max)
	}
	p.next++
	return p.next - 1, nil
}

// Release returns an ID taken by Alloc; 0 is ignored.
func (p *IDPool) Release(id uint32) {
	if id == 0 {
		return
	}
	p.mu.Lock()
	p.free = append(p.free, id)
	p.mu.Unlock()
}
