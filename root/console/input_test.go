package console

import (
	"strings"
	"testing"
)

type sink struct {
	got []byte
	cap int
}

func (s *sink) receive(b []byte) int {
	n := min(len(b), s.cap-len(s.got))
	s.got = append(s.got, b[:n]...)
	return n
}

// TestInputRouting: typed bytes go to the selected partition; Ctrl-]
// switches, lists, and passes a literal Ctrl-] on; a full receiver is
// reported.
func TestInputRouting(t *testing.T) {
	var out strings.Builder
	in := NewInput(&out)
	a, b := &sink{cap: 100}, &sink{cap: 4}
	in.Feed([]byte("lost")) // no partition yet
	in.Add("linux0", a.receive)
	in.Add("linux1", b.receive)
	in.Feed([]byte("ls\n"))
	in.Feed([]byte{'p', 'w', Escape}) // escape split across reads
	in.Feed([]byte{'1', 'u', 'n', 'a', 'm', 'e'})
	in.Feed([]byte{Escape, '?', Escape, Escape, Escape, '0', 'x'})
	if string(a.got) != "ls\npwx" {
		t.Errorf("linux0 got %q", a.got)
	}
	if string(b.got) != "unam" {
		t.Errorf("linux1 got %q", b.got)
	}
	log := out.String()
	for _, want := range []string{"console input goes to linux0", "console input goes to linux1",
		"warning: linux1's COM1 input is full: 1 typed bytes dropped", "console partitions:  0 linux0 *1 linux1"} {
		if !strings.Contains(log, want) {
			t.Errorf("console lacks %q:\n%s", want, log)
		}
	}
	in.Remove("linux0")
	in.Feed([]byte("z"))
	if string(b.got) != "unam" || string(a.got) != "ls\npwx" {
		t.Errorf("after removal: %q %q", a.got, b.got)
	}
}

func TestLiteralEscape(t *testing.T) {
	var out strings.Builder
	in := NewInput(&out)
	a := &sink{cap: 100}
	in.Add("p", a.receive)
	in.Feed([]byte{Escape, Escape, 'k'})
	if string(a.got) != string([]byte{Escape, 'k'}) {
		t.Fatalf("%q", a.got)
	}
}

// TestShutdownCommands: Ctrl-] s and r ask the partition with the input,
// once each, and say so; a partition without the action says it cannot.
func TestShutdownCommands(t *testing.T) {
	var out strings.Builder
	in := NewInput(&out)
	a, b := &sink{cap: 100}, &sink{cap: 100}
	in.Add("linux0", a.receive)
	in.Add("mb0", b.receive)
	asked := make(chan bool, 4)
	in.SetShutdown("linux0", func(reboot bool) { asked <- reboot })
	in.Feed([]byte{Escape, 's'})
	if r := <-asked; r {
		t.Error("s asked for a restart")
	}
	in.Feed([]byte{Escape, 'r'})
	if r := <-asked; !r {
		t.Error("r asked for a shutdown")
	}
	in.Feed([]byte{Escape, 'n', Escape, 's'})
	select {
	case <-asked:
		t.Error("mb0's s reached linux0")
	default:
	}
	if len(a.got) != 0 || len(b.got) != 0 {
		t.Errorf("command keys reached the guests: %q %q", a.got, b.got)
	}
	log := out.String()
	for _, want := range []string{"asking linux0 to shut down", "asking linux0 to restart", "mb0 cannot be asked to shut down"} {
		if !strings.Contains(log, want) {
			t.Errorf("console lacks %q:\n%s", want, log)
		}
	}
}
