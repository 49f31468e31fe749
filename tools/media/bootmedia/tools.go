package bootmedia

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A host program the builders run, and the Debian package that ships it.
type hostTool struct{ name, pkg string }

var (
	toolMkrescue = hostTool{"grub-mkrescue", "grub-common"}
	toolMknetdir = hostTool{"grub-mknetdir", "grub-common"}
	toolMkimage  = hostTool{"grub-mkimage", "grub-common"}
	toolXorriso  = hostTool{"xorriso", "xorriso"}
	toolMformat  = hostTool{"mformat", "mtools"}
	toolMcopy    = hostTool{"mcopy", "mtools"}
	toolMmd      = hostTool{"mmd", "mtools"}
)

// A GRUB platform whose modules and images the builders need.
type grubPlatform struct{ name, pkg string }

var (
	platformBIOS = grubPlatform{"i386-pc", "grub-pc-bin"}
	platformEFI  = grubPlatform{"x86_64-efi", "grub-efi-amd64-bin"}
)

// DefaultGrubLib is where Debian installs GRUB's per-platform directories.
const DefaultGrubLib = "/usr/lib/grub"

// MissingError says which host programs or GRUB platforms are not installed,
// and which Debian packages bring them.
type MissingError struct {
	What     []string // program names or GRUB platform directories
	Packages []string // Debian packages, deduplicated, in order
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("missing %s (Debian: apt-get install %s)",
		strings.Join(e.What, ", "), strings.Join(e.Packages, " "))
}

// Builder builds boot media for one kernel and boot configuration.
type Builder struct {
	Kernel *Kernel
	Config Config
	// Modules are the boot modules' files, one for each name in
	// Config.Modules, in the same order.
	Modules []*Module
	// GrubLib holds GRUB's platform directories (i386-pc, x86_64-efi);
	// empty means DefaultGrubLib. grub-mkimage and grub-mknetdir are pointed
	// into it one platform at a time; grub-mkrescue reads only its built-in
	// directory (with -d it would build for one platform), so ISO requires
	// the default.
	GrubLib string
	// Log receives one line per step and the output of the host programs;
	// nil discards it.
	Log io.Writer
	// LookPath finds host programs; nil means exec.LookPath.
	LookPath func(string) (string, error)
}

func (b *Builder) grubLib() string {
	if b.GrubLib != "" {
		return b.GrubLib
	}
	return DefaultGrubLib
}

func (b *Builder) platformDir(p grubPlatform) string {
	return filepath.Join(b.grubLib(), p.name)
}

func (b *Builder) logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, "media: "+format+"\n", args...)
	}
}

// require checks that the host programs and GRUB platforms are installed and
// returns the programs' paths by name.
func (b *Builder) require(tools []hostTool, platforms []grubPlatform) (map[string]string, error) {
	if b.Kernel == nil {
		return nil, fmt.Errorf("no kernel given")
	}
	look := b.LookPath
	if look == nil {
		look = exec.LookPath
	}
	miss := &MissingError{}
	addPkg := func(p string) {
		for _, q := range miss.Packages {
			if q == p {
				return
			}
		}
		miss.Packages = append(miss.Packages, p)
	}
	paths := map[string]string{}
	for _, t := range tools {
		p, err := look(t.name)
		if err != nil {
			miss.What = append(miss.What, t.name)
			addPkg(t.pkg)
			continue
		}
		paths[t.name] = p
	}
	for _, p := range platforms {
		// moddep.lst is what every GRUB tool reads first from a platform
		// directory; an empty or half-removed directory lacks it.
		if _, err := os.Stat(filepath.Join(b.platformDir(p), "moddep.lst")); err != nil {
			miss.What = append(miss.What, "GRUB "+p.name+" modules in "+b.platformDir(p))
			addPkg(p.pkg)
		}
	}
	if len(miss.What) > 0 {
		return nil, miss
	}
	return paths, nil
}

// run runs a host program, logging its output; a failure carries the output.
func (b *Builder) run(ctx context.Context, env []string, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	b.logf("run %s %s", filepath.Base(prog), strings.Join(args, " "))
	err := cmd.Run()
	if b.Log != nil && out.Len() > 0 {
		b.Log.Write(out.Bytes())
	}
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 4000 {
			msg = "..." + msg[len(msg)-4000:]
		}
		if msg != "" {
			return fmt.Errorf("%s: %w:\n%s", filepath.Base(prog), err, msg)
		}
		return fmt.Errorf("%s: %w", filepath.Base(prog), err)
	}
	return nil
}

// output runs a host program and returns its standard output.
func (b *Builder) output(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(prog), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// replaceFile moves a finished temporary file to its final path, replacing
// what was there.
func replaceFile(tmp, final string) error {
	return os.Rename(tmp, final)
}

// replaceDir moves a finished temporary directory to its final path. An
// existing directory there is removed first only if isOurs says it is a
// previous build of the same kind (or it is empty): a mistyped -out must not
// delete someone's files.
func replaceDir(tmp, final string, isOurs func(dir string) bool) error {
	fi, err := os.Lstat(final)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s exists and is not a directory", final)
	default:
		ents, err := os.ReadDir(final)
		if err != nil {
			return err
		}
		if len(ents) > 0 && !isOurs(final) {
			return fmt.Errorf("refusing to replace %s: it is not empty and not a tree this tool built", final)
		}
		if err := os.RemoveAll(final); err != nil {
			return err
		}
	}
	return os.Rename(tmp, final)
}
