package linuxtest

import (
	"bytes"
	"strings"
	"sync"
)

// Console is a serial console's output as it arrives, for a test that
// answers it (an emulator's Console writer): WaitLine blocks until a whole
// line arrives.
type Console struct {
	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	part  []byte
	done  bool
}

// NewConsole returns an empty console.
func NewConsole() *Console {
	c := &Console{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Write takes output; every line it completes is kept without its line
// ending.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.part = append(c.part, p...)
	for {
		i := bytes.IndexByte(c.part, '\n')
		if i < 0 {
			break
		}
		c.lines = append(c.lines, strings.TrimRight(string(c.part[:i]), "\r"))
		c.part = c.part[i+1:]
	}
	c.cond.Broadcast()
	return len(p), nil
}

// Close wakes waiters for good: nothing more will arrive.
func (c *Console) Close() {
	c.mu.Lock()
	c.done = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

// WaitLine waits for a line satisfying ok among those from index from on,
// and returns the index after it; false when the output ended without one.
func (c *Console) WaitLine(from int, ok func(string) bool) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for ; from < len(c.lines); from++ {
			if ok(c.lines[from]) {
				return from + 1, true
			}
		}
		if c.done {
			return from, false
		}
		c.cond.Wait()
	}
}
