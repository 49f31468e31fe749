package config

import (
	"fmt"
	"strings"
)

// The rules, as the errors state them.
var (
	memoryRule = fmt.Sprintf("a partition needs at least %d MiB and at most %d MiB", MinMemoryMiB, MaxMemoryMiB)
	vpsRule    = fmt.Sprintf("a partition has 1 to %d VPs", MaxVPs)
)

// validate checks every partition and switch after decoding and defaults,
// and puts MAC addresses in lower case.
func (c *Config) validate() error {
	var errs Errors
	bad := func(i int, key, format string, args ...any) {
		errs = append(errs, c.errorf(fieldPath(i, key), format, args...))
	}
	if len(c.Partitions) == 0 {
		errs = append(errs, &Error{File: c.file, Field: "partition", Msg: "no partitions; add a [[partition]] table for each"})
	}
	errs = append(errs, c.validateSwitches()...)
	switches, hasSwitch := c.switchNames()
	names := map[string]int{}
	writable := map[string]string{} // disk module → the disk that writes it
	for i, p := range c.Partitions {
		switch err := CheckName(p.Name); {
		case p.Name == "":
			bad(i, "name", "missing; every partition needs a name")
		case err != nil:
			bad(i, "name", "%v", err)
		default:
			if j, dup := names[p.Name]; dup {
				bad(i, "name", "%q is also partition[%d]'s name; names must be unique", p.Name, j)
			} else {
				names[p.Name] = i
			}
		}

		switch {
		case p.MemoryMiB == 0 && !c.has(i, "memory_mib"):
			bad(i, "memory_mib", "missing; %s", memoryRule)
		case p.MemoryMiB < MinMemoryMiB || p.MemoryMiB > MaxMemoryMiB:
			bad(i, "memory_mib", "%d MiB; %s", p.MemoryMiB, memoryRule)
		}

		if p.VPs < 1 || p.VPs > MaxVPs {
			bad(i, "vps", "%d VPs; %s", p.VPs, vpsRule)
		}
		for j, cpu := range p.HostCPUs {
			if cpu < 0 || cpu >= MaxHostCPUs {
				bad(i, fmt.Sprintf("host_cpus[%d]", j), "host CPU %d; host CPUs are numbered 0 to %d", cpu, MaxHostCPUs-1)
			}
		}

		switch err := CheckModuleName(p.Kernel); {
		case p.Kernel == "":
			bad(i, "kernel", "missing; name the boot module that holds the partition's kernel")
		case err != nil:
			bad(i, "kernel", "%v", err)
		case p.Kernel == ModuleName:
			bad(i, "kernel", "%q is the configuration's own module", p.Kernel)
		}
		if p.Initrd != "" {
			switch err := CheckModuleName(p.Initrd); {
			case err != nil:
				bad(i, "initrd", "%v", err)
			case p.Initrd == ModuleName:
				bad(i, "initrd", "%q is the configuration's own module", p.Initrd)
			case p.Initrd == p.Kernel:
				bad(i, "initrd", "%q is also the kernel", p.Initrd)
			}
		}

		switch p.KernelFormat {
		case "", FormatLinux, FormatMultiboot:
		default:
			bad(i, "kernel_format", "%q; want %q or %q (or leave it out to tell them apart by their headers)", p.KernelFormat, FormatLinux, FormatMultiboot)
		}

		if len(p.Cmdline) > MaxCmdline {
			bad(i, "cmdline", "%d bytes; at most %d (Linux's limit)", len(p.Cmdline), MaxCmdline)
		} else if j := strings.IndexFunc(p.Cmdline, func(r rune) bool { return r < ' ' || r == 0x7f }); j >= 0 {
			bad(i, "cmdline", "a control character (%q) at byte %d; separate words with spaces", p.Cmdline[j], j)
		}

		switch p.Console {
		case ConsoleCOM1, ConsoleNone:
		default:
			bad(i, "console", "%q; want %q (COM1 on the root console) or %q", p.Console, ConsoleCOM1, ConsoleNone)
		}

		switch p.OnReboot {
		case OnRebootRestart, OnRebootStop:
		default:
			bad(i, "on_reboot", "%q; want %q or %q", p.OnReboot, OnRebootRestart, OnRebootStop)
		}
		errs = append(errs, c.validateDisks(i, writable)...)
		errs = append(errs, c.validateNICs(i, switches, hasSwitch)...)
	}
	// A read-only use of a writable image would see it change under it.
	for i, p := range c.Partitions {
		for j, d := range p.Disks {
			if w, ok := writable[d.Module]; ok && d.ReadOnly {
				errs = append(errs, c.errorf(diskPath(i, j, "module"), "%q is also %s's writable image; an image another disk writes cannot be shared", d.Module, w))
			}
		}
	}
	errs = append(errs, c.validateMACs()...)
	errs = append(errs, c.validatePCI()...)
	return errs.orNil()
}

// MaxPCI is the most functions one partition is given: they take devices
// 1 to 31 of its bus 0.
const MaxPCI = 31

// validatePCI checks every partition's PCI addresses: well formed, at
// most MaxPCI, and no function given twice.
func (c *Config) validatePCI() Errors {
	var errs Errors
	owner := map[PCIAddress]string{}
	for i, p := range c.Partitions {
		if len(p.PCI) > MaxPCI {
			errs = append(errs, c.errorf(fieldPath(i, "pci"), "%d functions; a partition takes at most %d", len(p.PCI), MaxPCI))
		}
		for j, s := range p.PCI {
			path := fmt.Sprintf("%s[%d]", fieldPath(i, "pci"), j)
			a, err := ParsePCIAddress(s)
			if err != nil {
				errs = append(errs, c.errorf(path, "%v", err))
				continue
			}
			if o, dup := owner[a]; dup {
				errs = append(errs, c.errorf(path, "%s is also given to %s; a function belongs to one partition", s, o))
				continue
			}
			owner[a] = path
		}
	}
	return errs
}

// PCIAddress is a PCI function's address in segment 0.
type PCIAddress struct{ Bus, Dev, Fn uint8 }

func (a PCIAddress) String() string { return fmt.Sprintf("%02x:%02x.%x", a.Bus, a.Dev, a.Fn) }

// ParsePCIAddress reads "bb:dd.f": two hex digits of bus, two of device
// (below 0x20), one of function (below 8).
func ParsePCIAddress(s string) (PCIAddress, error) {
	var a PCIAddress
	bad := fmt.Errorf("%q; want a PCI address bb:dd.f in hex (bus 00-ff, device 00-1f, function 0-7), e.g. \"00:04.0\"", s)
	if len(s) != 7 || s[2] != ':' || s[5] != '.' {
		return a, bad
	}
	hex := func(t string) (uint8, bool) {
		var v uint8
		for _, r := range t {
			switch {
			case r >= '0' && r <= '9':
				v = v<<4 | uint8(r-'0')
			case r >= 'a' && r <= 'f':
				v = v<<4 | uint8(r-'a'+10)
			case r >= 'A' && r <= 'F':
				v = v<<4 | uint8(r-'A'+10)
			default:
				return 0, false
			}
		}
		return v, true
	}
	var ok1, ok2, ok3 bool
	a.Bus, ok1 = hex(s[0:2])
	a.Dev, ok2 = hex(s[3:5])
	a.Fn, ok3 = hex(s[6:7])
	if !ok1 || !ok2 || !ok3 || a.Dev > 0x1f || a.Fn > 7 {
		return PCIAddress{}, bad
	}
	return a, nil
}

// validateDisks checks partition i's disks; writable collects the images
// the partitions write.
func (c *Config) validateDisks(i int, writable map[string]string) Errors {
	var errs Errors
	bad := func(j int, key, format string, args ...any) {
		errs = append(errs, c.errorf(diskPath(i, j, key), format, args...))
	}
	p := c.Partitions[i]
	at := map[[2]int]int{}
	for j, d := range p.Disks {
		switch err := CheckModuleName(d.Module); {
		case d.Module == "":
			bad(j, "module", "missing; name the boot module that holds the disk image")
		case err != nil:
			bad(j, "module", "%v", err)
		case d.Module == ModuleName || d.Module == p.Kernel || d.Module == p.Initrd:
			bad(j, "module", "%q is also the configuration, kernel or initrd", d.Module)
		case !d.ReadOnly:
			if w, ok := writable[d.Module]; ok {
				bad(j, "module", "%q is also %s's image; a writable image backs one disk only (make both read_only to share it)", d.Module, w)
			} else {
				writable[d.Module] = diskPath(i, j, "")
			}
		}
		if d.Controller < 0 || d.Controller >= MaxControllers {
			bad(j, "controller", "%d; want 0 to %d", d.Controller, MaxControllers-1)
		}
		switch {
		case d.LUN < 0 || d.LUN > MaxLUN:
			bad(j, "lun", "%d; want 0 to %d", d.LUN, MaxLUN)
		default:
			k := [2]int{d.Controller, d.LUN}
			if o, dup := at[k]; dup {
				bad(j, "lun", "controller %d LUN %d is also disk[%d]'s; give each disk its own", d.Controller, d.LUN, o)
			} else {
				at[k] = j
			}
		}
	}
	return errs
}

// has reports whether the file set partition i's key.
func (c *Config) has(i int, key string) bool {
	_, ok := c.lines[fieldPath(i, key)]
	return ok
}

// CheckName reports what is wrong with a partition name, or nil.
func CheckName(s string) error {
	return checkWord(s, "partition name", MaxNameLen)
}

// CheckModuleName reports what is wrong with a boot-module name, or nil.
// Module names are written unquoted into grub.cfg and QEMU's -initrd and
// are file names on the FAT and ISO file systems of the boot media, so they
// take the same characters as partition names, and at most
// MaxModuleNameLen of them.
func CheckModuleName(s string) error {
	return checkWord(s, "boot-module name", MaxModuleNameLen)
}

// checkWord: 1 to max letters, digits, '.', '_' or '-', starting with a
// letter or digit, and not ending in "gohv" — "NAME: " starts the lines a
// partition prints and GRUB's checksum report of a module, and a line holding
// "gohv:" is a line of gohv's own serial protocol.
func checkWord(s, what string, max int) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !letter && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("%q: a %s uses letters, digits, '.', '_' and '-', and starts with a letter or digit", s, what)
		}
	}
	if len(s) > max {
		return fmt.Errorf("%q: a %s of %d characters; at most %d", s, what, len(s), max)
	}
	if strings.HasSuffix(strings.ToLower(s), "gohv") {
		return fmt.Errorf("%q: a %s may not end in \"gohv\" (its lines would read as gohv's own protocol lines)", s, what)
	}
	return nil
}
