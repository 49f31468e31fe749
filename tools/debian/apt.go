package debian

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ErrNoAptGet is returned by Fetch on a host without apt-get (not Debian or
// a derivative): there the caller provides the kernel and busybox itself.
var ErrNoAptGet = errors.New("no apt-get")

// Artifact is one .deb as `apt-get download --print-uris` describes it,
// from the local package lists and without a network request.
type Artifact struct {
	Package string // the package name: File up to its first "_"
	URI     string
	File    string // the name apt-get download gives the file ("%3a" for an epoch's colon)
	Size    int64
	Hash    string // "SHA256:hex" (or "SHA512:hex"), as apt prints it
}

// ParsePrintURIs parses the output of `apt-get download --print-uris`: one
// line per package, "'URI' file size HASHTYPE:hex". apt does not keep the
// order of its command line.
func ParsePrintURIs(out string) ([]Artifact, error) {
	var as []Artifact
	for n, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 || len(f[0]) < 2 || f[0][0] != '\'' || f[0][len(f[0])-1] != '\'' {
			return nil, fmt.Errorf("apt-get --print-uris: line %d: %q is not 'URI' file size hash", n+1, line)
		}
		a := Artifact{URI: f[0][1 : len(f[0])-1], File: f[1], Hash: f[3]}
		pkg, _, ok := strings.Cut(a.File, "_")
		if !ok || !validPackageName(pkg) || strings.ContainsAny(a.File, "/\\") || !strings.HasSuffix(a.File, ".deb") {
			return nil, fmt.Errorf("apt-get --print-uris: line %d: %q is not a package file name", n+1, a.File)
		}
		a.Package = pkg
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || size <= 0 {
			return nil, fmt.Errorf("apt-get --print-uris: line %d: size %q", n+1, f[2])
		}
		a.Size = size
		if _, _, err := hashFor(a.Hash); err != nil {
			return nil, fmt.Errorf("apt-get --print-uris: line %d: %w", n+1, err)
		}
		as = append(as, a)
	}
	return as, nil
}

// hashFor returns a hash of the kind of an apt hash string and the digest
// it names.
func hashFor(s string) (hash.Hash, []byte, error) {
	kind, hexSum, _ := strings.Cut(s, ":")
	var h hash.Hash
	switch kind {
	case "SHA256":
		h = sha256.New()
	case "SHA512":
		h = sha512.New()
	default:
		return nil, nil, fmt.Errorf("hash %q: want SHA256:hex or SHA512:hex", s)
	}
	sum, err := hex.DecodeString(hexSum)
	if err != nil || len(sum) != h.Size() {
		return nil, nil, fmt.Errorf("hash %q: not %d hex bytes", s, h.Size())
	}
	return h, sum, nil
}

// Verify reports whether the file at path is this artifact: its size and
// apt's hash.
func (a Artifact) Verify(path string) error {
	h, want, err := hashFor(a.Hash)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != a.Size {
		return fmt.Errorf("%s: %d bytes, the package lists say %d", path, n, a.Size)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("%s: hash is not the package lists' %s", path, a.Hash)
	}
	return nil
}

// apt runs apt-get.
type apt struct {
	bin string
	log func(format string, args ...any)
}

// run runs apt-get with args in dir and returns its standard output.
func (a apt) run(ctx context.Context, dir string, args ...string) (string, error) {
	if _, err := exec.LookPath(a.bin); err != nil {
		return "", ErrNoAptGet
	}
	cmd := exec.CommandContext(ctx, a.bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		err = fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, lastLines(msg, 4))
		if staleLists(msg) {
			err = fmt.Errorf("%w (the package lists may be missing or out of date: run apt-get update as root)", err)
		}
		return "", err
	}
	return stdout.String(), nil
}

// staleLists recognises apt's complaints that mean its lists are missing or
// older than the archive.
func staleLists(msg string) bool {
	for _, s := range []string{"Unable to locate package", "was not found", "404", "Failed to fetch", "Hash Sum mismatch"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "; ")
}

// printURIs asks apt which files the specs resolve to (no network request).
func (a apt) printURIs(ctx context.Context, specs ...string) (map[string]Artifact, error) {
	out, err := a.run(ctx, "", append([]string{"-q", "download", "--print-uris"}, specs...)...)
	if err != nil {
		return nil, err
	}
	as, err := ParsePrintURIs(out)
	if err != nil {
		return nil, err
	}
	m := map[string]Artifact{}
	for _, x := range as {
		m[x.Package] = x
	}
	for _, s := range specs {
		name, _, _ := strings.Cut(s, "=")
		if _, ok := m[name]; !ok {
			return nil, fmt.Errorf("apt-get download --print-uris %s: no file for %s", strings.Join(specs, " "), name)
		}
	}
	return m, nil
}

// download fetches one package file into dir (the network request).
func (a apt) download(ctx context.Context, dir, spec string) error {
	a.log("apt-get download %s", spec)
	_, err := a.run(ctx, dir, "-q", "download", spec)
	return err
}
