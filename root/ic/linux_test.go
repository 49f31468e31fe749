package ic

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gohv/root/ic/protocol"
)

// linuxGuest plays Linux 6.1's hv_utils on one IC channel
// (drivers/hv/hv_util.c, vmbus_prep_negotiate_resp in channel_mgmt.c): it
// works on the packet's bytes as Linux's callbacks do — same offsets,
// same length checks, the buffer sent back with icflags
// TRANSACTION|RESPONSE and the request's trans_id — so the host parses
// what Linux really sends. It is the services' Channel.
type linuxGuest struct {
	t    testing.TB
	kind protocol.MsgType // MsgShutdown, MsgHeartbeat or MsgTimeSync
	svc  interface {
		HandlePacket([]byte, uint64) error
	}
	wg sync.WaitGroup

	mu sync.Mutex
	// Linux's version lists (fw_versions and sd/hb/ts_versions).
	fw, srv []protocol.Version
	// srvVersion is the *_srv_version Linux recorded, major<<16|minor.
	srvVersion uint32
	inflight   int    // requests received and not answered
	hold       bool   // keep requests unanswered until release
	held       []sent // requests held
	// mutate, if set, changes an answer before the host sees it.
	mutate    func(p []byte, tid uint64) ([]byte, uint64)
	requests  []sent     // every request as the guest received it
	actions   []string   // "poweroff", "reboot", "settime", "sample", "hibernate"
	times     []timeSeen // time messages read
	sendErr   error      // returned by Send
	errs      []error    // HandlePacket's errors
	unanswers int        // requests Linux dropped without an answer
}

type sent struct {
	p   []byte
	tid uint64
}

type timeSeen struct {
	parent, ref uint64
	flags       uint8
	v4          bool
}

func newLinux(t testing.TB, kind protocol.MsgType) *linuxGuest {
	g := &linuxGuest{t: t, kind: kind, fw: protocol.LinuxFrameworkVersions[:]}
	switch kind {
	case protocol.MsgShutdown:
		g.srv = protocol.LinuxShutdownVersions[:]
	case protocol.MsgHeartbeat:
		g.srv = protocol.LinuxHeartbeatVersions[:]
	case protocol.MsgTimeSync:
		g.srv = protocol.LinuxTimeSyncVersions[:]
	default:
		t.Fatalf("no hv_utils service for %v", kind)
	}
	t.Cleanup(g.wg.Wait)
	return g
}

// Send is the host's packet arriving in the guest's inbound ring: padded
// to 8 bytes (Linux's recvlen includes the padding), answered from the
// channel callback on another goroutine, as an interrupt would run it.
func (g *linuxGuest) Send(payload []byte, tid uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sendErr != nil {
		return g.sendErr
	}
	if n := (16 + len(payload) + 7) &^ 7; n > 4096 {
		g.t.Errorf("packet of %d bytes with its descriptor: Linux's buffer holds 4096", n)
	}
	if g.inflight > 0 {
		// Trap 12: hv_utils' shutdown callback reads one packet per
		// interrupt, and the host signals only on empty→non-empty.
		g.t.Errorf("host sent %v while %d request(s) were unanswered", protocol.MsgType(binary.LittleEndian.Uint16(payload[12:])), g.inflight)
	}
	p := make([]byte, (len(payload)+7)&^7)
	copy(p, payload)
	g.requests = append(g.requests, sent{slices.Clone(p), tid})
	g.inflight++
	if g.hold {
		g.held = append(g.held, sent{p, tid})
		return nil
	}
	g.wg.Add(1)
	go g.interrupt(p, tid)
	return nil
}

// release answers the held requests and stops holding.
func (g *linuxGuest) release() {
	g.mu.Lock()
	held := g.held
	g.held, g.hold = nil, false
	g.mu.Unlock()
	for _, s := range held {
		g.wg.Add(1)
		go g.interrupt(s.p, s.tid)
	}
}

func (g *linuxGuest) interrupt(p []byte, tid uint64) {
	defer g.wg.Done()
	g.mu.Lock()
	reply, ok := g.callback(p)
	g.inflight--
	mutate := g.mutate
	if !ok {
		g.unanswers++
	}
	g.mu.Unlock()
	if !ok {
		return
	}
	if mutate != nil {
		reply, tid = mutate(reply, tid)
	}
	if err := g.svc.HandlePacket(reply, tid); err != nil {
		g.mu.Lock()
		g.errs = append(g.errs, err)
		g.mu.Unlock()
	}
}

// Offsets as Linux 6.1 addresses them: icmsghdrp = &buf[sizeof(struct
// vmbuspipe_hdr)], bodies at &buf[ICMSG_HDR].
const (
	lxMsgType  = 8 + 4
	lxMsgSize  = 8 + 10
	lxStatus   = 8 + 12
	lxFlags    = 8 + 17
	lxICMsgHdr = 28
	hvSOK      = 0
	hvEFail    = 0x80004005
)

// callback is shutdown_onchannelcallback, heartbeat_onchannelcallback or
// timesync_onchannelcallback for one packet: the reply and whether Linux
// sends one.
func (g *linuxGuest) callback(buf []byte) ([]byte, bool) {
	le := binary.LittleEndian
	recvlen := len(buf)
	if recvlen < lxICMsgHdr {
		return nil, false // "Packet length too small"
	}
	switch typ := protocol.MsgType(le.Uint16(buf[lxMsgType:])); {
	case typ == protocol.MsgNegotiate:
		if v, ok := prepNegotiateResp(buf, g.fw, g.srv); ok {
			g.srvVersion = v
		}
	case typ == g.kind && typ == protocol.MsgShutdown:
		if recvlen < lxICMsgHdr+2060 {
			return nil, false
		}
		switch flags := le.Uint32(buf[lxICMsgHdr+8:]); flags {
		case 0, 1:
			le.PutUint32(buf[lxStatus:], hvSOK)
			g.actions = append(g.actions, "poweroff")
		case 2, 3:
			le.PutUint32(buf[lxStatus:], hvSOK)
			g.actions = append(g.actions, "reboot")
		case 4, 5: // hibernation_supported is false without ACPI S4
			le.PutUint32(buf[lxStatus:], hvEFail)
		default:
			le.PutUint32(buf[lxStatus:], hvEFail)
		}
	case typ == g.kind && typ == protocol.MsgHeartbeat:
		if recvlen < lxICMsgHdr+8 {
			return nil, false
		}
		le.PutUint64(buf[lxICMsgHdr:], le.Uint64(buf[lxICMsgHdr:])+1)
	case typ == g.kind && typ == protocol.MsgTimeSync:
		var ts timeSeen
		if g.srvVersion > 3<<16 { // ts_srv_version > TS_VERSION_3
			if recvlen < lxICMsgHdr+22 {
				return nil, false
			}
			ts = timeSeen{le.Uint64(buf[lxICMsgHdr:]), le.Uint64(buf[lxICMsgHdr+8:]), buf[lxICMsgHdr+16], true}
		} else {
			if recvlen < lxICMsgHdr+25 {
				return nil, false
			}
			ts = timeSeen{parent: le.Uint64(buf[lxICMsgHdr:]), flags: buf[lxICMsgHdr+24]}
		}
		g.times = append(g.times, ts)
		if ts.flags&1 != 0 {
			g.actions = append(g.actions, "settime")
		} else {
			g.actions = append(g.actions, "sample")
		}
	default:
		le.PutUint32(buf[lxStatus:], hvEFail) // "Invalid msg type"
	}
	buf[lxFlags] = byte(protocol.FlagTransaction | protocol.FlagResponse)
	return buf, true
}

// prepNegotiateResp is vmbus_prep_negotiate_resp on buf (the whole
// received packet): it rewrites icmsgsize to 0x10 and the counts and the
// first two version slots in place and returns the chosen service
// version as major<<16|minor.
func prepNegotiateResp(buf []byte, fw, srv []protocol.Version) (uint32, bool) {
	le := binary.LittleEndian
	if len(buf) < lxICMsgHdr+4 { // offsetof(struct icmsg_negotiate, reserved)
		return 0, false
	}
	le.PutUint16(buf[lxMsgSize:], 0x10)
	neg := buf[lxICMsgHdr:]
	fcnt, mcnt := int(le.Uint16(neg[0:])), int(le.Uint16(neg[2:]))
	frameMajor, frameMinor := fcnt, 0
	msgMajor, msgMinor := mcnt, 0
	ver := func(j int) protocol.Version {
		return protocol.Version{Major: le.Uint16(neg[8+4*j:]), Minor: le.Uint16(neg[8+4*j+2:])}
	}
	found := false
	if fcnt <= 100 && mcnt <= 100 && lxICMsgHdr+8+4*(fcnt+mcnt) <= len(buf) {
	fwLoop:
		for _, v := range fw {
			for j := range fcnt {
				if ver(j) == v {
					frameMajor, frameMinor = int(v.Major), int(v.Minor)
					found = true
					break fwLoop
				}
			}
		}
		if found {
			found = false
		srvLoop:
			for _, v := range srv {
				for j := fcnt; j < fcnt+mcnt; j++ {
					if ver(j) == v {
						msgMajor, msgMinor = int(v.Major), int(v.Minor)
						found = true
						break srvLoop
					}
				}
			}
		}
	}
	cnt := uint16(0)
	if found {
		cnt = 1
	}
	le.PutUint16(neg[0:], cnt)
	le.PutUint16(neg[2:], cnt)
	// Linux writes icversion_data[0] and [1] whatever the packet's
	// length (its buffer is four pages); only what lies inside recvlen
	// goes back.
	slot := make([]byte, 8)
	le.PutUint16(slot[0:], uint16(frameMajor))
	le.PutUint16(slot[2:], uint16(frameMinor))
	le.PutUint16(slot[4:], uint16(msgMajor))
	le.PutUint16(slot[6:], uint16(msgMinor))
	if len(neg) > 8 {
		copy(neg[8:], slot)
	}
	return uint32(msgMajor)<<16 | uint32(msgMinor), found
}

func (g *linuxGuest) snapshot() (reqs []sent, actions []string, times []timeSeen, errs []error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.requests), slices.Clone(g.actions), slices.Clone(g.times), slices.Clone(g.errs)
}

// waitFor polls cond for up to five seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// requestOf decodes a request the guest received.
func requestOf(t testing.TB, s sent) protocol.Message {
	t.Helper()
	m, err := protocol.ParseMessage(s.p)
	if err != nil {
		t.Fatalf("host sent a malformed request: %v", err)
	}
	if m.Header.Flags != protocol.FlagTransaction|protocol.FlagRequest {
		t.Errorf("request flags %#x, want TRANSACTION|REQUEST", m.Header.Flags)
	}
	return m
}

func (s sent) String() string { return fmt.Sprintf("tid %d % x", s.tid, s.p) }
