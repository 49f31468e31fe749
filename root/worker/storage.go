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
}

func (d *storageDevice) Offer() server.Offer {
	return server.Offer{InterfaceType: proto.SCSIGUID, InterfaceInstance: d.instance}
}

func (d *storageDevice) Open(ch *server.Channel) (server.Handler, error) {
	h := &storageChannel{ch: ch, mem: d.mem}
	v, err := storvsp.New(h, storvsp.Config{LUNs: d.luns, Logger: d.log})
	if err != nil {
		return nil, err
	}
	h.vsp = v
	return h, nil
}

// storageChannel joins one open of the channel to its VSP: it is the
// VSP's Channel and the server's Handler.
type storageChannel struct {
	ch  *server.Channel
	mem storvsp.GuestMemory
	vsp *storvsp.VSP

	// Reused for every GPA-direct packet: the channel's goroutine is the
	// only caller.
	ranges [1]storvsp.PageRange
	pfns   []uint64
}

// Send is the VSP's completion: a VMBus completion packet echoing the
// request's transaction ID.
func (s *storageChannel) Send(packet []byte, transactionID uint64) error {
	return s.ch.SendCompletion(transactionID, packet)
}

// Packet hands a guest packet to the VSP. Guest-controlled: p.
func (s *storageChannel) Packet(p *proto.Packet) error {
	pkt := storvsp.Packet{TransactionID: p.TransactionID, Payload: p.Payload}
	switch p.Type {
	case proto.PktDataInband:
	case proto.PktDataUsingGPADirect:
		if p.Ranges.Len() != 1 {
			return fmt.Errorf("storvsc: GPA-direct packet with %d ranges, want 1: %w", p.Ranges.Len(), storvsp.ErrMalformed)
		}
		for r := range p.Ranges.All() {
			s.pfns = s.pfns[:0]
			for i := 0; i < r.PageCount(); i++ {
				s.pfns = append(s.pfns, r.PFN(i))
			}
			s.ranges[0] = storvsp.PageRange{ByteCount: r.ByteCount, ByteOffset: r.ByteOffset, PFNs: s.pfns}
		}
		data, err := storvsp.NewGPADirect(s.mem, s.ranges[:])
		if err != nil {
			return err
		}
		pkt.Data = data
	default:
		return fmt.Errorf("storvsc: %v packet on the storage channel: %w", p.Type, storvsp.ErrMalformed)
	}
	return s.vsp.HandlePacket(pkt)
}

// Close: the VSP holds nothing beyond the channel.
func (s *storageChannel) Close(error) {}
