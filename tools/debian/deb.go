package debian

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"
	"syscall"
	"time"
)

// A .deb is an ar archive of debian-binary, control.tar.* and data.tar.*,
// each tar compressed with xz on Debian today (gzip, zstd or none
// elsewhere). dpkg-deb, which every host with apt-get has (apt depends on
// dpkg), hands out either tar uncompressed: --ctrl-tarfile and
// --fsys-tarfile. This file reads those streams with archive/tar, so no xz
// decoder enters the module, the decompression runs at liblzma's speed
// (4 s for the 400 MB of a kernel package here), and only the members asked
// for ever reach the disk.

// ErrNoDpkgDeb is returned when dpkg-deb is not installed.
var ErrNoDpkgDeb = errors.New("no dpkg-deb (Debian package dpkg)")

// memberName returns a tar member's path without the "./" dpkg-deb puts
// in front, or "" for the archive's root.
func memberName(h *tar.Header) string {
	return strings.TrimPrefix(path.Clean("/"+h.Name), "/")
}

// walkTar runs dpkg-deb with the flag that emits one of deb's tars on
// stdout and calls visit for each member in archive order. visit returns
// done to stop early; dpkg-deb is then killed and its complaint about the
// closed pipe ignored.
func walkTar(ctx context.Context, dpkgDeb, flag, deb string, visit func(h *tar.Header, r io.Reader) (done bool, err error)) error {
	if _, err := exec.LookPath(dpkgDeb); err != nil {
		return ErrNoDpkgDeb
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, dpkgDeb, flag, deb)
	// dpkg-deb forks a child that decompresses while it reads the archive:
	// a cancelled context must kill both, or the orphan holds the pipes open
	// and Wait never returns. So it runs in a process group of its own, and
	// the whole group goes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s %s %s: %w", dpkgDeb, flag, deb, err)
	}
	walkErr, stopped := func() (error, bool) {
		tr := tar.NewReader(out)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil, false
			}
			if err != nil {
				return fmt.Errorf("%s: %w", deb, err), false
			}
			done, err := visit(h, tr)
			if err != nil || done {
				return err, true
			}
		}
	}()
	if stopped {
		// Closing the pipe ends dpkg-deb the way `| head` would: its writer
		// dies of SIGPIPE and dpkg-deb reaps it and exits.
		out.Close()
	}
	waitErr := cmd.Wait()
	switch {
	case walkErr != nil:
		return walkErr
	case stopped:
		return nil
	case waitErr != nil:
		return fmt.Errorf("%s %s %s: %w: %s", dpkgDeb, flag, deb, waitErr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// ReadControl returns the control paragraph of the binary package deb
// (its DEBIAN/control), read with dpkg-deb.
func ReadControl(ctx context.Context, dpkgDeb, deb string) (Control, error) {
	var text []byte
	err := walkTar(ctx, dpkgDeb, "--ctrl-tarfile", deb, func(h *tar.Header, r io.Reader) (bool, error) {
		if memberName(h) != "control" {
			return false, nil
		}
		var err error
		text, err = io.ReadAll(io.LimitReader(r, 1<<20))
		return true, err
	})
	if err != nil {
		return Control{}, err
	}
	if text == nil {
		return Control{}, fmt.Errorf("%s: no control file in its control archive", deb)
	}
	c, err := ParseControl(string(text))
	if err != nil {
		return Control{}, fmt.Errorf("%s: %w", deb, err)
	}
	return c, nil
}

// walkData calls visit for each member of deb's data archive (the files it
// installs), named as by memberName.
func walkData(ctx context.Context, dpkgDeb, deb string, visit func(h *tar.Header, r io.Reader) (done bool, err error)) error {
	return walkTar(ctx, dpkgDeb, "--fsys-tarfile", deb, visit)
}
