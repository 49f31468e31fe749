package console

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Escape is the key that starts a console command: Ctrl-] (0x1D), as in
// telnet. QEMU's own escape, Ctrl-A, stays QEMU's. After it:
//
//	0-9  send input to partition 0-9 (in the order they were added)
//	n    the next partition
//	?    list the partitions and which has the input
//	s    ask the partition with the input to shut down (gracefully, through
//	     its shutdown integration service: Linux's hv_utils)
//	r    ask it to restart, the same way
//	Ctrl-]  send a literal Ctrl-] to the partition
const Escape = 0x1d

// Input routes what is typed on the serial console to one partition's
// COM1 at a time. Safe for concurrent use.
type Input struct {
	mu      sync.Mutex
	out     io.Writer // where Input says what it did (the console)
	targets []target
	sel     int // index into targets; meaningless when there are none
	esc     bool
}

type target struct {
	name     string
	receive  func([]byte) int
	shutdown func(reboot bool) // nil: the partition offers no graceful shutdown
}

// NewInput makes a router that reports on out.
func NewInput(out io.Writer) *Input { return &Input{out: out} }

// Add makes a partition's COM1 receiver selectable; the first one added has
// the input until the user switches.
func (in *Input) Add(name string, receive func([]byte) int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.targets = append(in.targets, target{name: name, receive: receive})
	if len(in.targets) == 1 {
		in.sel = 0
		fmt.Fprintf(in.out, "%sconsole input goes to %s (Ctrl-] ? lists the partitions)\n", Prefix, name)
	}
}

// SetShutdown gives partition name's s and r commands: f asks its guest
// to shut down (reboot false) or restart. f runs on its own goroutine and
// reports its outcome itself.
func (in *Input) SetShutdown(name string, f func(reboot bool)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range in.targets {
		if in.targets[i].name == name {
			in.targets[i].shutdown = f
		}
	}
}

// Remove drops a partition (it stopped); the input moves to the first
// remaining one.
func (in *Input) Remove(name string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, t := range in.targets {
		if t.name == name {
			in.targets = append(in.targets[:i], in.targets[i+1:]...)
			if in.sel >= i && in.sel > 0 {
				in.sel--
			}
			return
		}
	}
}

// Feed routes bytes typed on the console.
func (in *Input) Feed(b []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	start := 0
	for i, c := range b {
		switch {
		case in.esc:
			in.esc = false
			if c == Escape {
				in.send(b[i : i+1])
			} else {
				in.command(c)
			}
			start = i + 1
		case c == Escape:
			in.send(b[start:i])
			in.esc = true
			start = i + 1
		}
	}
	if !in.esc {
		in.send(b[start:])
	}
}

// send hands bytes to the selected partition. Called with mu held.
func (in *Input) send(b []byte) {
	if len(b) == 0 || len(in.targets) == 0 {
		return
	}
	t := in.targets[in.sel]
	if n := t.receive(b); n < len(b) {
		fmt.Fprintf(in.out, "%swarning: %s's COM1 input is full: %d typed bytes dropped\n", Prefix, t.name, len(b)-n)
	}
}

// command acts on the key after Escape. Called with mu held.
func (in *Input) command(c byte) {
	switch {
	case c >= '0' && c <= '9':
		if i := int(c - '0'); i < len(in.targets) {
			in.sel = i
			fmt.Fprintf(in.out, "%sconsole input goes to %s\n", Prefix, in.targets[i].name)
		} else {
			fmt.Fprintf(in.out, "%sno partition %d (Ctrl-] ? lists them)\n", Prefix, i)
		}
	case c == 'n':
		if len(in.targets) > 0 {
			in.sel = (in.sel + 1) % len(in.targets)
			fmt.Fprintf(in.out, "%sconsole input goes to %s\n", Prefix, in.targets[in.sel].name)
		}
	case c == '?':
		var b []byte
		for i, t := range in.targets {
			mark := " "
			if i == in.sel {
				mark = "*"
			}
			b = fmt.Appendf(b, " %s%d %s", mark, i, t.name)
		}
		fmt.Fprintf(in.out, "%sconsole partitions:%s (Ctrl-] then a digit switches)\n", Prefix, b)
	case c == 's' || c == 'r':
		if len(in.targets) == 0 {
			fmt.Fprintf(in.out, "%sno partition has the input\n", Prefix)
			return
		}
		t := in.targets[in.sel]
		what := map[byte]string{'s': "shut down", 'r': "restart"}[c]
		if t.shutdown == nil {
			fmt.Fprintf(in.out, "%s%s cannot be asked to %s\n", Prefix, t.name, what)
			return
		}
		fmt.Fprintf(in.out, "%sasking %s to %s\n", Prefix, t.name, what)
		go t.shutdown(c == 'r')
	default:
		fmt.Fprintf(in.out, "%sCtrl-] then 0-9, n, ?, s or r (got %q)\n", Prefix, c)
	}
}

// Poll reads the host console with read (which must not block) every
// interval until stop is closed, and routes what it gets.
func (in *Input) Poll(read func([]byte) int, interval time.Duration, stop <-chan struct{}) {
	var buf [64]byte
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n := read(buf[:]); n > 0 {
			in.Feed(buf[:n])
			continue
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
