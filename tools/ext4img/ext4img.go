// Package ext4img builds ext4 file-system images on the host for test
// guests and `make run`'s disk: mke2fs (Debian's e2fsprogs) with -d
// copies a directory tree into a new image. The same files give the same
// image, byte for byte: the UUID, the directory hash seed, the time
// mke2fs records and the files' times are fixed, so a test's expected
// hashes hold and a failure repeats.
package ext4img

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// File is one regular file in the image.
type File struct {
	Name string // path in the file system, relative: "hello.txt", "dir/data"
	Data []byte
	Mode os.FileMode // permission bits; 0 means 0o644
}

// Fixed identity and time of every image (see the package comment).
const (
	uuid     = "676f6876-6578-4434-8000-000000000001"
	hashSeed = "676f6876-6578-4434-8000-000000000002"
	epoch    = 1700000000 // 2023-11-14, the time mke2fs and the files record
)

// Mke2fs is the program Build runs; tests point it elsewhere.
var Mke2fs = "mke2fs"

// Build writes an ext4 image of sizeMiB MiB holding files to out: 4 KiB
// blocks, a journal, and metadata checksums whatever the host's
// mke2fs.conf says (so a Linux guest mounting it needs a crc32c driver,
// e.g. crc32c_generic). The root directory is root's; the files are owned
// by whoever runs Build.
func Build(ctx context.Context, out string, sizeMiB int, files []File) error {
	if sizeMiB < 1 {
		return fmt.Errorf("ext4img: %s: size %d MiB", out, sizeMiB)
	}
	mke2fs, err := lookMke2fs()
	if err != nil {
		return err
	}
	src, err := os.MkdirTemp("", "gohv-ext4img-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	t := time.Unix(epoch, 0)
	for _, f := range files {
		name := filepath.Clean(f.Name)
		if name == "." || filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("ext4img: file name %q: want a relative path inside the file system", f.Name)
		}
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, f.Data, mode); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			return err
		}
		if err := os.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	// Directories last: writing their files changed their times.
	if err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chtimes(p, t, t)
	}); err != nil {
		return err
	}
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cmd := exec.CommandContext(ctx, mke2fs, "-q", "-F", "-t", "ext4", "-b", "4096", "-O", "metadata_csum", "-U", uuid,
		"-E", "hash_seed="+hashSeed+",root_owner=0:0", "-d", src, out, strconv.Itoa(sizeMiB)+"M")
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.Itoa(epoch))
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ext4img: %s: %v: %s", out, err, strings.TrimSpace(msg.String()))
	}
	return nil
}

// lookMke2fs finds Mke2fs on PATH or, for a user whose PATH lacks the
// administrator's directories, in /usr/sbin and /sbin.
func lookMke2fs() (string, error) {
	p, err := exec.LookPath(Mke2fs)
	if err == nil {
		return p, nil
	}
	if !strings.Contains(Mke2fs, "/") {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if p, err2 := exec.LookPath(filepath.Join(dir, Mke2fs)); err2 == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("ext4img: %w (Debian's e2fsprogs has it)", err)
}
