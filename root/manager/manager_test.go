package manager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/hv/vcpu/vcputest"
	"gohv/root/config"
	"gohv/root/devices"
	"gohv/testguests"
	"gohv/x86"
)

// host is fake physical memory with a fixed clock.
type host struct{ *vcputest.FakeHost }

func (host) Nanotime() int64      { return 1 }
func (host) TSC() uint64          { return 1 }
func (host) TSCHz() uint64        { return 1e9 }
func (host) SetAlarm(int64)       {}
func (host) CPUOnline(i int) bool { return i == 0 }
func (host) PinThread(int) error  { return nil }
func (host) KickCPU(int)          {}
func (host) CurrentCPU() int      { return 0 }

// scriptVCPU exits with OUT port, value on its first entry: a guest that
// at once powers off (debug-exit) or resets (0xCF9).
type scriptVCPU struct {
	regs      vcpu.Regs
	port      uint16
	value     uint64
	ran       bool
	vcpu.VCPU // the methods the core does not use here panic if called
}

func (v *scriptVCPU) Run(e *vcpu.Exit) error {
	if !v.ran {
		v.ran = true
		v.regs.GPR[x86.RAX] = v.value
		*e = vcpu.Exit{Kind: vcpu.ExitIO, Port: v.port, Size: 1, InstrLen: 1}
		return nil
	}
	*e = vcpu.Exit{Kind: vcpu.ExitHLT, InstrLen: 1}
	return nil
}
func (v *scriptVCPU) Regs() *vcpu.Regs            { return &v.regs }
func (v *scriptVCPU) MarkStateDirty()             {}
func (v *scriptVCPU) Bind(int) error              { return nil }
func (v *scriptVCPU) Unbind()                     {}
func (v *scriptVCPU) SyncState()                  {}
func (v *scriptVCPU) Inject(vcpu.Event)           {}
func (v *scriptVCPU) EventPending() bool          { return false }
func (v *scriptVCPU) DropEvents()                 {}
func (v *scriptVCPU) FlushGuestTLB()              {}
func (v *scriptVCPU) InterruptShadow() bool       { return false }
func (v *scriptVCPU) ClearInterruptShadow()       {}
func (v *scriptVCPU) RequestInterruptWindow(bool) {}
func (v *scriptVCPU) SetTPRThreshold(uint8)       {}
func (v *scriptVCPU) Close() error                { return nil }

type backend struct {
	mu    sync.Mutex
	port  uint16
	value uint64
	made  int
}

func (b *backend) Name() string                    { return "script" }
func (b *backend) Report() []string                { return nil }
func (b *backend) NestedFormat() vcpu.NestedFormat { return vcpu.FormatNPT }
func (b *backend) HypercallInstruction() [3]byte   { return [3]byte{0x0f, 0x01, 0xd9} }
func (b *backend) NewVCPU(uint64) (vcpu.VCPU, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.made++
	return &scriptVCPU{port: b.port, value: b.value}, nil
}

type fakeConsole struct {
	mu    sync.Mutex
	added []string
	strings.Builder
}

func (c *fakeConsole) Add(name string, _ func([]byte) int) {
	c.mu.Lock()
	c.added = append(c.added, name)
	c.mu.Unlock()
}
func (c *fakeConsole) Remove(string)                         {}
func (c *fakeConsole) SetShutdown(string, func(reboot bool)) {}
func (c *fakeConsole) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Builder.Write(b)
}

func newManager(t *testing.T, b *backend) (*Manager, *fakeConsole) {
	t.Helper()
	h := hv.New(b, host{vcputest.NewFakeHost()}, hv.NewCPUModel(), nil)
	con := &fakeConsole{}
	mods := map[string][]byte{"mbkernel": testguests.MultibootKernel()}
	if hdr, err := os.ReadFile("../loader/testdata/vmlinuz-6.1.0-57-amd64.head"); err == nil {
		mods["vmlinuz"] = hdr
	}
	return New(h, mods, con, slog.New(slog.DiscardHandler)), con
}

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("c.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPartitionRunsToItsEnd: a configured Multiboot partition is built,
// its console registered, started, and its end recorded.
func TestPartitionRunsToItsEnd(t *testing.T) {
	m, con := newManager(t, &backend{port: hv.DebugExitPort, value: 7})
	if err := m.Start(parse(t, "[[partition]]\nname = \"mb0\"\nmemory_mib = 16\nkernel = \"mbkernel\"\n")); err != nil {
		t.Fatal(err)
	}
	r := m.Wait()["mb0"]
	if !r.PoweredOffWith(7) || len(con.added) != 1 || con.added[0] != "mb0" {
		t.Fatalf("%v; console %v", r, con.added)
	}
}

// TestRebootRestartsBounded: a guest that resets (0xCF9) is restarted as
// configured, but not forever.
func TestRebootRestartsBounded(t *testing.T) {
	b := &backend{port: 0xcf9, value: 6}
	m, _ := newManager(t, b)
	if err := m.Start(parse(t, "[[partition]]\nname = \"r\"\nmemory_mib = 16\nkernel = \"mbkernel\"\non_reboot = \"restart\"\n")); err != nil {
		t.Fatal(err)
	}
	r := m.Wait()["r"]
	if !errors.Is(r.Err, hv.ErrReboot) || b.made != maxRestarts+1 {
		t.Fatalf("%v after %d partitions", r, b.made)
	}
	b2 := &backend{port: 0xcf9, value: 6}
	m2, _ := newManager(t, b2)
	m2.Start(parse(t, "[[partition]]\nname = \"s\"\nmemory_mib = 16\nkernel = \"mbkernel\"\non_reboot = \"stop\"\n"))
	if r := m2.Wait()["s"]; !errors.Is(r.Err, hv.ErrReboot) || b2.made != 1 {
		t.Fatalf("on_reboot=stop: %v after %d partitions", r, b2.made)
	}
}

// TestBadKernelNamesTheField: a kernel the loader refuses is reported with
// the configuration's file, line and field, and no partition starts.
func TestBadKernelNamesTheField(t *testing.T) {
	m, _ := newManager(t, &backend{port: hv.DebugExitPort})
	if _, ok := m.modules["vmlinuz"]; !ok {
		t.Skip("no kernel header in root/loader/testdata")
	}
	err := m.Start(parse(t, "[[partition]]\nname = \"l\"\nmemory_mib = 256\n\nkernel = \"vmlinuz\"\n"))
	if err == nil || !strings.Contains(err.Error(), `c.toml:5: partition[0].kernel: module "vmlinuz": `) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("%v", err)
	}
	if len(m.Wait()) != 0 {
		t.Fatal("a partition ran")
	}
}

// tinyLinux is Debian's kernel header (root/loader's test data) made into
// a bzImage a 16 MiB partition holds: 4 KiB of zeros for the
// protected-mode code, init_size 64 KiB, pref_address 4 MiB. false without
// the test data.
func tinyLinux(t *testing.T) ([]byte, bool) {
	t.Helper()
	head, err := os.ReadFile("../loader/testdata/vmlinuz-6.1.0-57-amd64.head")
	if err != nil {
		return nil, false
	}
	const (
		setupSects  = 0x1f1 // the setup header's fields (root/loader)
		sysSize     = 0x1f4
		prefAddress = 0x258
		initSize    = 0x260
		code        = 4096
	)
	le := binary.LittleEndian
	le.PutUint32(head[sysSize:], code/16)
	le.PutUint64(head[prefAddress:], 4<<20)
	le.PutUint32(head[initSize:], 64<<10)
	img := make([]byte, (int(head[setupSects])+1)*512+code)
	copy(img, head)
	return img, true
}

// TestLinuxPartitionHasAResetVector: a Linux partition's BIOS area holds,
// at the real-mode reset vector, the code that resets it through 0xCF9
// (Linux reboots through there: devices.ResetVectorCode).
func TestLinuxPartitionHasAResetVector(t *testing.T) {
	m, _ := newManager(t, &backend{port: hv.DebugExitPort})
	kernel, ok := tinyLinux(t)
	if !ok {
		t.Skip("no kernel header in root/loader/testdata")
	}
	m.modules["tiny"] = kernel
	cfg := parse(t, "[[partition]]\nname = \"l\"\nmemory_mib = 16\nkernel = \"tiny\"\nkernel_format = \"linux\"\n")
	p, w, err := m.build(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { // as run does
		w.Start()
		p.Start()
		p.Stop("test over")
		p.Wait()
		w.Close()
		p.Destroy()
	}()
	want := devices.ResetVectorCode()
	got := make([]byte, len(want))
	if err := p.Mem.ReadRAM(devices.ResetVector, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("at %#x: % x, want % x", devices.ResetVector, got, want)
	}
}

func TestConfigAllowsTheVPsTheCoreMakes(t *testing.T) {
	if config.MaxVPs != hv.MaxVPs {
		t.Fatalf("config.MaxVPs is %d, hv.MaxVPs %d: a file could ask for VPs the core refuses", config.MaxVPs, hv.MaxVPs)
	}
}

// fakeFunction is an assigned function's configuration space.
type fakeFunction struct{}

func (fakeFunction) ReadConfig(uint8) uint32           { return 0x11e8_1234 }
func (fakeFunction) WriteConfig(uint8, uint32, uint32) {}

// TestAssignedDeviceReleasedBeforeMemoryGoes: a partition's pci key
// reaches the assigner with the parsed address; the function is released
// once the partition stopped and before its memory is freed (the release
// can still read it); without an assigner the key is an error naming the
// field.
func TestAssignedDeviceReleasedBeforeMemoryGoes(t *testing.T) {
	m, _ := newManager(t, &backend{port: hv.DebugExitPort, value: 1})
	var got []config.PCIAddress
	released := 0
	m.SetAssigner(func(p *hv.Partition, a config.PCIAddress) (devices.PCIFunction, func() (string, error), error) {
		got = append(got, a)
		return fakeFunction{}, func() (string, error) {
			if _, err := p.Mem.Page(0); err != nil {
				t.Errorf("released after the memory went: %v", err)
			}
			released++
			return "test", nil
		}, nil
	})
	if err := m.Start(parse(t, "[[partition]]\nname = \"mb0\"\nmemory_mib = 16\nkernel = \"mbkernel\"\npci = [\"00:04.0\", \"01:00.1\"]\n")); err != nil {
		t.Fatal(err)
	}
	m.Wait()
	if len(got) != 2 || got[1] != (config.PCIAddress{Bus: 1, Dev: 0, Fn: 1}) || released != 2 {
		t.Fatalf("assigned %v, released %d", got, released)
	}
	m2, _ := newManager(t, &backend{port: hv.DebugExitPort})
	err := m2.Start(parse(t, "[[partition]]\nname = \"mb0\"\nmemory_mib = 16\nkernel = \"mbkernel\"\npci = [\"00:04.0\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "c.toml:5: partition[0].pci[0]") || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("without an assigner: %v", err)
	}
	m2.Wait()
}
