// Package config is gohv's partition configuration: the TOML file a user
// writes to say which child partitions to run, and the one Go type (Config)
// that the image, the host command and later the management API share.
//
// The file is a list of [[partition]] tables and [[switch]] tables, in any
// order (example.toml in this directory documents every key):
//
//	[[partition]]
//	name = "linux0"                # 1-32 letters, digits, '.', '_', '-'; prefixes its console lines
//	memory_mib = 256               # 2..4064
//	kernel = "vmlinuz"             # a boot module's name
//	initrd = "initrd.img"          # a boot module's name, optional
//	cmdline = "console=ttyS0"
//	[[partition.nic]]              # at most MaxNICs, after the partition's own keys
//	switch = "lan0"                # a [[switch]]'s name
//	mac = "02:00:00:00:00:01"      # optional: DefaultNICMAC
//
//	[[switch]]
//	name = "lan0"                  # as a partition's name
//	root_address = "10.0.0.1/24"   # optional: the root's IPv4 address on the switch
//	root_mac = "00:15:5d:ff:ff:00" # optional: DefaultRootMAC
//
// [[partition.disk]] tables, like [[partition.nic]] ones, follow their
// partition's keys; both may also be written inline (nic = [{switch =
// "lan0"}]). Every MAC address in the file, written or by default, is
// unicast and unique; Parse puts them in lower case.
//
// Parse reads and validates a file; every problem it finds is reported as
// FILE:LINE: FIELD: what is wrong and what is allowed, e.g.
//
//	gohv.toml:7: partition[1].memory_mib: 0 MiB; a partition needs at least 2 MiB and at most 4064 MiB
//
// Partitions are numbered from 0 in the order the file lists them, as are
// switches and each partition's disks and NICs. Unknown keys are refused
// with their line, so a misspelt key never silently keeps a default. Kernels and initrds are named by boot module (the files the boot
// loader loaded beside the image, see metal.BootModules); whether those
// modules exist is checked once they are known, by Config.Check.
//
// The TOML library is github.com/pelletier/go-toml/v2: besides decoding it
// offers its parser's syntax tree (package unstable) with the position of
// every key, which is what lets a validation error name its line;
// github.com/BurntSushi/toml keeps key positions private.
package config

import (
	"fmt"
	"slices"
	"strings"
)

// ModuleName is the boot-module name of the configuration file itself.
const ModuleName = "config"

// Config is a partition configuration.
type Config struct {
	Partitions []Partition `toml:"partition"`
	// Switches are the root's virtual Ethernet switches ([[switch]]
	// tables); partitions' NICs connect to them by name.
	Switches []Switch `toml:"switch"`

	// Where each field was written, for errors that Check finds later.
	file  string
	lines map[string]int
}

// Partition describes one child partition. Parse fills in the defaults of
// keys the file leaves out (noted per field).
type Partition struct {
	// Name identifies the partition: 1 to MaxNameLen letters, digits, '.',
	// '_' or '-', starting with a letter or digit, unique in the file. It
	// prefixes the partition's console lines ("linux0: ...").
	Name string `toml:"name"`
	// MemoryMiB is the partition's RAM, MinMemoryMiB to MaxMemoryMiB.
	MemoryMiB uint64 `toml:"memory_mib"`
	// VPs is the number of virtual processors, 1 (the default) to
	// MaxVPs: VP 0 boots, the guest starts the others (INIT and SIPI).
	VPs int `toml:"vps"`
	// HostCPUs pins the VPs to host CPUs: VP i runs on host CPU
	// HostCPUs[i % len(HostCPUs)] (indexes as the boot report numbers
	// them, 0 to MaxHostCPUs-1; one that is not online fails the
	// partition's start). Empty (the default): each VP goes to the online
	// host CPU with the fewest VPs when it starts, and moves to a free
	// one when it shares its CPU with another running VP (hv's migrate.go).
	HostCPUs []int `toml:"host_cpus"`
	// Kernel names the boot module holding the kernel: a Linux bzImage or a
	// Multiboot kernel.
	Kernel string `toml:"kernel"`
	// KernelFormat is FormatLinux or FormatMultiboot; empty (the default)
	// means the loader tells them apart by their headers (DetectKernelFormat).
	KernelFormat string `toml:"kernel_format"`
	// Initrd names the boot module holding the initial RAM disk; optional.
	Initrd string `toml:"initrd"`
	// Cmdline is the kernel command line, at most MaxCmdline bytes.
	Cmdline string `toml:"cmdline"`
	// Console is where the partition's COM1 goes: ConsoleCOM1 (the default:
	// the root console, each line prefixed with the partition's name) or
	// ConsoleNone (discarded).
	Console string `toml:"console"`
	// Autostart starts the partition when gohv boots (the default); false
	// leaves it configured but stopped.
	Autostart bool `toml:"autostart"`
	// OnReboot is what a guest's reboot request does: OnRebootRestart (the
	// default: the partition starts again from its kernel) or OnRebootStop.
	OnReboot string `toml:"on_reboot"`
	// Disks are the partition's SCSI disks, served by the root's storage
	// VSP over VMBus: [[partition.disk]] tables, in order.
	Disks []Disk `toml:"disk"`
	// NICs are the partition's synthetic network adapters, served by the
	// root's network VSP over VMBus: [[partition.nic]] tables, in order
	// (Linux's hv_netvsc names them eth0, eth1, ...).
	NICs []NIC `toml:"nic"`
	// PCI are host PCI functions given to the partition (device
	// assignment, root/passthrough), by address "bb:dd.f" in segment 0
	// (as the boot report's "gohv: pci" lines print them): each moves
	// from the IOMMU's blocked state into a domain that maps exactly the
	// partition's RAM, and appears on the partition's PCI bus 0 at device
	// 1, 2, ... in this order. A function belongs to one partition.
	PCI []string `toml:"pci"`
}

// Switch is one of the root's virtual Ethernet switches: a learning L2
// switch joining the NICs that name it and, when RootAddress is set, the
// root partition's own TCP/IP endpoint.
type Switch struct {
	// Name identifies the switch, as partition names do; unique.
	Name string `toml:"name"`
	// RootAddress, when set, is the root partition's IPv4 address on the
	// switch with its prefix length ("10.0.0.1/24"): the root answers
	// ping there and serves its diagnostic page on TCP port 80.
	RootAddress string `toml:"root_address"`
	// RootMAC is the root port's MAC address; by default one gohv
	// derives from the switch's position (DefaultRootMAC).
	RootMAC string `toml:"root_mac"`
}

// NIC is one synthetic network adapter of a partition.
type NIC struct {
	// Switch names the [[switch]] the NIC is connected to.
	Switch string `toml:"switch"`
	// MAC is the adapter's address ("00:15:5d:00:01:00"), unicast and
	// unique in the file; by default one gohv derives from the
	// partition's and the NIC's positions (DefaultNICMAC). The switch
	// drops frames the guest sends from any other source address.
	MAC string `toml:"mac"`
}

// Disk is one SCSI disk of a partition: a disk image (a boot module) at a
// controller and LUN. Each controller is one VMBus storage channel.
type Disk struct {
	// Module names the boot module holding the disk image: a whole
	// number of 512-byte blocks.
	Module string `toml:"module"`
	// Controller is the SCSI controller, 0 (the default) to
	// MaxControllers-1.
	Controller int `toml:"controller"`
	// LUN is the disk's logical unit number on its controller, 0 to
	// MaxLUN, unique per controller; the default is the disk's position
	// among the partition's disks.
	LUN int `toml:"lun"`
	// ReadOnly disks refuse the guest's writes. A writable image backs one
	// disk only; a read-only one may back several.
	ReadOnly bool `toml:"read_only"`
}

// Limits and the allowed values of the enumerated keys.
const (
	MaxNameLen = 32
	// MaxVPs is hv.MaxVPs: the VPs' APIC IDs stay below the I/O APIC's.
	MaxVPs = 15
	// MaxHostCPUs is the most host CPUs gohv runs (metal's limit).
	MaxHostCPUs      = 16
	MaxModuleNameLen = 24 // fits GRUB's 80-column error lines on boot media
	MinMemoryMiB     = 2
	// MaxMemoryMiB keeps a partition's RAM below 0xFEC00000, where its I/O
	// APIC and local APIC pages are.
	MaxMemoryMiB = 4064
	MaxCmdline   = 2047 // Linux's COMMAND_LINE_SIZE (2048) less the NUL

	FormatLinux     = "linux"
	FormatMultiboot = "multiboot"

	ConsoleCOM1 = "com1"
	ConsoleNone = "none"

	OnRebootRestart = "restart"
	OnRebootStop    = "stop"

	MaxControllers = 4
	MaxLUN         = 63 // Hyper-V's SCSI controller has 64 LUNs
	DiskBlockSize  = 512
	MaxNICs        = 8 // synthetic network adapters per partition, as Hyper-V allows per VM
)

// File is the name Parse was given: where the configuration came from.
func (c *Config) File() string { return c.file }

// Modules lists the boot-module names the partitions refer to (kernels,
// initrds and disk images), each once, in the order the file first names
// them.
func (c *Config) Modules() []string {
	var names []string
	for _, p := range c.Partitions {
		ms := []string{p.Kernel, p.Initrd}
		for _, d := range p.Disks {
			ms = append(ms, d.Module)
		}
		for _, m := range ms {
			if m != "" && !slices.Contains(names, m) {
				names = append(names, m)
			}
		}
	}
	return names
}

// Check reports every partition whose kernel or initrd names a boot module
// that is not in mods (module name to size in bytes), or an empty one. The
// errors name the configuration's file, line and field.
func (c *Config) Check(mods map[string]int) error {
	var errs Errors
	have := make([]string, 0, len(mods))
	for m := range mods {
		have = append(have, m)
	}
	slices.Sort(have)
	passed := "none"
	if len(have) > 0 {
		passed = strings.Join(have, ", ")
	}
	for i, p := range c.Partitions {
		for _, f := range []struct{ key, module string }{{"kernel", p.Kernel}, {"initrd", p.Initrd}} {
			if f.module == "" {
				continue
			}
			path := fieldPath(i, f.key)
			size, ok := mods[f.module]
			switch {
			case !ok:
				errs = append(errs, c.errorf(path, "no boot module %q; the boot loader passed %s", f.module, passed))
			case size == 0:
				errs = append(errs, c.errorf(path, "boot module %q is empty", f.module))
			}
		}
		for j, d := range p.Disks {
			path := diskPath(i, j, "module")
			size, ok := mods[d.Module]
			switch {
			case !ok:
				errs = append(errs, c.errorf(path, "no boot module %q; the boot loader passed %s", d.Module, passed))
			case size == 0 || size%DiskBlockSize != 0:
				errs = append(errs, c.errorf(path, "boot module %q holds %d bytes; a disk image is a whole number of %d-byte blocks, at least one",
					d.Module, size, DiskBlockSize))
			}
		}
	}
	return errs.orNil()
}

// Where names partition i's key as errors do, "FILE:LINE: partition[i].key",
// for messages about it from outside the package (a loader refusing a
// kernel, a host command missing a module's file).
func (c *Config) Where(i int, key string) string {
	e := c.errorf(fieldPath(i, key), "")
	return strings.TrimSuffix(e.Error(), ": ")
}

// errorf is an error about the field at path, on its line.
func (c *Config) errorf(path, format string, args ...any) *Error {
	return &Error{File: c.file, Line: c.line(path), Field: path, Msg: fmt.Sprintf(format, args...)}
}

// line is where the file wrote the field at path, or, for a key left out,
// the first line of the table it belongs in; an element of an array
// value (partition[0].pci[1]) is on its key's line.
func (c *Config) line(path string) int {
	line, ok := c.lines[path]
	for up := path; !ok; {
		i := strings.LastIndexByte(up, '.')
		if j := strings.LastIndexByte(up, '['); strings.HasSuffix(up, "]") && j > i {
			i = j
		}
		if i < 0 {
			break
		}
		up = up[:i]
		line, ok = c.lines[up]
	}
	return line
}

// fieldPath is how errors name partition i's key.
func fieldPath(i int, key string) string {
	if key == "" {
		return fmt.Sprintf("partition[%d]", i)
	}
	return fmt.Sprintf("partition[%d].%s", i, key)
}

// diskPath is how errors name disk j of partition i's key.
func diskPath(i, j int, key string) string { return subPath(i, "disk", j, key) }

// nicPath is how errors name NIC j of partition i's key.
func nicPath(i, j int, key string) string { return subPath(i, "nic", j, key) }

// subPath is how errors name partition i's disk or NIC (sub) j's key.
func subPath(i int, sub string, j int, key string) string {
	if key == "" {
		return fmt.Sprintf("partition[%d].%s[%d]", i, sub, j)
	}
	return fmt.Sprintf("partition[%d].%s[%d].%s", i, sub, j, key)
}

// switchPath is how errors name switch k's key.
func switchPath(k int, key string) string {
	if key == "" {
		return fmt.Sprintf("switch[%d]", k)
	}
	return fmt.Sprintf("switch[%d].%s", k, key)
}

// Error is one problem in a configuration file.
type Error struct {
	File  string
	Line  int    // from 1; 0 when the problem has no line (an empty file)
	Field string // "partition[1].memory_mib"; empty for a syntax error
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a file, in line order; its message is
// one line per problem.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, func(a, b *Error) int { return a.Line - b.Line })
	return es
}
