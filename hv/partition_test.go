package hv

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"gohv/hv/vcpu"
)

// TestPartitionEndIsLogged: the root's log gets one event per partition
// end, with the partition and the VP that ended it as attributes.
func TestPartitionEndIsLogged(t *testing.T) {
	var out strings.Builder
	b := &fakeBackend{}
	h := New(b, newTestHost(), NewCPUModel(), slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})))
	p, err := h.NewPartition(Config{Name: "tf", RAMBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b.vcpus[0].next = vcpu.Exit{Kind: vcpu.ExitShutdown}
	p.Start()
	p.Wait()
	p.Destroy()
	got := out.String()
	for _, want := range []string{`msg="partition ended"`, "partition=tf", "state=crashed", "vp=0", `reason="vp 0: triple fault (shutdown) at rip`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %s:\n%s", want, got)
		}
	}
	if r := p.Result(); r.VP != 0 || !errors.Is(r.Err, ErrTripleFault) {
		t.Errorf("%+v", r)
	}
}
