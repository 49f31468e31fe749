package server

import (
	"gohv/vmbus/proto"
)

// This file: the channel-management messages — dispatch, version
// negotiation, offers, rescind, unload. Everything here runs on Run's
// goroutine.

// statusUnsuccessful is STATUS_UNSUCCESSFUL, the failure status of
// GPADL_CREATED, OPENCHANNEL_RESULT and MODIFYCHANNEL_RESPONSE (Linux only
// tests for non-zero).
const statusUnsuccessful = 0xC000_0001

// statusConnectionRefused (STATUS_CONNECTION_REFUSED) answers hv_sock's
// TL_CONNECT_REQUEST: gohv serves no sockets.
const statusConnectionRefused = -0x3FFF_FDCA // 0xC0000236 as an int32

// connection is the negotiated state of the guest's VMBus driver.
type connection struct {
	connected bool
	version   proto.Version
	// targetVP is where messages go: the contact's target VCPU (VP 0
	// below 3.0, as Linux and Hyper-V do).
	targetVP   uint32
	offersSent bool // REQUESTOFFERS came: later devices are offered at once
}

// device is one offered device and its channel.
type device struct {
	dev   Device
	offer Offer
	relid uint32

	// Run's goroutine only:
	offered   bool     // the guest got the offer on this connection
	rescinded bool     // RESCIND_CHANNELOFFER went out; waiting for RELID_RELEASED
	ch        *Channel // the open channel
}

func (d *device) conn() uint32 { return ConnectionIDBase + d.relid }

// device returns the device at relid, nil if none. Guest-controlled relid.
func (s *Server) device(relid uint32) *device {
	if relid == 0 || relid > MaxChannels {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devices[relid]
}

// usable is the device the guest may name in GPADL and open messages:
// offered to it and not rescinded.
func (s *Server) usable(relid uint32) *device {
	d := s.device(relid)
	if d == nil || !d.offered || d.rescinded {
		return nil
	}
	return d
}

// handle acts on one message the guest posted. Guest-controlled: all of it.
func (s *Server) handle(vp uint32, payload []byte) {
	msg, err := proto.ParseChannelMessage(payload)
	if err != nil {
		s.log.Warn("vmbus: dropped a malformed message", "vp", vp, "err", err)
		return
	}
	if !msg.Type().FromGuest() {
		s.log.Warn("vmbus: dropped a host-to-guest message the guest sent", "vp", vp, "msg", msg.Type().String())
		return
	}
	if c, ok := msg.(proto.InitiateContact); ok {
		s.initiateContact(vp, c)
		return
	}
	if !s.conn.connected {
		s.log.Warn("vmbus: dropped a message sent before INITIATE_CONTACT", "vp", vp, "msg", msg.Type().String())
		return
	}
	switch m := msg.(type) {
	case proto.RequestOffers:
		s.requestOffers()
	case proto.GPADLHeader:
		s.gpadlHeader(m)
	case proto.GPADLBody:
		s.gpadlBody(m)
	case proto.GPADLTeardown:
		s.gpadlTeardown(m)
	case proto.OpenChannel:
		s.openChannel(m)
	case proto.CloseChannel:
		s.closeChannel(m.ChildRelID)
	case proto.RelIDReleased:
		s.relidReleased(m.ChildRelID)
	case proto.ModifyChannel:
		s.modifyChannel(m)
	case proto.Unload:
		s.reset()
		s.send(proto.UnloadResponse{})
		s.log.Info("vmbus: guest unloaded")
	case proto.TLConnectRequest:
		s.send(proto.TLConnectResult{GuestEndpointID: m.GuestEndpointID, HostServiceID: m.HostServiceID, Status: statusConnectionRefused})
	default:
		s.log.Warn("vmbus: dropped an unexpected message", "msg", msg.Type().String())
	}
}

// supported reports whether the server speaks version v.
func (s *Server) supported(v proto.Version) bool {
	if v > s.cfg.MaxVersion {
		return false
	}
	for _, w := range proto.Linux61Versions {
		if v == w {
			return true
		}
	}
	return false
}

// initiateContact negotiates: every contact starts the connection over.
func (s *Server) initiateContact(vp uint32, m proto.InitiateContact) {
	s.reset()
	target := m.TargetVCPU
	if m.VersionRequested < proto.VersionWin8_1 {
		target = 0
	}
	ok := s.supported(m.VersionRequested)
	switch {
	case target >= s.host.VPCount():
		s.log.Warn("vmbus: INITIATE_CONTACT names a VP the partition lacks; refused", "target_vp", target)
		target, ok = vp, false
	case m.VersionRequested >= proto.VersionWin10V5 && m.MessageSINT != proto.MessageSINT:
		s.log.Warn("vmbus: INITIATE_CONTACT asks for messages on another SINT; refused", "sint", m.MessageSINT)
		ok = false
	}
	s.conn.targetVP = target
	r := proto.VersionResponse{VersionSupported: ok, ConnectionState: proto.ConnectionStateSuccessful}
	if ok && m.VersionRequested >= proto.VersionWin10V5 {
		r.MessageConnectionID = proto.MessageConnectionID
	}
	if ok {
		s.conn = connection{connected: true, version: m.VersionRequested, targetVP: target}
		s.log.Info("vmbus: connected", "version", m.VersionRequested.String(), "target_vp", target)
	}
	s.send(r)
}

// Version is the negotiated protocol version, 0 when not connected. For
// tests and reports; any goroutine (it asks Run's goroutine).
func (s *Server) Version() proto.Version {
	ch := make(chan proto.Version, 1)
	s.do(func() { ch <- s.conn.version })
	select {
	case v := <-ch:
		return v
	case <-s.stopped:
		return 0
	}
}

func (s *Server) offerMessage(d *device) proto.OfferChannel {
	return proto.OfferChannel{
		InterfaceType:      d.offer.InterfaceType,
		InterfaceInstance:  d.offer.InterfaceInstance,
		ChannelFlags:       d.offer.ChannelFlags,
		MMIOMegabytes:      d.offer.MMIOMegabytes,
		UserDefined:        d.offer.UserDefined,
		ChildRelID:         d.relid,
		DedicatedInterrupt: true,
		ConnectionID:       d.conn(),
	}
}

// requestOffers sends every device's offer, then ALLOFFERS_DELIVERED.
func (s *Server) requestOffers() {
	for relid := uint32(1); relid <= MaxChannels; relid++ {
		d := s.device(relid)
		if d == nil || d.rescinded || d.offered {
			continue
		}
		d.offered = true
		s.send(s.offerMessage(d))
	}
	s.conn.offersSent = true
	s.send(proto.AllOffersDelivered{})
}

// offerLate offers a device added after the guest asked for offers.
func (s *Server) offerLate(d *device) {
	if s.conn.connected && s.conn.offersSent && !d.offered && !d.rescinded {
		d.offered = true
		s.send(s.offerMessage(d))
	}
}

// rescind takes a device's offer back (cause: why, nil when asked to).
func (s *Server) rescind(relid uint32, cause error) {
	d := s.device(relid)
	if d == nil || d.rescinded {
		return
	}
	if d.ch != nil {
		d.ch.close(cause)
	}
	if !d.offered {
		s.remove(d)
		return
	}
	d.rescinded = true
	s.send(proto.RescindChannelOffer{ChildRelID: relid})
	if cause != nil {
		s.log.Warn("vmbus: channel rescinded", "relid", relid, "err", cause)
	}
}

// relidReleased frees a rescinded relid once the guest let it go.
func (s *Server) relidReleased(relid uint32) {
	d := s.device(relid)
	if d == nil || !d.rescinded {
		s.log.Warn("vmbus: RELID_RELEASED for a relid not rescinded", "relid", relid)
		return
	}
	s.remove(d)
}

// remove forgets a device and the GPADLs of its relid.
func (s *Server) remove(d *device) {
	s.dropGPADLs(d.relid)
	s.host.UnbindEvent(d.conn())
	s.mu.Lock()
	s.devices[d.relid] = nil
	s.mu.Unlock()
}

// modifyChannel moves an open channel's interrupts to another VP.
func (s *Server) modifyChannel(m proto.ModifyChannel) {
	status := int32(-0x3FFF_FFFF) // STATUS_UNSUCCESSFUL as an int32
	if d := s.usable(m.ChildRelID); d != nil && d.ch != nil && s.validTarget(m.TargetVP) {
		d.ch.targetVP.Store(m.TargetVP)
		status = 0
	}
	if s.conn.version >= proto.VersionWin10V5_3 {
		s.send(proto.ModifyChannelResponse{ChildRelID: m.ChildRelID, Status: status})
	}
}

func (s *Server) validTarget(vp uint32) bool {
	return vp < s.host.VPCount() || vp == proto.VPIndexDisableInterrupt
}

// reset closes every channel, drops every GPADL, and forgets the offers
// the guest saw: the state before INITIATE_CONTACT. Rescinded devices go.
func (s *Server) reset() {
	for relid := uint32(1); relid <= MaxChannels; relid++ {
		d := s.device(relid)
		if d == nil {
			continue
		}
		if d.ch != nil {
			d.ch.close(nil)
		}
		if d.rescinded {
			s.remove(d)
			continue
		}
		d.offered = false
	}
	clear(s.gpadls)
	s.gpadlPages = 0
	s.conn = connection{targetVP: s.conn.targetVP}
}
