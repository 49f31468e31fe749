// Package console is the root partition's serial console: one writer that
// the hypervisor's own lines and every partition's COM1 lines share, a line
// at a time, and the log/slog handler that writes the root's events there
// in the serial protocol ("gohv: <message> key=value ...") so a person can
// grep a boot log by partition, VP or channel.
package console

import (
	"io"
	"sync"
)

// Writer serialises whole writes onto an underlying writer: each Write
// (a partition's line, a log record) reaches it uninterrupted. Safe for
// concurrent use.
type Writer struct {
	mu  sync.Mutex
	out io.Writer
}

// New wraps out.
func New(out io.Writer) *Writer { return &Writer{out: out} }

func (w *Writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}
