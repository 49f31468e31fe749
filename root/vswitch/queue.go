package vswitch

import "sync"

// queue is a bounded FIFO of frames with one consumer: a port's ingress
// queue (producers: the goroutines calling Send; consumer: the forwarder)
// or its egress queue (producer: the forwarder; consumer: the port's
// delivery goroutine).
//
// Each of its len(slots) slots owns one buffer that it keeps for the
// queue's life: push copies a frame into the tail slot's buffer, growing
// it the first time a frame does not fit (to standardBufSize, or to
// MaxFrameSize for a longer frame), so after warm-up push allocates
// nothing and a queue never holds more than len(slots) × MaxFrameSize
// bytes.
//
// The consumer reads the head frame outside the lock (peek, then pop):
// the producer never writes a slot that is still counted in n, and mu
// orders the producer's copy before the consumer's read.
type queue struct {
	mu     sync.Mutex
	slots  [][]byte // slots[i][:len] is the frame in slot i
	head   int      // the oldest frame's slot
	n      int      // frames queued
	closed bool     // push refuses
}

func newQueue(frames int) *queue {
	return &queue{slots: make([][]byte, frames)}
}

// push copies frame into the queue; false when the queue is full or
// closed. It allocates only when the tail slot's buffer is too small.
func (q *queue) push(frame []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.n == len(q.slots) {
		return false
	}
	tail := (q.head + q.n) % len(q.slots)
	buf := q.slots[tail]
	if cap(buf) < len(frame) {
		size := standardBufSize
		if len(frame) > size {
			size = MaxFrameSize
		}
		buf = make([]byte, size)
	}
	buf = buf[:len(frame)]
	copy(buf, frame)
	q.slots[tail] = buf
	q.n++
	return true
}

// peek returns the head frame, nil when the queue is empty. Consumer
// only; the frame stays valid until the consumer's pop.
func (q *queue) peek() []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	return q.slots[q.head]
}

// pop drops the head frame. Consumer only, after a peek that returned a
// frame.
func (q *queue) pop() {
	q.mu.Lock()
	q.head = (q.head + 1) % len(q.slots)
	q.n--
	q.mu.Unlock()
}

// close makes every later push fail; queued frames stay for the consumer
// to drain or abandon.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// len reports the frames queued.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// bufferBytes reports the bytes the slots' buffers hold, for the tests
// that prove the bound.
func (q *queue) bufferBytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	total := 0
	for _, b := range q.slots {
		total += cap(b)
	}
	return total
}
