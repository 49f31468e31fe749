package initramfs

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Boot is what a Linux boot printed on its serial console.
type Boot struct {
	// RunInit is the kernel's printk timestamp on "Run /init as init
	// process" (init/main.c run_init_process): the guest's own time from
	// its clock's start to handing over to user space. HasRunInit says
	// whether the line was there.
	RunInit    time.Duration
	Init       string // the program that line names
	HasRunInit bool
	// Report holds the init's "guest: key value" lines (DefaultInit's),
	// Keys their keys in order. A key given twice keeps its last value.
	Report map[string]string
	Keys   []string
	Panic  string // the "Kernel panic - not syncing: ..." text, if any
}

var (
	runInitRE = regexp.MustCompile(`\[\s*(\d+)\.(\d+)\] Run (\S+) as init process`)
	// A report line: "guest: key value", alone or after a partition's
	// "name: " prefix as gohv's console prints it.
	reportRE = regexp.MustCompile(`^(?:[\w.-]+: )?guest: (\S+)(?: (.*))?$`)
	panicRE  = regexp.MustCompile(`Kernel panic - not syncing: (.*)$`)
)

// ParseConsole reads a boot's console log.
func ParseConsole(log []byte) Boot {
	b := Boot{Report: map[string]string{}}
	for _, line := range bytes.Split(log, []byte("\n")) {
		l := strings.TrimRight(string(line), "\r")
		if m := runInitRE.FindStringSubmatch(l); m != nil && !b.HasRunInit {
			if d, ok := printkTime(m[1], m[2]); ok {
				b.RunInit, b.Init, b.HasRunInit = d, m[3], true
			}
			continue
		}
		if m := reportRE.FindStringSubmatch(l); m != nil {
			if _, seen := b.Report[m[1]]; !seen {
				b.Keys = append(b.Keys, m[1])
			}
			b.Report[m[1]] = strings.TrimSpace(m[2])
			continue
		}
		if m := panicRE.FindStringSubmatch(l); m != nil && b.Panic == "" {
			b.Panic = strings.TrimSpace(m[1])
		}
	}
	return b
}

// printkTime turns "[ 1.740123]" (seconds and a fraction, microseconds as
// printk prints them) into a duration.
func printkTime(sec, frac string) (time.Duration, bool) {
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || len(frac) > 9 || s > 1<<32 {
		return 0, false
	}
	f, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(s)*time.Second + time.Duration(f), true
}

// PoweredOff reports whether the init got to its last report line.
func (b Boot) PoweredOff() bool {
	_, ok := b.Report["poweroff"]
	return ok
}

// Stopwatch is an io.Writer to put in a console's stream: it notes the wall
// time, since Start, at which the "Run /init" line arrived.
type Stopwatch struct {
	Start time.Time

	mu      sync.Mutex
	partial []byte
	at      time.Duration
	seen    bool
}

// NewStopwatch starts one now.
func NewStopwatch() *Stopwatch { return &Stopwatch{Start: time.Now()} }

func (s *Stopwatch) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen {
		return len(p), nil
	}
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		if runInitRE.Match(s.partial[:i]) {
			s.at, s.seen = time.Since(s.Start), true
			s.partial = nil
			break
		}
		s.partial = s.partial[i+1:]
	}
	return len(p), nil
}

// RunInit returns the wall time at which "Run /init" arrived, and whether
// it has.
func (s *Stopwatch) RunInit() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at, s.seen
}
