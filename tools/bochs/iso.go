package bochs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gohv/tools/media/bootmedia"
)

// BuildISO writes a GRUB ISO at out that boots kernel (build/gohv) at once
// (no menu timeout) with the kernel command-line words of cmdline, its
// console on COM1 at 115200 baud. It uses the project's boot-media builder
// (package bootmedia, grub-mkrescue), so the medium is the one users boot.
//
// bootmedia offers two menu entries: the self-checks and the default
// configuration, each with the same extra words. A command line holding
// "selftest" boots the first, anything else (also "hvtest", "bench" or
// nothing) the second with those words.
func BuildISO(kernel, cmdline, out string) error {
	return BuildISOContext(context.Background(), kernel, cmdline, out)
}

// BuildISOContext is BuildISO under a context.
func BuildISOContext(ctx context.Context, kernel, cmdline, out string) error {
	return BuildISOModules(ctx, kernel, cmdline, out, nil)
}

// BuildISOModules is BuildISOContext with boot modules on the ISO, loaded
// beside the kernel in order (the partition configuration, named "config",
// and the files it names), as `gohvctl media` puts them on every medium.
func BuildISOModules(ctx context.Context, kernel, cmdline, out string, mods []*bootmedia.Module) error {
	c, err := MediaConfig(cmdline)
	if err != nil {
		return err
	}
	for _, m := range mods {
		c.Modules = append(c.Modules, m.Name)
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("bochs: %w", err)
	}
	k, err := bootmedia.ReadKernel(kernel)
	if err != nil {
		return fmt.Errorf("bochs: %w", err)
	}
	if dir := filepath.Dir(out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("bochs: %w", err)
		}
	}
	b := &bootmedia.Builder{Kernel: k, Config: c, Modules: mods}
	if err := b.ISO(ctx, out); err != nil {
		var miss *bootmedia.MissingError
		if errors.As(err, &miss) {
			return fmt.Errorf("bochs: cannot build the boot ISO: %w", err)
		}
		return fmt.Errorf("bochs: %w", err)
	}
	return nil
}

// MediaConfig is the boot configuration BuildISO writes for cmdline.
func MediaConfig(cmdline string) (bootmedia.Config, error) {
	c := bootmedia.DefaultConfig()
	c.Timeout = 0
	c.Default = bootmedia.EntryRun
	words := strings.Fields(cmdline)
	if slices.Contains(words, bootmedia.EntrySelftest) {
		c.Default = bootmedia.EntrySelftest
		words = slices.DeleteFunc(words, func(w string) bool { return w == bootmedia.EntrySelftest })
	}
	if len(words) > 0 {
		c.Args = words
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("bochs: kernel command line %q: %w", cmdline, err)
	}
	return c, nil
}
