package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gohv/root/config"
)

// Boot modules on the command line: -config FILE is the partition
// configuration, passed as the module named "config"; the modules it names
// (kernels, initrds) are the files -module NAME=PATH gives, or else the
// files called NAME beside the configuration file. The same rules serve
// run (QEMU's -initrd), bochs and media (GRUB's module2).

// moduleFlags collects -module NAME=PATH flags.
type moduleFlags []moduleFile

// moduleFile is a boot module resolved to a host file.
type moduleFile struct{ name, path string }

func (m *moduleFlags) String() string {
	s := make([]string, len(*m))
	for i, f := range *m {
		s[i] = f.name + "=" + f.path
	}
	return strings.Join(s, " ")
}

func (m *moduleFlags) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || path == "" {
		return fmt.Errorf("%q: want NAME=PATH", v)
	}
	if err := config.CheckModuleName(name); err != nil {
		return err
	}
	if name == config.ModuleName {
		return fmt.Errorf("%q: the module %q is the configuration: give it with -config", v, config.ModuleName)
	}
	if slices.ContainsFunc(*m, func(f moduleFile) bool { return f.name == name }) {
		return fmt.Errorf("%q: module %q given twice", v, name)
	}
	*m = append(*m, moduleFile{name, path})
	return nil
}

// moduleFlagsUsage is the help text of -config and -module.
const (
	configUsage = "partition configuration (TOML, see root/config/example.toml), passed as the boot module \"config\" with the modules it names"
	moduleUsage = "boot module `NAME=PATH` (repeatable): the file for a module the configuration names; without it, the file NAME beside the configuration"
)

// addModuleFlags declares -config and -module on fs.
func addModuleFlags(fs *flag.FlagSet, configFile *string, mods *moduleFlags) {
	fs.StringVar(configFile, "config", "", configUsage)
	fs.Var(mods, "module", moduleUsage)
}

// resolveModules returns the boot modules for configFile and the -module
// flags: the configuration first, then each module it names, in the order
// it names them. It reads and validates the configuration, and every error
// names the file, and for a missing module the partition and field that
// want it. Without a configuration the -module files are passed as they
// are.
func resolveModules(configFile string, flags moduleFlags) ([]moduleFile, error) {
	if configFile == "" {
		return slices.Clone(flags), nil
	}
	data, err := os.ReadFile(configFile)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	cfg, err := config.Parse(configFile, data)
	if err != nil {
		return nil, err
	}
	mods := []moduleFile{{config.ModuleName, configFile}}
	sizes := map[string]int{config.ModuleName: len(data)}
	var errs []error
	for _, name := range cfg.Modules() {
		i := slices.IndexFunc(flags, func(f moduleFile) bool { return f.name == name })
		path := filepath.Join(filepath.Dir(configFile), name)
		if i >= 0 {
			path = flags[i].path
		}
		fi, err := os.Stat(path)
		switch {
		case err == nil && !fi.Mode().IsRegular():
			err = fmt.Errorf("%s is not a regular file", path)
		case err == nil:
			sizes[name] = int(fi.Size())
			mods = append(mods, moduleFile{name, path})
			continue
		}
		if i < 0 {
			err = fmt.Errorf("%w (give the module's file with -module %s=PATH)", err, name)
		}
		errs = append(errs, fmt.Errorf("%s: module %q: %w", wantedBy(cfg, name), name, err))
	}
	for _, f := range flags {
		if !slices.Contains(cfg.Modules(), f.name) {
			errs = append(errs, fmt.Errorf("-module %s=%s: %s names no module %q", f.name, f.path, configFile, f.name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Empty files: the configuration's own check, with its lines.
	if err := cfg.Check(sizes); err != nil {
		return nil, err
	}
	return mods, nil
}

// moduleNames is the names resolveModules would give, without looking for
// the modules' files.
func moduleNames(configFile string, flags moduleFlags) ([]string, error) {
	var names []string
	if configFile == "" {
		for _, f := range flags {
			names = append(names, f.name)
		}
		return names, nil
	}
	data, err := os.ReadFile(configFile)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	cfg, err := config.Parse(configFile, data)
	if err != nil {
		return nil, err
	}
	return append([]string{config.ModuleName}, cfg.Modules()...), nil
}

// wantedBy names the first partition field that names module name, with
// its file and line.
func wantedBy(cfg *config.Config, name string) string {
	for i, p := range cfg.Partitions {
		if p.Kernel == name {
			return cfg.Where(i, "kernel")
		}
		if p.Initrd == name {
			return cfg.Where(i, "initrd")
		}
	}
	return cfg.File()
}
