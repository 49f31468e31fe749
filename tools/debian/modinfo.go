package debian

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Modinfo is what a kernel module says about itself in its ELF .modinfo
// section: NUL-terminated "key=value" strings that the kernel's
// MODULE_INFO macros (include/linux/moduleparam.h, modpost's
// scripts/mod/modpost.c for depends=, name= and vermagic=) lay end to end,
// with NUL padding between some of them. modinfo(8) and depmod(8) read the
// same section; the Debian kernel package ships no modules.dep (depmod runs
// when the package is installed), so this is where a module's dependencies
// are found.
type Modinfo struct {
	Name     string      // name=: the module's name as the kernel knows it
	Depends  []string    // depends=: modules that must be loaded first, in the section's order
	Vermagic string      // vermagic=: the kernel release and build options it was built for
	Fields   [][2]string // every key=value in section order, depends and name included
}

// ParseModinfo parses the contents of a .modinfo section. Empty strings
// (padding) are skipped; a string without "=" is an error, as is a second
// name= or depends=.
func ParseModinfo(sec []byte) (Modinfo, error) {
	var m Modinfo
	var seenName, seenDepends bool
	for _, s := range bytes.Split(sec, []byte{0}) {
		if len(s) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(s), "=")
		if !ok || k == "" {
			return Modinfo{}, fmt.Errorf("modinfo: %q is not key=value", s)
		}
		m.Fields = append(m.Fields, [2]string{k, v})
		switch k {
		case "name":
			if seenName {
				return Modinfo{}, errors.New("modinfo: name= given twice")
			}
			seenName, m.Name = true, ModuleName(v)
		case "depends":
			if seenDepends {
				return Modinfo{}, errors.New("modinfo: depends= given twice")
			}
			seenDepends = true
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					m.Depends = append(m.Depends, ModuleName(d))
				}
			}
		case "vermagic":
			m.Vermagic = v
		}
	}
	return m, nil
}

// ReadModinfo reads the .modinfo section of the module (a relocatable ELF
// object, .ko) in r.
func ReadModinfo(r io.ReaderAt) (Modinfo, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return Modinfo{}, fmt.Errorf("module: %w", err)
	}
	defer f.Close()
	if f.Type != elf.ET_REL {
		return Modinfo{}, fmt.Errorf("module: ELF type %v, want a relocatable object (ET_REL)", f.Type)
	}
	s := f.Section(".modinfo")
	if s == nil || s.Type == elf.SHT_NOBITS {
		return Modinfo{}, errors.New("module: no .modinfo section")
	}
	data, err := s.Data()
	if err != nil {
		return Modinfo{}, fmt.Errorf("module: .modinfo: %w", err)
	}
	return ParseModinfo(data)
}

// ModuleName is the kernel's name for a module file or a depends= entry:
// the file name without directory and ".ko" (or a compressed ".ko.xz",
// ".ko.zst", ".ko.gz"), with "-" turned into "_" (the kernel treats the two
// alike in module names, and depends= and name= use "_").
func ModuleName(s string) string {
	s = path.Base(s)
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if t, ok := strings.CutSuffix(s, ext); ok {
			s = t
			break
		}
	}
	return strings.ReplaceAll(s, "-", "_")
}
