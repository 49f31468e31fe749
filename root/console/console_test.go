package console

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestHandlerWritesTheSerialProtocol(t *testing.T) {
	var out strings.Builder
	log := slog.New(NewHandler(&out, slog.LevelInfo))
	log.With("partition", "mb0").Info("partition ended", "state", "stopped",
		"reason", errors.New("power-off through the debug-exit port"), "status", "0x1f")
	log.Debug("not shown")
	log.Warn("no ACPI S5", "err", "no \\_S5 object")
	log.WithGroup("vmbus").With("channel", 3).Error("gpadl refused", "gpadl", 7, "why", "")
	want := `gohv: partition ended partition=mb0 state=stopped reason="power-off through the debug-exit port" status=0x1f
gohv: warning: no ACPI S5 err="no \\_S5 object"
gohv: error: gpadl refused vmbus.channel=3 vmbus.gpadl=7 vmbus.why=""
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestHandlerGroupsAndNil(t *testing.T) {
	var out strings.Builder
	slog.New(NewHandler(&out, slog.LevelInfo)).Info("x", slog.Group("vp", "index", 1, "rip", "0x10"), "err", nil)
	if got := out.String(); got != "gohv: x vp.index=1 vp.rip=0x10 err=<nil>\n" {
		t.Errorf("%q", got)
	}
}

// TestWriterKeepsLinesWhole: concurrent writers never interleave within a
// write.
func TestWriterKeepsLinesWhole(t *testing.T) {
	var out strings.Builder
	w := New(&out)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				w.Write([]byte("abcdefghijklmnopqrstuvwxyz\n"))
			}
		}()
	}
	wg.Wait()
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if l != "abcdefghijklmnopqrstuvwxyz" {
			t.Fatalf("torn line %q", l)
		}
	}
}
