package bootmedia

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"gohv/root/config"
)

// Boot modules on a medium: each file GRUB loads beside the kernel
// (module2) sits at ModuleDir/NAME with its SHA-256 at SumDir/NAME.sha256,
// and grub.cfg checks every one before loading any, as it does the kernel.
// The image knows a module by NAME, the word after the file on the module2
// line (metal.BootModules).
const (
	ModuleDir = "/boot/gohv/modules"
	SumDir    = "/boot/gohv/sums"

	// MaxModules is how many modules a medium carries: what metal accepts.
	MaxModules = 32
)

// Module is a file to put on the medium as a boot module.
type Module struct {
	Name string // as the image knows it: root/config's rules for module names
	Path string // the host file it was read from, for messages
	Data []byte
}

// ReadModule reads the host file at path as the module name.
func ReadModule(name, path string) (*Module, error) {
	if err := config.CheckModuleName(name); err != nil {
		return nil, fmt.Errorf("module: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("module %s: %s is not a regular file", name, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", name, err)
	}
	return &Module{Name: name, Path: path, Data: data}, nil
}

// ModulePath is where module name lives on a medium.
func ModulePath(name string) string { return ModuleDir + "/" + name }

// ModuleSumPath is where module name's SHA-256 lives on a medium.
func ModuleSumPath(name string) string { return SumDir + "/" + name + ".sha256" }

// SumFile is the content of ModuleSumPath(m.Name), in sha256sum(1)'s format.
func (m *Module) SumFile() []byte {
	h := sha256.Sum256(m.Data)
	return fmt.Appendf(nil, "%s  %s\n", hex.EncodeToString(h[:]), ModulePath(m.Name))
}

// checkModuleNames checks the module names of a boot configuration: valid,
// at most MaxModules, and distinct even ignoring case (the disk image's ESP
// is FAT, whose names are case-insensitive).
func checkModuleNames(names []string) error {
	if len(names) > MaxModules {
		return fmt.Errorf("%d modules: at most %d", len(names), MaxModules)
	}
	seen := map[string]string{}
	for _, n := range names {
		if err := config.CheckModuleName(n); err != nil {
			return fmt.Errorf("module: %w", err)
		}
		if o, dup := seen[strings.ToLower(n)]; dup {
			if o == n {
				return fmt.Errorf("module %q: given twice", n)
			}
			return fmt.Errorf("modules %q and %q: names must differ in more than case (FAT file names on the disk image do not)", o, n)
		}
		seen[strings.ToLower(n)] = n
	}
	return nil
}
