// Package manager is the root partition's partition manager (Hyper-V's
// VMMS): it creates child partitions from the configuration, gives each
// its platform (the legacy devices and ACPI tables of root/devices and
// root/acpitables) and its kernel (root/loader), and runs one worker per
// partition (Hyper-V's VMWP) that owns its life: start, end, and a restart
// when the guest asked for a reboot and the configuration says so.
//
// Failure: a partition that cannot be built (a kernel the loader refuses,
// memory the host does not have) is reported with the configuration's
// file, line and field and never started; a guest that crashes or
// misbehaves ends its own partition only.
package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"gohv/hv"
	"gohv/root/acpitables"
	"gohv/root/config"
	"gohv/root/devices"
	"gohv/root/loader"
	"gohv/root/storvsp/scsi"
	"gohv/root/worker"
	"gohv/x86"
)

// ACPIBase is where a partition's ACPI tables go: the legacy BIOS area,
// which the E820 map already reserves and where Linux would also scan for
// the RSDP.
const ACPIBase = 0xe0000

// maxRestarts bounds how often a partition that keeps asking for a reboot
// is restarted in a row without reaching a minute of run time: a guest
// that resets at once in a loop must not hold the root.
const maxRestarts = 5

// Console is where partitions' COM1 lines go and where the root's console
// input finds them.
type Console interface {
	io.Writer
	Add(name string, receive func([]byte) int)
	// SetShutdown gives a partition added with Add the console's graceful
	// shutdown and restart commands.
	SetShutdown(name string, f func(reboot bool))
	Remove(name string)
}

// ShutdownTimeout bounds how long a console shutdown request waits for the
// guest's answer.
const ShutdownTimeout = 30 * time.Second

// Manager creates and runs the configuration's partitions.
type Manager struct {
	hv      *hv.Hypervisor
	log     *slog.Logger
	console Console
	modules map[string][]byte
	clock   func() time.Time

	wg      sync.WaitGroup
	mu      sync.Mutex
	results map[string]hv.Result // how each partition ended last
	// disks are the disk images by module name, made once: a partition's
	// writes survive its restarts (not gohv's).
	disks map[string]*scsi.RAMDisk
	// net is the switches and NIC ports, made once by Start (nil when
	// the configuration has no network).
	net *network
	cfg *config.Config
	// states say where each partition is, for the diagnostic page.
	states map[string]string
	// assign gives a partition a host PCI function (SetAssigner); nil:
	// device assignment is unavailable. released holds each built
	// partition's release functions, run after it stops and before its
	// memory is freed.
	assign   Assigner
	releases map[*hv.Partition][]release
}

// Assigner gives host PCI function a to partition p, before it starts
// (cmd/gohv: root/passthrough over metal's PCI access and the boot's IOMMU
// units). It returns the configuration space the partition's PCI bus
// shows and a release function, which resets the function and returns it
// to the blocked state; the manager calls it once the partition's VPs
// have stopped and before its memory is freed, and logs how it went.
type Assigner func(p *hv.Partition, a config.PCIAddress) (devices.PCIFunction, func() (string, error), error)

type release struct {
	device string
	fn     func() (string, error)
}

// SetAssigner enables device assignment (the configuration's pci keys)
// through a. Call before Start.
func (m *Manager) SetAssigner(a Assigner) { m.assign = a }

// releaseDevices releases the functions assigned to p, which has stopped.
func (m *Manager) releaseDevices(p *hv.Partition) {
	m.mu.Lock()
	rs := m.releases[p]
	delete(m.releases, p)
	m.mu.Unlock()
	for _, r := range rs {
		how, err := r.fn()
		if err != nil {
			m.log.Error("assigned device not released cleanly", "partition", p.Name, "device", r.device, "reset", how, "err", err)
			continue
		}
		m.log.Info("assigned device reset and blocked again", "partition", p.Name, "device", r.device, "reset", how)
	}
}

// New makes a manager over the hypervisor, the boot modules (by name) and
// the console.
func New(h *hv.Hypervisor, modules map[string][]byte, con Console, log *slog.Logger) *Manager {
	return &Manager{hv: h, log: log, console: con, modules: modules, clock: time.Now, results: map[string]hv.Result{}, disks: map[string]*scsi.RAMDisk{}, states: map[string]string{}}
}

// Start builds every autostart partition of cfg and starts it under its
// worker. A partition that cannot be built is an error naming it; the
// others still start.
func (m *Manager) Start(cfg *config.Config) error {
	var errs []error
	m.mu.Lock()
	m.cfg = cfg
	for _, pc := range cfg.Partitions {
		m.states[pc.Name] = "not started"
	}
	m.mu.Unlock()
	if len(cfg.Switches) > 0 {
		n, err := startNetwork(cfg, m.log, m.status)
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		m.net = n
	}
	for i := range cfg.Partitions {
		pc := cfg.Partitions[i]
		if !pc.Autostart {
			m.log.Info("partition configured, not started", "partition", pc.Name)
			continue
		}
		p, w, err := m.build(cfg, i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.wg.Add(1)
		go m.run(cfg, i, p, w)
	}
	return errors.Join(errs...)
}

// Wait blocks until every worker has ended and returns how each partition
// ended.
func (m *Manager) Wait() map[string]hv.Result {
	m.wg.Wait()
	m.net.close()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]hv.Result, len(m.results))
	for k, v := range m.results {
		out[k] = v
	}
	return out
}

// run owns one partition: it starts it and its worker, waits for its end,
// and starts it again after a reboot request when the configuration says
// "restart".
func (m *Manager) run(cfg *config.Config, i int, p *hv.Partition, w *worker.Worker) {
	defer m.wg.Done()
	pc := cfg.Partitions[i]
	restarts := 0
	for {
		started := time.Now()
		if pc.Console == config.ConsoleCOM1 {
			m.console.Add(pc.Name, p.COM1().Receive)
			m.console.SetShutdown(pc.Name, m.shutdownFunc(pc.Name, w))
		}
		w.Start()
		m.net.attach(pc.Name, w)
		p.Start()
		m.setState(pc.Name, "running")
		p.Wait()
		m.console.Remove(pc.Name)
		m.net.attach(pc.Name, nil)
		w.Close() // before Destroy: the channels' rings are in the partition's memory
		r := p.Result()
		m.releaseDevices(p) // before Destroy: the devices DMA into its memory
		p.Destroy()
		m.mu.Lock()
		m.results[pc.Name] = r
		m.states[pc.Name] = "stopped: " + r.String()
		m.mu.Unlock()
		if !errors.Is(r.Err, hv.ErrReboot) || pc.OnReboot != config.OnRebootRestart {
			return
		}
		if time.Since(started) > time.Minute {
			restarts = 0
		}
		if restarts++; restarts > maxRestarts {
			m.log.Warn("partition reboots in a loop: not restarted", "partition", pc.Name, "restarts", maxRestarts)
			return
		}
		m.log.Info("partition restarting", "partition", pc.Name)
		m.setState(pc.Name, "restarting")
		var err error
		if p, w, err = m.build(cfg, i); err != nil {
			m.log.Error("partition restart failed", "partition", pc.Name, "err", err)
			return
		}
	}
}

// shutdownFunc asks partition name's guest, through its worker, to shut
// down or restart, and reports the outcome.
func (m *Manager) shutdownFunc(name string, w *worker.Worker) func(reboot bool) {
	return func(reboot bool) {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := w.Shutdown(ctx, reboot); err != nil {
			m.log.Warn("shutdown request failed", "partition", name, "err", err)
			return
		}
		m.log.Info("the guest accepted the shutdown request; waiting for it to power off", "partition", name, "restart", reboot)
	}
}

// build creates partition i of cfg with its platform, its kernel loaded
// and its worker, ready to start.
func (m *Manager) build(cfg *config.Config, i int) (*hv.Partition, *worker.Worker, error) {
	pc := cfg.Partitions[i]
	var out io.Writer = m.console
	if pc.Console == config.ConsoleNone {
		out = io.Discard
	}
	p, err := m.hv.NewPartition(hv.Config{Name: pc.Name, RAMBytes: pc.MemoryMiB << 20, Console: out, VPs: pc.VPs, HostCPUs: pc.HostCPUs})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.Where(i, "memory_mib"), err)
	}
	discard := func() {
		p.Start() // a VP thread must run to end the partition and release it
		p.Stop("it could not be built")
		<-p.Done()
		m.releaseDevices(p)
		p.Destroy()
	}
	if err := m.load(cfg, i, p); err != nil {
		discard()
		return nil, nil, err
	}
	disks, err := m.diskImages(cfg, i)
	if err != nil {
		discard()
		return nil, nil, err
	}
	w, err := worker.New(p, worker.Config{Disks: disks, NICs: m.net.workerNICs(pc.Name), Log: m.log})
	if err != nil {
		discard()
		return nil, nil, err
	}
	return p, w, nil
}

// diskImages are partition i's disks over their boot modules.
func (m *Manager) diskImages(cfg *config.Config, i int) ([]worker.Disk, error) {
	var out []worker.Disk
	for j, d := range cfg.Partitions[i].Disks {
		m.mu.Lock()
		img := m.disks[d.Module]
		if img == nil {
			var err error
			if img, err = scsi.NewRAMDisk(m.modules[d.Module], config.DiskBlockSize, d.ReadOnly); err != nil {
				m.mu.Unlock()
				return nil, fmt.Errorf("%s: %w", cfg.Where(i, fmt.Sprintf("disk[%d].module", j)), err)
			}
			m.disks[d.Module] = img
		}
		m.mu.Unlock()
		out = append(out, worker.Disk{Name: d.Module, Controller: d.Controller, LUN: d.LUN, Image: img})
	}
	return out, nil
}

// load gives p its devices and ACPI tables and loads its kernel.
func (m *Manager) load(cfg *config.Config, i int, p *hv.Partition) error {
	pc := cfg.Partitions[i]
	kernel := m.modules[pc.Kernel]
	// A kernel error names the module as well as the field: the file the
	// user passed (-module, a medium's file) is what to look at.
	kernelErr := func(field string, err error) error {
		return fmt.Errorf("%s: module %q: %w", cfg.Where(i, field), pc.Kernel, err)
	}
	format, err := pc.Format(kernel) // its errors name the module
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Where(i, "kernel"), err)
	}
	dev := devices.New(devices.Config{Clock: m.clock, Reboot: p.Reboot, PowerOff: p.PowerOff})
	dev.Register(p)
	for j, s := range pc.PCI {
		field := fmt.Sprintf("pci[%d]", j)
		a, err := config.ParsePCIAddress(s)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.Where(i, field), err)
		}
		if m.assign == nil {
			return fmt.Errorf("%s: %s: device assignment is unavailable (no IOMMU unit was enabled: the boot report says why)", cfg.Where(i, field), s)
		}
		fn, rel, err := m.assign(p, a)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", cfg.Where(i, field), s, err)
		}
		dev.PCI.AddFunction(uint8(j+1), fn)
		m.mu.Lock()
		if m.releases == nil {
			m.releases = map[*hv.Partition][]release{}
		}
		m.releases[p] = append(m.releases[p], release{s, rel})
		m.mu.Unlock()
		m.log.Info("PCI device assigned", "partition", pc.Name, "device", s, "guest", fmt.Sprintf("00:%02x.0", j+1))
	}
	if format == config.FormatMultiboot {
		if err := loader.LoadMultiboot(p, kernel, pc.Cmdline); err != nil {
			return kernelErr("kernel", err)
		}
		return nil
	}
	tables, err := acpitables.Build(dev.ACPI(pc.VPs), ACPIBase)
	if err != nil {
		return fmt.Errorf("partition %s: ACPI tables: %w", pc.Name, err)
	}
	if err := p.Mem.WriteRAM(ACPIBase, tables.Bytes); err != nil {
		return fmt.Errorf("partition %s: ACPI tables: %w", pc.Name, err)
	}
	// Linux reboots through the real-mode reset vector (see
	// devices.ResetVectorCode): there, code that resets the partition.
	if err := p.Mem.WriteRAM(devices.ResetVector, devices.ResetVectorCode()); err != nil {
		return fmt.Errorf("partition %s: reset vector: %w", pc.Name, err)
	}
	regs, err := loader.LoadLinux(p.Mem, loader.Linux{
		Kernel:  kernel,
		Initrd:  m.modules[pc.Initrd],
		Cmdline: pc.Cmdline,
		RSDP:    tables.RSDP,
		Reserved: []loader.Range{
			{GPA: hv.IOAPICBase, Size: x86.PageSize, Type: loader.E820Reserved},
			{GPA: x86.APICDefaultBase, Size: x86.PageSize, Type: loader.E820Reserved},
		},
	})
	if err != nil {
		field := "kernel"
		if errors.Is(err, loader.ErrMemoryTooSmall) {
			field = "memory_mib"
		}
		return kernelErr(field, err)
	}
	p.VP(0).SetState(regs)
	return nil
}
