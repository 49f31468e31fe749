package hostnet

import (
	"sync"
)

// Wire is an in-memory link between two stacks, standing in for a switch
// in tests and in-image checks: each direction is an Uplink that copies the
// frame into a queue of queue frames (a full queue drops, as a switch
// port does) and a goroutine that delivers the queue to the other stack.
type Wire struct {
	ab, ba *wireEnd
	wg     sync.WaitGroup
	once   sync.Once
}

// wireEnd is one direction: Send queues, the goroutine delivers.
type wireEnd struct {
	q    chan []byte
	drop func(frame []byte) bool // nil: drop only on a full queue
	done chan struct{}
}

func (e *wireEnd) Send(frame []byte) bool {
	if e.drop != nil && e.drop(frame) {
		return false
	}
	c := make([]byte, len(frame))
	copy(c, frame)
	select {
	case e.q <- c:
		return true
	case <-e.done:
		return false
	default:
		return false
	}
}

// Connect attaches a and b to each other through a new Wire with queue
// frames of room in each direction. drop, if not nil, is asked about each
// frame sent and refuses it when true (a lossy wire); it may be called
// from several goroutines. Disconnect ends the wire's goroutines; the
// stacks keep its ends as their uplinks, which then refuse every frame.
func Connect(a, b *Stack, queue int, drop func(frame []byte) bool) *Wire {
	w := &Wire{
		ab: &wireEnd{q: make(chan []byte, queue), drop: drop, done: make(chan struct{})},
		ba: &wireEnd{q: make(chan []byte, queue), drop: drop, done: make(chan struct{})},
	}
	w.wg.Add(2)
	go w.run(w.ab, b)
	go w.run(w.ba, a)
	a.Attach(w.ab)
	b.Attach(w.ba)
	return w
}

func (w *Wire) run(e *wireEnd, to *Stack) {
	defer w.wg.Done()
	for {
		select {
		case f := <-e.q:
			to.Deliver(f)
		case <-e.done:
			return
		}
	}
}

// Disconnect stops both directions; frames still queued are lost. It
// returns when the wire's goroutines have ended.
func (w *Wire) Disconnect() {
	w.once.Do(func() {
		close(w.ab.done)
		close(w.ba.done)
	})
	w.wg.Wait()
}
