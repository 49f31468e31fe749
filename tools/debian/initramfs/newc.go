package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The "newc" cpio format, the one the kernel's initramfs unpacker reads
// (Linux Documentation/driver-api/early-userspace/buffer-format.rst,
// init/initramfs.c): per entry a 110-byte ASCII header — the magic "070701"
// and thirteen 8-digit hexadecimal fields — then the NUL-terminated name,
// padded to a multiple of four bytes counted from the header's start, then
// the data, padded to four bytes. The archive ends with an entry named
// "TRAILER!!!". A symlink's data is its target; a device node has no data
// and its numbers in rdevmajor/rdevminor.
//
// It is written here rather than taken from a cpio library because it is
// this small, because the kernel is its only reader (which ignores the
// checksum field of "070701" and needs no hard-link support), and so the
// module's go.mod, shared by every package, gains no dependency.

// File types in Header.Mode, as in stat(2) and the cpio header.
const (
	TypeMask    = 0o170000
	TypeSocket  = 0o140000
	TypeSymlink = 0o120000
	TypeReg     = 0o100000
	TypeBlock   = 0o060000
	TypeDir     = 0o040000
	TypeChar    = 0o020000
	TypeFIFO    = 0o010000
)

const (
	newcMagic  = "070701"
	headerSize = 110
	trailer    = "TRAILER!!!"
	// maxName bounds a name the Reader accepts: the kernel's PATH_MAX.
	maxName = 4096
)

// Header is one archive entry.
type Header struct {
	Name                 string // path in the archive, without a leading "/": "bin/busybox"
	Mode                 uint32 // type and permission bits: TypeReg | 0o755
	UID, GID             uint32
	Nlink                uint32 // the Writer puts 2 for a directory and 1 otherwise when 0
	Mtime                uint32 // seconds since 1970; 0 keeps archives reproducible
	Size                 int64  // bytes of data: a regular file's contents, a symlink's target
	DevMajor, DevMinor   uint32 // the device the file lives on (0 here)
	RdevMajor, RdevMinor uint32 // a character or block device node's numbers
	Ino                  uint32 // set by the Writer; read back by the Reader
}

// Writer writes a newc archive.
type Writer struct {
	w       *countingWriter
	ino     uint32
	remain  int64 // data the current entry still expects
	pad     int   // padding owed after the current entry's data
	closed  bool
	written map[string]bool
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewWriter returns a Writer that writes an archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: &countingWriter{w: w}, written: map[string]bool{}}
}

// ErrWriteTooLong is returned when more data is written than the entry's
// Size, ErrShortEntry when the next header comes before Size bytes.
var (
	ErrWriteTooLong = errors.New("cpio: write exceeds the entry's size")
	ErrShortEntry   = errors.New("cpio: entry's data shorter than its size")
)

// WriteHeader starts an entry; its Size bytes of data follow through Write.
// A name given twice is refused: the kernel would silently keep the last.
func (w *Writer) WriteHeader(h *Header) error {
	if w.closed {
		return errors.New("cpio: write after Close")
	}
	if err := w.finishEntry(); err != nil {
		return err
	}
	switch {
	case h.Name == "" || h.Name[0] == '/' || len(h.Name)+1 > maxName:
		return fmt.Errorf("cpio: bad name %q", h.Name)
	case h.Name == trailer:
		return fmt.Errorf("cpio: %s is the end marker", trailer)
	case w.written[h.Name]:
		return fmt.Errorf("cpio: %s written twice", h.Name)
	case h.Size < 0 || h.Size > 0xffffffff:
		return fmt.Errorf("cpio: %s: size %d does not fit the format", h.Name, h.Size)
	case h.Mode&TypeMask == 0:
		return fmt.Errorf("cpio: %s: mode %#o has no file type", h.Name, h.Mode)
	case h.Size > 0 && h.Mode&TypeMask != TypeReg && h.Mode&TypeMask != TypeSymlink:
		return fmt.Errorf("cpio: %s: only files and symlinks have data", h.Name)
	}
	w.written[h.Name] = true
	w.ino++
	hh := *h
	hh.Ino = w.ino
	if hh.Nlink == 0 {
		hh.Nlink = 1
		if hh.Mode&TypeMask == TypeDir {
			hh.Nlink = 2
		}
	}
	return w.writeHeader(&hh)
}

func (w *Writer) writeHeader(h *Header) error {
	b := make([]byte, 0, headerSize+len(h.Name)+4)
	b = append(b, newcMagic...)
	for _, v := range []uint32{h.Ino, h.Mode, h.UID, h.GID, h.Nlink, h.Mtime, uint32(h.Size),
		h.DevMajor, h.DevMinor, h.RdevMajor, h.RdevMinor, uint32(len(h.Name) + 1), 0} {
		b = fmt.Appendf(b, "%08x", v)
	}
	b = append(b, h.Name...)
	b = append(b, 0)
	b = append(b, make([]byte, pad4(len(b)))...)
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	w.remain = h.Size
	w.pad = pad4(int(h.Size))
	return nil
}

// Write writes the current entry's data.
func (w *Writer) Write(p []byte) (int, error) {
	if int64(len(p)) > w.remain {
		n, err := w.w.Write(p[:w.remain])
		w.remain -= int64(n)
		if err == nil {
			err = ErrWriteTooLong
		}
		return n, err
	}
	n, err := w.w.Write(p)
	w.remain -= int64(n)
	return n, err
}

func (w *Writer) finishEntry() error {
	if w.remain != 0 {
		return ErrShortEntry
	}
	if w.pad > 0 {
		if _, err := w.w.Write(make([]byte, w.pad)); err != nil {
			return err
		}
		w.pad = 0
	}
	return nil
}

// Close ends the archive with the trailer entry. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if err := w.finishEntry(); err != nil {
		return err
	}
	w.closed = true
	if err := w.writeHeader(&Header{Name: trailer, Nlink: 1}); err != nil {
		return err
	}
	return nil
}

func pad4(n int) int { return (4 - n%4) % 4 }

// Reader reads a newc archive, for tests and tools that check what an
// initramfs holds.
type Reader struct {
	r      *bufio.Reader
	remain int64
	pad    int
	done   bool
}

// NewReader returns a Reader of the archive in r (uncompressed).
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReader(r)} }

// Next skips to the next entry and returns its header; io.EOF after the
// trailer.
func (r *Reader) Next() (*Header, error) {
	if r.done {
		return nil, io.EOF
	}
	if _, err := io.CopyN(io.Discard, r.r, r.remain+int64(r.pad)); err != nil {
		return nil, unexpected(err)
	}
	r.remain, r.pad = 0, 0
	var hb [headerSize]byte
	if _, err := io.ReadFull(r.r, hb[:]); err != nil {
		return nil, unexpected(err)
	}
	if m := string(hb[:6]); m != newcMagic && m != "070702" {
		return nil, fmt.Errorf("cpio: magic %q, want %s (newc)", m, newcMagic)
	}
	var f [13]uint32
	for i := range f {
		v, err := strconv.ParseUint(string(hb[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("cpio: header field %d: %q is not hexadecimal", i, hb[6+8*i:14+8*i])
		}
		f[i] = uint32(v)
	}
	nameSize := int(f[11])
	if nameSize < 1 || nameSize > maxName {
		return nil, fmt.Errorf("cpio: name size %d", nameSize)
	}
	name := make([]byte, nameSize+pad4(headerSize+nameSize))
	if _, err := io.ReadFull(r.r, name); err != nil {
		return nil, unexpected(err)
	}
	if name[nameSize-1] != 0 {
		return nil, errors.New("cpio: name not NUL-terminated")
	}
	h := &Header{
		Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], Nlink: f[4], Mtime: f[5], Size: int64(f[6]),
		DevMajor: f[7], DevMinor: f[8], RdevMajor: f[9], RdevMinor: f[10],
		Name: string(name[:nameSize-1]),
	}
	if h.Name == trailer {
		r.done = true
		return nil, io.EOF
	}
	r.remain, r.pad = h.Size, pad4(int(h.Size))
	return h, nil
}

// Read reads the current entry's data.
func (r *Reader) Read(p []byte) (int, error) {
	if r.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.r.Read(p)
	r.remain -= int64(n)
	if err == io.EOF && r.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func unexpected(err error) error {
	if err == io.EOF {
		return fmt.Errorf("cpio: archive ends without %s: %w", trailer, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("cpio: %w", err)
}
