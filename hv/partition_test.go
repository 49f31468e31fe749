package hv

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gohv/hv/vcpu"
	"gohv/x86"
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
	b.vcpus[0].regs = vcpu.Regs{RIP: 0x1000, CR0: x86.CR0PE, CS: vcpu.Segment{Selector: 8, Attrib: 0xc9b}}
	if err := p.Mem.WriteRAM(0x1000, []byte{0x0f, 0x22, 0xc0}); err != nil {
		t.Fatal(err)
	}
	p.Start()
	p.Wait()
	p.Destroy()
	got := out.String()
	for _, want := range []string{`msg="partition ended"`, "partition=tf", "state=crashed", "vp=0", `reason="vp 0: triple fault (shutdown) at rip 0x1000 (cs 0x8 base 0x0 attrib 0xc9b`, "cr0 0x1,", "code 0f 22 c0 00"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %s:\n%s", want, got)
		}
	}
	if r := p.Result(); r.VP != 0 || !errors.Is(r.Err, ErrTripleFault) {
		t.Errorf("%+v", r)
	}
}

// TestPowerOffAndReboot: device models end a partition with the reason a
// guest gave; the first end wins.
func TestPowerOffAndReboot(t *testing.T) {
	p, _, _, _ := newTestPartition(t, 1<<20)
	p.PowerOff("ACPI S5")
	p.Reboot("i8042 reset")
	if r := p.Result(); r.State != StateStopped || !errors.Is(r.Err, ErrPowerOff) || errors.Is(r.Err, ErrReboot) ||
		r.Err.Error() != "power-off: ACPI S5" {
		t.Fatalf("%v", r)
	}
	q, _, _, _ := newTestPartition(t, 1<<20)
	q.Reboot("i8042 reset")
	if r := q.Result(); !errors.Is(r.Err, ErrReboot) {
		t.Fatalf("%v", r)
	}
}

// TestDestroyBeforeStart: a partition whose setup failed is destroyed
// without ever running: Destroy returns (it used to wait for VP threads
// that never started), its RAM goes back to the host, it says it was
// stopped, and a Start after it runs nothing.
func TestDestroyBeforeStart(t *testing.T) {
	p, _, host, _ := newTestPartition(t, 1<<20)
	held := len(host.Pages)
	done := make(chan struct{})
	go func() {
		p.Destroy()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Destroy of a partition never started did not return")
	}
	if n := len(host.Pages); n >= held {
		t.Errorf("host pages held: %d before Destroy, %d after", held, n)
	}
	if r := p.Result(); r.State != StateStopped || !errors.Is(r.Err, ErrStopRequested) {
		t.Errorf("result %+v", r)
	}
	p.Start()
	if p.VP(0).runs.Load() != 0 || p.VP(0).hostCPU.Load() != -1 {
		t.Error("Start after Destroy ran a VP")
	}
}
