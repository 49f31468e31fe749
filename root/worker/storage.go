package worker

import (
	"fmt"
	"log/slog"

	"gohv/root/storvsp"
	"gohv/root/storvsp/scsi"
	"gohv/vmbus/proto"
	"gohv/vmbus/server"
)

// storageDevice is one SCSI controller: a VMBus device whose every open
// gets a fresh storage VSP over the controller's logical units.
type storageDevice struct {
	instance proto.GUID
	luns     map[storvsp.Address]*scsi.LogicalUnit
	mem      storvsp.GuestMemory
	log      *slog.Logger
	// maxXfer is the max_transfer_bytes the VSP advertises, a multiple
	// of storvsp.PageSize (0: storvsp.DefaultMaxTransferBytes).
	maxXfer uint32
}

func (d *storageDevice) Offer() server.Offer {
	return server.Offer{InterfaceType: proto.SCSIGUID, InterfaceInstance: d.instance}
}

func (d *storageDevice) Open(ch *server.Channel) (server.Handler, error) {
	return d.newChannel(ch)
}

// completer is the host-to-guest half of a channel as the storage
// channel uses it: *server.Channel.
type completer interface {
	SendCompletion(transactionID uint64, payload []byte) error
}

func (d *storageDevice) newChannel(ch completer) (*storageChannel, error) {
	maxXfer := d.maxXfer
	if maxXfer == 0 {
		maxXfer = storvsp.DefaultMaxTransferBytes
	}
	h := &storageChannel{
		ch:      ch,
		mem:     d.mem,
		maxXfer: maxXfer,
		// A range of at most maxXfer bytes starting inside its first
		// page spans at most maxXfer/PageSize + 1 pages.
		pfns: make([]uint64, 0, maxXfer/storvsp.PageSize+1),
	}
	v, err := storvsp.New(h, storvsp.Config{LUNs: d.luns, MaxTransferBytes: maxXfer, Logger: d.log})
	if err != nil {
		return nil, err
	}
	h.vsp = v
	return h, nil
}

// storageChannel joins one open of the channel to its VSP: it is the
// VSP's Channel and the server's Handler.
type storageChannel struct {
	ch      completer
	mem     storvsp.GuestMemory
	vsp     *storvsp.VSP
	maxXfer uint32

	// Reused for every GPA-direct packet: the channel's goroutine is the
	// only caller. cap(pfns) is fixed when the channel opens and never
	// grows: only ranges of at most maxXfer bytes are copied into it.
	ranges [1]storvsp.PageRange
	pfns   []uint64
	over   oversized
}

// Send is the VSP's completion: a VMBus completion packet echoing the
// request's transaction ID.
func (s *storageChannel) Send(packet []byte, transactionID uint64) error {
	return s.ch.SendCompletion(transactionID, packet)
}

// Packet hands a guest packet to the VSP. Guest-controlled: p. Its range
// list lies inside the packet (proto.ParsePacket checked every range's
// PFNs against the packet's own bytes), so a range's PageCount is at
// most the packet's length / 8; the PFNs are copied only for a range of
// at most maxXfer bytes, at most cap(s.pfns) of them.
func (s *storageChannel) Packet(p *proto.Packet) error {
	pkt := storvsp.Packet{TransactionID: p.TransactionID, Payload: p.Payload}
	switch p.Type {
	case proto.PktDataInband:
	case proto.PktDataUsingGPADirect:
		if p.Ranges.Len() != 1 {
			return fmt.Errorf("storvsc: GPA-direct packet with %d ranges, want 1: %w", p.Ranges.Len(), storvsp.ErrMalformed)
		}
		for r := range p.Ranges.All() {
			// r.ByteCount <= maxXfer implies PageCount <= cap(s.pfns)
			// (storvsp.New took maxXfer as a multiple of PageSize, and
			// the byte offset is inside the first page); both are
			// checked, so that nothing else sizes the copy.
			if r.ByteCount > s.maxXfer || r.PageCount() > cap(s.pfns) {
				// The PFNs are not looked at. Past max_transfer_bytes
				// the VSP refuses the request on its length alone
				// (ILLEGAL REQUEST) before any access; any access
				// would be refused too.
				s.over.n = int(r.ByteCount)
				pkt.Data = &s.over
				break
			}
			s.pfns = s.pfns[:r.PageCount()]
			for i := range s.pfns {
				s.pfns[i] = r.PFN(i)
			}
			s.ranges[0] = storvsp.PageRange{ByteCount: r.ByteCount, ByteOffset: r.ByteOffset, PFNs: s.pfns}
			data, err := storvsp.NewGPADirect(s.mem, s.ranges[:])
			if err != nil {
				return err
			}
			pkt.Data = data
		}
	default:
		return fmt.Errorf("storvsc: %v packet on the storage channel: %w", p.Type, storvsp.ErrMalformed)
	}
	return s.vsp.HandlePacket(pkt)
}

// Close: the VSP holds nothing beyond the channel.
func (s *storageChannel) Close(error) {}

// oversized is the data buffer of a GPA-direct range longer than
// max_transfer_bytes: its length and nothing else. The VSP answers such
// a request from Len alone; any access is refused.
type oversized struct{ n int }

func (o *oversized) Len() int { return o.n }

func (o *oversized) ReadAt(p []byte, off int64) (int, error) { return 0, o.refuse(len(p), off) }

func (o *oversized) WriteAt(p []byte, off int64) (int, error) { return 0, o.refuse(len(p), off) }

func (o *oversized) Check(n int) error { return o.refuse(n, 0) }

func (o *oversized) refuse(n int, off int64) error {
	return fmt.Errorf("storvsc: %d bytes at %d of a GPA-direct range of %d bytes, longer than max_transfer_bytes: %w",
		n, off, o.n, storvsp.ErrOutOfRange)
}
