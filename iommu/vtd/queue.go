package vtd

import (
	"encoding/binary"
	"fmt"
)

// The queued invalidation interface (VT-d 6.5.2): once the unit's
// translation is on, a unit with ECAP_REG.QI gets a one-page queue of
// 256 128-bit descriptors (IQA_REG, IQH_REG, IQT_REG) and every later
// invalidation is a descriptor — context-cache (6.5.2.2), IOTLB (6.5.2.3)
// — followed by an invalidation wait descriptor (6.5.2.8) whose status
// write BlockAll, Attach, Detach and Unmap wait for, bounded. While QIE
// is set the register-based interface must not be used (6.5.2), so the
// same requests take the queue from then on, BlockAll's included after a
// Disable.

// Queued invalidation registers (10.4.22-10.4.24) and fields.
const (
	IQH_REG = 0x80 // Invalidation Queue Head Register (64): QH, bits 18:4
	IQT_REG = 0x88 // Invalidation Queue Tail Register (64): QT, bits 18:4
	IQA_REG = 0x90 // Invalidation Queue Address Register (64): IQA 63:12, DW 11, QS 2:0

	IQ_Offset = 0x7fff0 // QH and QT: a 16-byte descriptor's byte offset

	// Descriptor types (6.5.2) in bits 3:0 of the first qword, and their
	// fields.
	InvDesc_CC       = 0x1 // context-cache invalidate
	InvDesc_IOTLB    = 0x2 // IOTLB invalidate
	InvDesc_Wait     = 0x5 // invalidation wait
	InvDesc_G_Shift  = 4   // CC and IOTLB granularity, bits 5:4: 1 global, 2 domain, 3 device or page
	InvDesc_DID      = 16  // CC and IOTLB Domain-ID, bits 31:16
	InvDesc_SID      = 32  // CC Source-ID, bits 47:32
	InvDesc_FM       = 48  // CC Function Mask, bits 49:48
	InvDesc_DW       = 1 << 6
	InvDesc_DR       = 1 << 7
	InvDesc_Wait_SW  = 1 << 5 // status write
	InvDesc_Wait_FN  = 1 << 6 // fence
	InvDesc_Wait_SD  = 32     // status data, bits 63:32
	invDescSize      = 16
	invQueueEntries  = 4096 / invDescSize
	invQueueSizeQS   = 0 // QS: 2^0 pages
	queueStatusToken = 0 // the status page's first dword holds the last wait's data
)

// queue is the unit's invalidation queue once enabled.
type queue struct {
	base, status uint64 // the descriptor page and the wait status page
	tail         uint64 // byte offset of the next descriptor
	seq          uint32 // the last wait's status data
}

// enableQueue allocates the queue and turns on QIE (10.4.4, 10.4.23):
// IQT_REG 0, IQA_REG the page with QS 0 and 128-bit descriptors, then
// the command, whose status is awaited.
func (u *Unit) enableQueue() error {
	if u.q == nil {
		base, err := u.pages.AllocPage()
		if err != nil {
			return fmt.Errorf("%s: invalidation queue: %w", u.Name(), err)
		}
		status, err := u.pages.AllocPage()
		if err != nil {
			u.pages.FreePage(base)
			return fmt.Errorf("%s: invalidation wait status: %w", u.Name(), err)
		}
		u.q = &queue{base: base, status: status}
	}
	clear(u.pages.Page(u.q.base)[:])
	u.flushPage(u.q.base)
	u.q.tail = 0
	u.regs.Write64(IQT_REG, 0)
	u.regs.Write64(IQA_REG, u.q.base&^0xfff|invQueueSizeQS)
	return u.command("enable queued invalidation", GCMD_QIE, GSTS_QIES, GSTS_QIES)
}

// queued reports whether invalidations go through the queue.
func (u *Unit) queued() bool { return u.q != nil && u.regs.Read32(GSTS_REG)&GSTS_QIES != 0 }

// submitAndWait writes descriptors and an invalidation wait with a status
// write, advances IQT_REG, and waits (bounded) for the status; a queue
// error the unit reports (FSTS_REG IQE, ITE) fails it.
func (u *Unit) submitAndWait(what string, descs ...[2]uint64) error {
	q := u.q
	q.seq++
	descs = append(descs, [2]uint64{InvDesc_Wait | InvDesc_Wait_SW | InvDesc_Wait_FN | uint64(q.seq)<<InvDesc_Wait_SD, q.status})
	st := u.pages.Page(q.status)
	binary.LittleEndian.PutUint32(st[queueStatusToken:], 0)
	pg := u.pages.Page(q.base)
	for _, d := range descs {
		next := (q.tail + invDescSize) % 4096
		var head uint64
		for i := 0; ; i++ {
			if head = u.regs.Read64(IQH_REG) & IQ_Offset; head != next {
				break
			}
			if i == maxPolls {
				return fmt.Errorf("%s: %s: invalidation queue full (head %#x, tail %#x) after %d reads: %w", u.Name(), what, head, q.tail, maxPolls, ErrTimeout)
			}
		}
		binary.LittleEndian.PutUint64(pg[q.tail:], d[0])
		binary.LittleEndian.PutUint64(pg[q.tail+8:], d[1])
		q.tail = next
	}
	u.flushPage(q.base)
	u.regs.Write64(IQT_REG, q.tail)
	for range maxPolls {
		if binary.LittleEndian.Uint32(st[queueStatusToken:]) == q.seq {
			return nil
		}
		if f := u.regs.Read32(FSTS_REG); f&(FSTS_IQE|FSTS_ITE) != 0 {
			return fmt.Errorf("%s: %s: FSTS_REG %#x: the unit refused a queued descriptor (head %#x)", u.Name(), what, f, u.regs.Read64(IQH_REG))
		}
	}
	return fmt.Errorf("%s: %s: invalidation wait status %#x, want %#x, after %d reads: %w", u.Name(), what,
		binary.LittleEndian.Uint32(st[queueStatusToken:]), q.seq, maxPolls, ErrTimeout)
}

// contextDescriptor is CCMD_REG request cmd as a context-cache
// invalidate descriptor (6.5.2.2).
func contextDescriptor(cmd uint64) [2]uint64 {
	g := cmd >> CCMD_CIRG_Shift & 3
	did, sid, fm := cmd&0xffff, cmd>>CCMD_SID_Shift&0xffff, cmd>>CCMD_FM_Shift&3
	return [2]uint64{InvDesc_CC | g<<InvDesc_G_Shift | did<<InvDesc_DID | sid<<InvDesc_SID | fm<<InvDesc_FM, 0}
}

// iotlbDescriptor is IOTLB_REG request cmd (with IVA_REG iva) as an IOTLB
// invalidate descriptor (6.5.2.3).
func iotlbDescriptor(cmd, iva uint64) [2]uint64 {
	g := cmd >> IOTLB_IIRG_Shift & 3
	lo := InvDesc_IOTLB | g<<InvDesc_G_Shift | (cmd>>IOTLB_DID_Shift&0xffff)<<InvDesc_DID
	if cmd&IOTLB_DW != 0 {
		lo |= InvDesc_DW
	}
	if cmd&IOTLB_DR != 0 {
		lo |= InvDesc_DR
	}
	if g != IOTLB_Page {
		iva = 0
	}
	return [2]uint64{lo, iva}
}
