package scsi

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Disk is the backing store of a logical unit: a boot module's disk image
// today, a physical disk later.
type Disk interface {
	// ReadAt and WriteAt follow io.ReaderAt and io.WriterAt, and must be
	// safe for concurrent use on different ranges. The logical unit only
	// asks for whole blocks inside [0, Size()).
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Size is the disk's length in bytes: a multiple of BlockSize.
	Size() int64
	// BlockSize is the logical block size: a power of two from 512 to
	// 65536.
	BlockSize() int
	// ReadOnly disks refuse every write with DATA PROTECT.
	ReadOnly() bool
	// Flush makes every completed write durable (SYNCHRONIZE CACHE, FUA).
	Flush() error
}

// Unmapper is a Disk that can deallocate blocks. A logical unit advertises
// UNMAP (READ CAPACITY(16) LBPME, VPD pages 0xB0 and 0xB2) only when its
// writable disk implements it.
type Unmapper interface {
	// Unmap deallocates n bytes at off (whole blocks inside the disk);
	// afterwards they read as zeros (LBPRZ is advertised).
	Unmap(off, n int64) error
}

// Buffer is one command's data buffer in the initiator's memory: for the
// VSP, the guest pages a VSTOR request names. Offsets are from the
// buffer's start.
type Buffer interface {
	// Len is the buffer's length in bytes.
	Len() int
	// ReadAt copies data-out (initiator → device) bytes from the buffer.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt copies data-in (device → initiator) bytes into the buffer.
	WriteAt(p []byte, off int64) (int, error)
}

// SliceBuffer is a Buffer over a byte slice.
type SliceBuffer []byte

// Len implements Buffer.
func (b SliceBuffer) Len() int { return len(b) }

// ReadAt implements Buffer.
func (b SliceBuffer) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements Buffer.
func (b SliceBuffer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.ErrShortWrite
	}
	n := copy(b[off:], p)
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// ErrReadOnly is a RAMDisk's answer to a write when it is read-only.
var ErrReadOnly = errors.New("scsi: read-only disk")

// RAMDisk is a Disk in memory that also unmaps (zeroing): for tests, and
// for small scratch disks.
type RAMDisk struct {
	mu       sync.RWMutex
	data     []byte
	bs       int
	ro       bool
	flushes  int
	unmapped int64
}

// NewRAMDisk makes a disk over data (used, not copied), whose length must
// be a multiple of blockSize.
func NewRAMDisk(data []byte, blockSize int, readOnly bool) (*RAMDisk, error) {
	if err := checkGeometry(int64(len(data)), blockSize); err != nil {
		return nil, err
	}
	return &RAMDisk{data: data, bs: blockSize, ro: readOnly}, nil
}

func checkGeometry(size int64, bs int) error {
	if bs < 512 || bs > 65536 || bs&(bs-1) != 0 {
		return fmt.Errorf("scsi: block size %d: not a power of two from 512 to 65536", bs)
	}
	if size <= 0 || size%int64(bs) != 0 {
		return fmt.Errorf("scsi: disk size %d: not a positive multiple of the block size %d", size, bs)
	}
	return nil
}

// ReadAt implements Disk.
func (d *RAMDisk) ReadAt(p []byte, off int64) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if off < 0 || off > int64(len(d.data)) {
		return 0, io.EOF
	}
	n := copy(p, d.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements Disk.
func (d *RAMDisk) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ro {
		return 0, ErrReadOnly
	}
	if off < 0 || off > int64(len(d.data)) {
		return 0, io.ErrShortWrite
	}
	n := copy(d.data[off:], p)
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// Unmap implements Unmapper by zeroing.
func (d *RAMDisk) Unmap(off, n int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ro {
		return ErrReadOnly
	}
	if off < 0 || n < 0 || off > int64(len(d.data)) || n > int64(len(d.data))-off {
		return io.ErrShortWrite
	}
	clear(d.data[off : off+n])
	d.unmapped += n
	return nil
}

// Size implements Disk.
func (d *RAMDisk) Size() int64 { return int64(len(d.data)) }

// BlockSize implements Disk.
func (d *RAMDisk) BlockSize() int { return d.bs }

// ReadOnly implements Disk.
func (d *RAMDisk) ReadOnly() bool { return d.ro }

// Flush implements Disk; it counts the calls.
func (d *RAMDisk) Flush() error {
	d.mu.Lock()
	d.flushes++
	d.mu.Unlock()
	return nil
}

// Flushes is how many times Flush was called.
func (d *RAMDisk) Flushes() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.flushes
}

// Unmapped is how many bytes Unmap has zeroed.
func (d *RAMDisk) Unmapped() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.unmapped
}

// Bytes is the disk's contents (the slice it was made over).
func (d *RAMDisk) Bytes() []byte { return d.data }
