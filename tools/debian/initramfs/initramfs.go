// Package initramfs builds the small initramfs a test Linux guest boots
// into: a newc cpio archive (the kernel's own format, written by newc.go)
// holding a static busybox, the applet links its /init uses, /dev/console
// and /dev/null, the mount points, the /init script the caller chooses, and
// whatever further files (kernel modules) the caller adds. DefaultInit is a
// test init that reports what the kernel found as "guest: key value" lines
// and powers off; ParseConsole reads those lines and the kernel's
// "Run /init" timestamp back off the serial console.
//
// Archives are reproducible: owner root, mtime 0, entries in a fixed order,
// so the same inputs give the same bytes (and SHA-256).
package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultApplets are the busybox applets linked in /bin when Spec.Applets
// is nil: what DefaultInit runs, and enough for a person at the guest's
// shell.
var DefaultApplets = []string{
	"sh", "ash", "cat", "cp", "cut", "dd", "df", "dmesg", "echo", "false", "free",
	"grep", "halt", "head", "hexdump", "insmod", "ln", "ls", "lsmod", "mkdir",
	"mknod", "modprobe", "mount", "mv", "poweroff", "printf", "ps", "reboot",
	"rm", "rmmod", "sed", "setsid", "cttyhack", "sleep", "stty", "sync", "tail",
	"test", "[", "tr", "true", "umount", "uname", "uptime", "vi", "wc",
}

// Dirs are the directories every initramfs has.
var Dirs = []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root"}

// ModulesList is the file DefaultInit reads the modules to load from: one
// archive path a line, in load order (dependencies first).
const ModulesList = "etc/modules.load"

// File is a file the caller adds to the archive.
type File struct {
	Name   string // path in the archive: lib/modules/<release>/kernel/drivers/hv/hv_vmbus.ko
	Mode   uint32 // permission bits; 0 means 0o644
	Data   []byte // the contents; when nil, Source's
	Source string // a host file to copy when Data is nil
}

// Spec describes an initramfs.
type Spec struct {
	Busybox string   // host path of a static busybox (Debian busybox-static's /bin/busybox); required
	Init    string   // the /init script, "#!/bin/sh" first; DefaultInit when ""
	Applets []string // names linked to /bin/busybox in /bin; DefaultApplets when nil
	Files   []File   // added after the rest, parent directories made as needed
	// Modules are archive paths of kernel modules (already among Files) to
	// list in ModulesList, in load order, for DefaultInit to insmod.
	Modules []string
	Gzip    bool // gzip the archive (the kernel detects the compression)
}

// Write writes the archive to w.
func (s Spec) Write(w io.Writer) error {
	init := s.Init
	if init == "" {
		init = DefaultInit
	}
	if !strings.HasPrefix(init, "#!") {
		return fmt.Errorf("initramfs: the /init script must start with #! (the kernel execs it): %.20q", init)
	}
	if s.Busybox == "" {
		return fmt.Errorf("initramfs: no busybox given")
	}
	bb, err := os.ReadFile(s.Busybox)
	if err != nil {
		return fmt.Errorf("initramfs: busybox: %w", err)
	}
	if !bytes.HasPrefix(bb, []byte("\x7fELF")) {
		return fmt.Errorf("initramfs: %s is not an ELF executable", s.Busybox)
	}
	applets := s.Applets
	if applets == nil {
		applets = DefaultApplets
	}

	var zw *gzip.Writer
	out := w
	if s.Gzip {
		// No ModTime: the gzip header's MTIME stays 0, so output repeats.
		zw, _ = gzip.NewWriterLevel(w, gzip.BestCompression)
		out = zw
	}
	a := &archive{w: NewWriter(out), dirs: map[string]bool{}}
	for _, d := range Dirs {
		a.dir(d)
	}
	a.node("dev/console", TypeChar|0o600, 5, 1) // devices.txt: the system console
	a.node("dev/null", TypeChar|0o666, 1, 3)
	a.file("bin/busybox", 0o755, bb)
	for _, ap := range applets {
		if ap == "" || strings.Contains(ap, "/") || ap == "busybox" {
			return fmt.Errorf("initramfs: applet name %q", ap)
		}
		a.symlink("bin/"+ap, "busybox")
	}
	a.file("init", 0o755, []byte(init))
	for _, f := range s.Files {
		name := strings.TrimPrefix(path.Clean("/"+f.Name), "/")
		if name == "" || name != strings.TrimPrefix(f.Name, "/") {
			return fmt.Errorf("initramfs: file name %q is not a clean path", f.Name)
		}
		data := f.Data
		if data == nil {
			if data, err = os.ReadFile(f.Source); err != nil {
				return fmt.Errorf("initramfs: %s: %w", name, err)
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		a.file(name, mode&0o7777, data)
	}
	if len(s.Modules) > 0 {
		a.file(ModulesList, 0o644, []byte(strings.Join(s.Modules, "\n")+"\n"))
	}
	if a.err == nil {
		a.err = a.w.Close()
	}
	if zw != nil && a.err == nil {
		a.err = zw.Close()
	}
	if a.err != nil {
		return fmt.Errorf("initramfs: %w", a.err)
	}
	return nil
}

// WriteFile writes the archive to path, through a temporary file renamed
// into place.
func (s Spec) WriteFile(name string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = s.Write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// archive writes entries, making parent directories first (the kernel's
// unpacker creates no missing parents) and remembering the first error.
type archive struct {
	w    *Writer
	dirs map[string]bool
	err  error
}

func (a *archive) dir(name string) {
	if a.err != nil || name == "." || a.dirs[name] {
		return
	}
	a.dir(path.Dir(name))
	a.dirs[name] = true
	a.err = a.w.WriteHeader(&Header{Name: name, Mode: TypeDir | 0o755})
}

func (a *archive) parent(name string) { a.dir(path.Dir(name)) }

func (a *archive) node(name string, mode, major, minor uint32) {
	a.parent(name)
	if a.err == nil {
		a.err = a.w.WriteHeader(&Header{Name: name, Mode: mode, RdevMajor: major, RdevMinor: minor})
	}
}

func (a *archive) symlink(name, target string) {
	a.data(name, TypeSymlink|0o777, []byte(target))
}

func (a *archive) file(name string, perm uint32, data []byte) {
	a.data(name, TypeReg|perm, data)
}

func (a *archive) data(name string, mode uint32, data []byte) {
	a.parent(name)
	if a.err != nil {
		return
	}
	if a.err = a.w.WriteHeader(&Header{Name: name, Mode: mode, Size: int64(len(data))}); a.err == nil {
		_, a.err = a.w.Write(data)
	}
}
