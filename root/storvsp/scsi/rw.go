package scsi

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// chunkSize is how much data one step of a READ or WRITE moves between the
// disk and the initiator's buffer: transfers stream through a pooled
// bounce buffer, so a command's length never sizes an allocation.
const chunkSize = 64 << 10

var chunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// inRange says whether blocks at lba lie inside the disk (SBC-3 4.5).
func (u *LogicalUnit) inRange(lba uint64, blocks uint32) bool {
	return lba <= u.blocks && uint64(blocks) <= u.blocks-lba
}

// checkTransfer applies the checks READ and WRITE share, in the order
// gohv applies them: protection fields and the transfer-length limit (INVALID
// FIELD IN CDB), then the range (LBA OUT OF RANGE), then the buffer's
// length (INVALID FIELD IN CDB); write protection comes between the first
// two for writes.
func (u *LogicalUnit) checkTransfer(c CDB, buf Buffer, write bool) (int64, *Result) {
	if c.Protect != 0 || (u.opts.MaxTransferBlocks != 0 && c.Blocks > u.opts.MaxTransferBlocks) {
		r := illegal(ASCInvalidFieldInCDB)
		return 0, &r
	}
	if write && u.ro {
		r := check(KeyDataProtect, ASCWriteProtected)
		return 0, &r
	}
	if !u.inRange(c.LBA, c.Blocks) {
		r := illegal(ASCLBAOutOfRange)
		return 0, &r
	}
	n := int64(c.Blocks) * u.bs
	if n > int64(buf.Len()) {
		r := illegal(ASCInvalidFieldInCDB)
		return 0, &r
	}
	return n, nil
}

func (u *LogicalUnit) read(c CDB, buf Buffer) Result {
	n, bad := u.checkTransfer(c, buf, false)
	if bad != nil {
		return *bad
	}
	cp := chunks.Get().(*[]byte)
	defer chunks.Put(cp)
	off := int64(c.LBA) * u.bs
	for done := int64(0); done < n; {
		p := (*cp)[:min(int64(len(*cp)), n-done)]
		if k, err := u.disk.ReadAt(p, off+done); k != len(p) {
			r := check(KeyMediumError, ASCUnrecoveredReadError)
			r.Err = fmt.Errorf("scsi: read %d bytes at %d: %d read: %w", len(p), off+done, k, orShort(err))
			r.N = int(done)
			return r
		}
		if _, err := buf.WriteAt(p, done); err != nil {
			return bufferFault(err)
		}
		done += int64(len(p))
	}
	return good(int(n))
}

func (u *LogicalUnit) write(c CDB, buf Buffer) Result {
	n, bad := u.checkTransfer(c, buf, true)
	if bad != nil {
		return *bad
	}
	cp := chunks.Get().(*[]byte)
	defer chunks.Put(cp)
	off := int64(c.LBA) * u.bs
	for done := int64(0); done < n; {
		p := (*cp)[:min(int64(len(*cp)), n-done)]
		if _, err := buf.ReadAt(p, done); err != nil {
			return bufferFault(err)
		}
		if k, err := u.disk.WriteAt(p, off+done); k != len(p) || err != nil {
			r := check(KeyMediumError, ASCWriteError)
			r.Err = fmt.Errorf("scsi: write %d bytes at %d: %d written: %w", len(p), off+done, k, orShort(err))
			r.N = int(done)
			return r
		}
		done += int64(len(p))
	}
	if c.FUA {
		if err := u.disk.Flush(); err != nil {
			r := check(KeyMediumError, ASCWriteError)
			r.Err = fmt.Errorf("scsi: flush after a FUA write: %w", err)
			return r
		}
	}
	return good(int(n))
}

func orShort(err error) error {
	if err == nil {
		return io.ErrShortWrite
	}
	return err
}

// synchronizeCache: the range is checked (NUMBER OF LOGICAL BLOCKS 0 means
// to the end), then the whole disk is flushed; IMMED is honoured by
// flushing before answering anyway.
func (u *LogicalUnit) synchronizeCache(c CDB) Result {
	if !u.inRange(c.LBA, c.Blocks) {
		return illegal(ASCLBAOutOfRange)
	}
	if err := u.disk.Flush(); err != nil {
		r := check(KeyMediumError, ASCWriteError)
		r.Err = fmt.Errorf("scsi: flush: %w", err)
		return r
	}
	return good(0)
}

// readCapacity10 (SBC-3 5.15): with PMI 0 the LBA must be 0. A disk of
// 2^32 blocks or more answers 0xFFFFFFFF, sending the initiator to
// READ CAPACITY (16).
func (u *LogicalUnit) readCapacity10(c CDB, buf Buffer) Result {
	if !c.PMI && c.LBA != 0 {
		return illegal(ASCInvalidFieldInCDB)
	}
	var d [8]byte
	binary.BigEndian.PutUint32(d[0:], uint32(min(u.blocks-1, 0xFFFF_FFFF)))
	binary.BigEndian.PutUint32(d[4:], uint32(u.bs))
	return dataIn(buf, d[:], 8)
}

// readCapacity16 (SBC-3 5.16): 32 bytes; LBPME and LBPRZ when UNMAP is
// served; one logical block per physical block, aligned at 0.
func (u *LogicalUnit) readCapacity16(c CDB, buf Buffer) Result {
	var d [32]byte
	binary.BigEndian.PutUint64(d[0:], u.blocks-1)
	binary.BigEndian.PutUint32(d[8:], uint32(u.bs))
	if u.unmapper != nil {
		d[14] = 0x80 | 0x40 // LBPME, LBPRZ
	}
	return dataIn(buf, d[:], c.AllocationLength)
}

// unmap (SBC-3 5.28): the parameter list is an 8-byte header and 16-byte
// block descriptors {LBA, NUMBER OF LOGICAL BLOCKS}; all descriptors are
// checked before any is applied.
func (u *LogicalUnit) unmap(c CDB, buf Buffer) Result {
	if c.Anchor {
		return illegal(ASCInvalidFieldInCDB) // ANC_SUP is 0
	}
	plen := int(c.ParameterListLength)
	if plen == 0 {
		return good(0)
	}
	if plen < 8 {
		return illegal(ASCParameterListLengthError)
	}
	if plen > buf.Len() {
		return illegal(ASCInvalidFieldInCDB)
	}
	if plen > 8+16*MaxUnmapDescriptors {
		return illegal(ASCInvalidFieldInParameterList)
	}
	pl := make([]byte, plen)
	if _, err := buf.ReadAt(pl, 0); err != nil {
		return bufferFault(err)
	}
	bdl := int(binary.BigEndian.Uint16(pl[2:]))
	// Descriptors past the parameter list, and a partial last one, are
	// ignored (SBC-3 5.28.2).
	n := min(bdl, plen-8) / 16
	type extent struct{ off, len int64 }
	ext := make([]extent, 0, n)
	for i := range n {
		d := pl[8+16*i:]
		lba := binary.BigEndian.Uint64(d[0:])
		blocks := binary.BigEndian.Uint32(d[8:])
		if !u.inRange(lba, blocks) {
			return illegal(ASCLBAOutOfRange)
		}
		if blocks != 0 {
			ext = append(ext, extent{int64(lba) * u.bs, int64(blocks) * u.bs})
		}
	}
	for _, e := range ext {
		if err := u.unmapper.Unmap(e.off, e.len); err != nil {
			r := check(KeyMediumError, ASCWriteError)
			r.Err = fmt.Errorf("scsi: unmap %d bytes at %d: %w", e.len, e.off, err)
			return r
		}
	}
	return good(plen)
}
