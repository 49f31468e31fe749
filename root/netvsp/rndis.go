package netvsp

import (
	"encoding/binary"
	"errors"

	"gohv/root/netvsp/protocol"
)

// This file: the RNDIS control messages (netvsc-facts §7, §8). Replies
// travel to the guest in a receive section (rx.go), like frames.

// INITIALIZE_CMPLT's transfer limits: up to rndisMaxPackets frames
// batched in one SEND_RNDIS_PKT, each aligned to 1<<rndisAlignment bytes
// (what OpenVMM answers).
const (
	rndisMaxPackets  = 8
	rndisAlignment   = 3
	rndisMaxTransfer = 0xEFFFFFFF
)

// rndis handles one RNDIS message from the guest.
func (v *VSP) rndis(msg protocol.RNDISMessage) error {
	switch m := msg.(type) {
	case protocol.PacketMsg:
		v.frame(m)
		return nil
	case protocol.InitializeMsg:
		v.rx.setInitialized(true)
		return v.reply(protocol.InitializeCmplt{
			RequestID:             m.RequestID,
			Status:                protocol.RNDISStatusSuccess,
			Major:                 protocol.RNDISMajorVersion,
			Minor:                 protocol.RNDISMinorVersion,
			DeviceFlags:           protocol.RNDISDFConnectionless,
			Medium:                protocol.RNDISMedium802_3,
			MaxPacketsPerMessage:  rndisMaxPackets,
			MaxTransferSize:       rndisMaxTransfer,
			PacketAlignmentFactor: rndisAlignment,
		})
	case protocol.QueryMsg:
		return v.reply(v.query(m))
	case protocol.SetMsg:
		return v.reply(protocol.SetCmplt{RequestID: m.RequestID, Status: v.set(m)})
	case protocol.HaltMsg:
		// No reply: the guest waits for its packets' completions.
		v.rx.setInitialized(false)
		return nil
	case protocol.ResetMsg:
		return v.reply(protocol.ResetCmplt{Status: protocol.RNDISStatusSuccess})
	case protocol.KeepaliveMsg:
		return v.reply(protocol.KeepaliveCmplt{RequestID: m.RequestID, Status: protocol.RNDISStatusSuccess})
	}
	v.log.Warn("netvsp: RNDIS message a host does not take", "type", msg.RNDISType())
	return nil
}

// query answers a QUERY_MSG. Linux reads an answer's lengths, not its
// status: a refusal is a status and no information buffer.
func (v *VSP) query(m protocol.QueryMsg) protocol.QueryCmplt {
	ok := func(info []byte) protocol.QueryCmplt {
		return protocol.QueryCmplt{RequestID: m.RequestID, Status: protocol.RNDISStatusSuccess, Info: info}
	}
	u32 := func(x uint32) protocol.QueryCmplt { return ok(binary.LittleEndian.AppendUint32(nil, x)) }
	switch m.OID {
	case protocol.OIDGenMaximumFrameSize:
		return u32(uint32(v.cfg.MTU))
	case protocol.OID802_3PermanentAddress, protocol.OID802_3CurrentAddress:
		return ok(v.cfg.MAC[:])
	case protocol.OIDGenMediaConnectStatus:
		return u32(protocol.MediaStateConnected)
	case protocol.OIDGenLinkSpeed:
		return u32(uint32(min(v.cfg.LinkSpeed/100, 1<<32-1)))
	case protocol.OIDTCPOffloadHardwareCapabilities:
		// NDIS_OFFLOAD of revision 1 with every capability clear: no
		// checksum, LSO or RSC offload, so the guest computes its own
		// checksums and segments its own TCP.
		info := protocol.NDISObjectHeader{Type: protocol.NDISObjectTypeOffload, Revision: 1, Size: protocol.NDISOffloadSize6_0}.Append(nil)
		return ok(append(info, make([]byte, protocol.NDISOffloadSize6_0-protocol.NDISObjectHeaderSize)...))
	}
	// OID_GEN_RECEIVE_SCALE_CAPABILITIES among them: refusing it keeps
	// Linux on one channel (no sub-channels, netvsc-facts §10).
	return protocol.QueryCmplt{RequestID: m.RequestID, Status: protocol.RNDISStatusNotSupported}
}

// set answers a SET_MSG.
func (v *VSP) set(m protocol.SetMsg) protocol.RNDISStatus {
	switch m.OID {
	case protocol.OIDGenCurrentPacketFilter:
		if len(m.Info) < 4 {
			return protocol.RNDISStatusInvalidData
		}
		v.rx.setFilter(binary.LittleEndian.Uint32(m.Info))
		return protocol.RNDISStatusSuccess
	case protocol.OIDTCPOffloadParameters, protocol.OIDOffloadEncapsulation:
		// Linux must have this succeed; with no offload advertised
		// there is nothing for the parameters to turn on.
		return protocol.RNDISStatusSuccess
	}
	// OID_GEN_RNDIS_CONFIG_PARAMETER among them: the guest cannot
	// change its MAC address, which the switch enforces.
	return protocol.RNDISStatusNotSupported
}

// reply sends an RNDIS control reply in a control receive section.
func (v *VSP) reply(m protocol.RNDISMessage) error {
	v.ctrlOut = m.Append(v.ctrlOut[:0])
	return v.rx.sendControl(v.ctrlOut)
}

func isMalformed(err error) bool { return errors.Is(err, ErrMalformed) }
