package netvsp

import (
	"encoding/binary"
	"fmt"

	"gohv/root/netvsp/protocol"
	"gohv/vmbus/proto"
)

// This file: SEND_RNDIS_PKT from the guest — RNDIS control requests and
// the guest's frames (netvsc-facts §6.1).

// sendRNDISPacket gathers a SEND_RNDIS_PKT's RNDIS bytes — the send
// section it names, then its GPA ranges — and handles every RNDIS
// message in them, then completes the packet if the guest asked. RNDIS
// bytes that do not parse, or pages outside the partition's RAM, cost
// the guest the packet (completed with STATUS_INVALID_RNDIS_PKT, counted),
// not the channel; an NVSP header that does not parse closes it.
// Guest-controlled: p.
func (v *VSP) sendRNDISPacket(p *proto.Packet) error {
	m, err := protocol.ParseSendRNDISPacket(p.Payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	status := protocol.StatusSuccess
	if b, err := v.gatherRNDIS(p, m); err != nil {
		v.st.txMalformed.Add(1)
		v.log.Warn("netvsp: SEND_RNDIS_PKT refused", "err", err)
		status = protocol.StatusInvalidRNDISPacket
	} else if err := v.rndisMessages(b); err != nil {
		if !isMalformed(err) {
			return err
		}
		v.st.txMalformed.Add(1)
		v.log.Warn("netvsp: RNDIS message refused", "err", err)
		status = protocol.StatusInvalidRNDISPacket
	}
	if !p.CompletionRequested() {
		return nil
	}
	return v.complete(p.TransactionID, protocol.SendRNDISPacketComplete{Status: status})
}

// gatherRNDIS copies the packet's RNDIS bytes into v.gather. Guest-
// controlled: the section index and size, the ranges; at most maxGather
// bytes are copied whatever they say.
func (v *VSP) gatherRNDIS(p *proto.Packet, m protocol.SendRNDISPacket) ([]byte, error) {
	n := 0
	if m.SectionIndex != protocol.NoSection {
		off := int64(m.SectionIndex) * SendSectionSize
		switch {
		case v.send.pages == nil:
			return nil, fmt.Errorf("send section %d without a send buffer", m.SectionIndex)
		case m.SectionSize > SendSectionSize || off+SendSectionSize > int64(v.send.len()):
			return nil, fmt.Errorf("send section %d of %d bytes in a %d-byte send buffer", m.SectionIndex, m.SectionSize, v.send.len())
		}
		n = int(m.SectionSize)
		v.send.readAt(v.gather[:n], int(off))
	}
	if p.Type != proto.PktDataUsingGPADirect {
		return v.gather[:n], nil
	}
	for r := range p.Ranges.All() {
		if int64(r.ByteCount) > int64(len(v.gather)-n) {
			return nil, fmt.Errorf("GPA ranges of more than %d bytes", len(v.gather))
		}
		pos := uint64(r.ByteOffset)
		for left := int(r.ByteCount); left > 0; {
			pg, in := int(pos/PageSize), pos%PageSize
			k := min(left, int(PageSize-in))
			pfn := r.PFN(pg)
			if pfn > maxPFN {
				return nil, fmt.Errorf("GPA range PFN %#x is beyond 52 bits", pfn)
			}
			if err := v.mem.ReadRAM(pfn*PageSize+in, v.gather[n:n+k]); err != nil {
				return nil, fmt.Errorf("GPA range page %#x: %w", pfn, err)
			}
			n, left, pos = n+k, left-k, pos+uint64(k)
		}
	}
	return v.gather[:n], nil
}

// rndisMessages handles the RNDIS messages in b, back to back (Linux
// batches up to INITIALIZE_CMPLT's max_pkt_per_msg frames in one send
// section, each padded by its msg_len). Trailing bytes shorter than a
// header are the last message's padding.
func (v *VSP) rndisMessages(b []byte) error {
	for len(b) >= protocol.RNDISHeaderSize {
		if protocol.RNDISType(binary.LittleEndian.Uint32(b)) == protocol.RNDISPacketMsg {
			m, n, err := protocol.ParsePacketMsg(b)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			v.frame(m)
			b = b[n:]
			continue
		}
		msg, n, err := protocol.ParseRNDIS(b)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if err := v.rndis(msg); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// frame sends one of the guest's frames to the switch.
func (v *VSP) frame(m protocol.PacketMsg) {
	if !v.rx.isInitialized() || v.cfg.Port == nil {
		v.st.txDropped.Add(1)
		return
	}
	if len(m.PPI) > 0 {
		// A VLAN tag the guest asks the host to insert: gohv's switch
		// has no VLANs, and sending the frame untagged would put it on
		// the wrong network.
		if _, ok := m.PerPacketInfo(protocol.PPIIEEE8021Q); ok {
			v.st.txDropped.Add(1)
			return
		}
	}
	if !v.cfg.Port.Send(m.Data) {
		v.st.txDropped.Add(1)
		return
	}
	v.st.txFrames.Add(1)
	v.st.txBytes.Add(uint64(len(m.Data)))
}
