package netvsp

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"gohv/root/netvsp/protocol"
	"gohv/vmbus/proto"
)

// Channel is the host end of the NIC's VMBus channel as the VSP uses it:
// *server.Channel, with BorrowGPADL's pages unwrapped by the worker. Its
// methods are safe for concurrent use; SendPacket and SendCompletion wait
// while the guest's ring is full and fail once the channel closes.
type Channel interface {
	SendCompletion(transactionID uint64, payload []byte) error
	SendPacket(header, payload []byte) error
	// BorrowGPADL lends the VSP the pages of a GPADL of whole pages
	// that the guest created for this channel (a receive or send
	// buffer), or refuses it.
	BorrowGPADL(handle uint32) ([]*[PageSize]byte, error)
	// ReturnGPADL gives a borrowed GPADL back.
	ReturnGPADL(handle uint32)
}

// GuestMemory is the partition's RAM by guest physical address, for the
// GPA ranges of a guest's packets; it refuses any address outside the
// partition's RAM. *hv.GuestMemory satisfies it.
type GuestMemory interface {
	ReadRAM(gpa uint64, b []byte) error
}

// Port is where the guest's frames go: the NIC's port on a virtual
// switch (*vswitch.Port). Send copies the frame and never blocks; false
// means the switch dropped it.
type Port interface {
	Send(frame []byte) bool
}

// Config configures a VSP.
type Config struct {
	// MAC is the NIC's address, what OID_802_3_PERMANENT_ADDRESS answers.
	MAC [6]byte
	// MTU is the largest payload of a frame, without its 14-byte
	// Ethernet header, that OID_GEN_MAXIMUM_FRAME_SIZE advertises
	// (0: DefaultMTU; at most MaxMTU).
	MTU int
	// LinkSpeed in bits per second, for OID_GEN_LINK_SPEED (0:
	// DefaultLinkSpeed).
	LinkSpeed uint64
	// Port receives the guest's frames; nil drops them (counted).
	Port Port
	Log  *slog.Logger
}

// Limits and defaults.
const (
	DefaultMTU       = 1500
	MaxMTU           = 9216
	DefaultLinkSpeed = 10_000_000_000

	ethernetHeader = 14
	vlanTag        = 4
	// maxFrame is the longest frame the VSP carries either way: a jumbo
	// payload, its Ethernet header and an 802.1Q tag.
	maxFrame = MaxMTU + ethernetHeader + vlanTag

	// SendSectionSize is the send buffer's section size
	// (SEND_SEND_BUF_COMPLETE), what OpenVMM and Hyper-V answer.
	SendSectionSize = 6144
	// rxHeadroom and rxFooter size a receive section around a frame:
	// room for the PACKET_MSG header and per-packet info before it and
	// the footer some Windows netvsc versions write after it
	// (netvsc-facts §5).
	rxHeadroom = 256
	rxFooter   = 36
	// controlSections are the receive sections kept for RNDIS control
	// replies, so frames never starve a guest waiting on one.
	controlSections = 16
	// minRecvSections: the control sections and as many for frames.
	minRecvSections = 2 * controlSections

	// maxGather bounds the RNDIS bytes of one SEND_RNDIS_PKT: a send
	// section and the GPA ranges after it (Linux sends at most 32
	// one-page ranges).
	maxGather = SendSectionSize + 32*PageSize
)

// State is the VSP's place in the NVSP initialisation.
type State int

// States, in order.
const (
	// StateStart: the channel is open; waiting for INIT.
	StateStart State = iota
	// StateInitialized: a version is agreed; buffers come next.
	StateInitialized
	// StateReady: the receive buffer is in place, RNDIS may run.
	StateReady
	// StateClosed: the channel closed or failed.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateStart:
		return "start"
	case StateInitialized:
		return "initialized"
	case StateReady:
		return "ready"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Versions are the NVSP versions the VSP accepts, newest first: every
// version Linux 6.1 offers but 1, which has no SEND_NDIS_CONFIG.
var Versions = [...]protocol.Version{protocol.Version61, protocol.Version6, protocol.Version5, protocol.Version4, protocol.Version2}

// ErrMalformed is wrapped by the errors of packets the VSP cannot take:
// the caller closes the channel.
var ErrMalformed = errors.New("netvsp: malformed packet")

// ErrClosed is what a closed VSP answers.
var ErrClosed = errors.New("netvsp: closed")

// Stats are a NIC's counters since its channel opened. Tx is the guest's
// direction (guest to switch), Rx the switch's (to the guest).
type Stats struct {
	TxFrames, TxBytes uint64
	// TxDropped: frames the guest sent before RNDIS was initialised,
	// or that the switch refused.
	TxDropped uint64
	// TxMalformed: SEND_RNDIS_PKTs whose RNDIS bytes did not parse or
	// whose pages were not the partition's RAM (each completed with a
	// failure status).
	TxMalformed       uint64
	RxFrames, RxBytes uint64
	// RxDropped: frames for the guest that the packet filter refused,
	// that arrived with no receive buffer or no free section, or that
	// did not fit a section.
	RxDropped uint64
	// RxBadCompletions: guest completions naming no section in flight.
	RxBadCompletions uint64
}

type counters struct {
	txFrames, txBytes, txDropped, txMalformed      atomic.Uint64
	rxFrames, rxBytes, rxDropped, rxBadCompletions atomic.Uint64
}

// VSP is the network VSP of one open of one NIC's channel.
type VSP struct {
	ch  Channel
	mem GuestMemory
	cfg Config
	log *slog.Logger
	st  counters

	// Owned by the channel's goroutine (Packet).
	state    State
	version  protocol.Version
	ndisMTU  uint32 // SEND_NDIS_CONFIG's mtu: the guest's frame size
	send     pageBuffer
	gather   []byte // a SEND_RNDIS_PKT's RNDIS bytes, maxGather long
	ctrlOut  []byte // RNDIS control replies, built here
	nvspOut  [protocol.MessageSize]byte
	rndisReq uint32 // RNDIS requests answered, for logs

	// rx is the receive side, shared by the channel's goroutine
	// (control replies, completions, buffer changes) and the switch
	// port's goroutine (Deliver).
	rx rxState
}

// New returns the VSP for one open of the channel ch; mem is the
// partition's RAM.
func New(ch Channel, mem GuestMemory, cfg Config) (*VSP, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 68 || cfg.MTU > MaxMTU {
		return nil, fmt.Errorf("netvsp: MTU %d; 68 to %d are allowed", cfg.MTU, MaxMTU)
	}
	if cfg.LinkSpeed == 0 {
		cfg.LinkSpeed = DefaultLinkSpeed
	}
	if cfg.MAC[0]&1 != 0 || cfg.MAC == [6]byte{} {
		return nil, fmt.Errorf("netvsp: MAC %x is not a unicast address", cfg.MAC)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &VSP{
		ch: ch, mem: mem, cfg: cfg, log: log,
		gather:  make([]byte, maxGather),
		ctrlOut: make([]byte, 0, protocol.LinuxMaxRNDISReplyBytes),
	}
	v.rx.init(v)
	return v, nil
}

// State is where the initialisation stands.
func (v *VSP) State() State {
	v.rx.mu.Lock()
	defer v.rx.mu.Unlock()
	if v.rx.closed {
		return StateClosed
	}
	return v.state
}

// Version is the NVSP version agreed, 0 before INIT.
func (v *VSP) Version() protocol.Version { return v.version }

// Stats are the NIC's counters.
func (v *VSP) Stats() Stats {
	return Stats{
		TxFrames: v.st.txFrames.Load(), TxBytes: v.st.txBytes.Load(),
		TxDropped: v.st.txDropped.Load(), TxMalformed: v.st.txMalformed.Load(),
		RxFrames: v.st.rxFrames.Load(), RxBytes: v.st.rxBytes.Load(),
		RxDropped: v.st.rxDropped.Load(), RxBadCompletions: v.st.rxBadCompletions.Load(),
	}
}

// Packet handles one packet the guest sent on the channel. Called on the
// channel's goroutine, one packet at a time. An error (wrapping
// ErrMalformed, or the channel's send failure) closes the channel.
// Guest-controlled: p and everything it points at.
func (v *VSP) Packet(p *proto.Packet) error {
	if v.state == StateClosed {
		return ErrClosed
	}
	switch p.Type {
	case proto.PktComp:
		return v.rx.completion(p)
	case proto.PktDataInband, proto.PktDataUsingGPADirect:
	default:
		return fmt.Errorf("%w: a %v packet", ErrMalformed, p.Type)
	}
	t, err := protocol.ParseType(p.Payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if t == protocol.TypeSendRNDISPacket {
		return v.sendRNDISPacket(p)
	}
	if p.Type != proto.PktDataInband {
		return fmt.Errorf("%w: NVSP %v in a %v packet", ErrMalformed, t, p.Type)
	}
	m, err := protocol.ParseFromGuest(p.Payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return v.control(p, m)
}

// Close ends the VSP: the channel closed (err says why, nil for an
// orderly close). Frames for the guest are dropped from now on.
func (v *VSP) Close(err error) {
	v.state = StateClosed
	v.rx.close()
	if err != nil {
		v.log.Warn("netvsp: channel closed", "err", err)
	}
}

// complete sends an NVSP completion for the guest's transaction tid.
func (v *VSP) complete(tid uint64, m protocol.Message) error {
	return v.ch.SendCompletion(tid, m.Append(v.nvspOut[:0]))
}

// control handles the NVSP messages other than SEND_RNDIS_PKT.
func (v *VSP) control(p *proto.Packet, m protocol.Message) error {
	switch m := m.(type) {
	case protocol.Init:
		return v.init(p, m)
	case protocol.SendNDISConfig:
		// Linux sends the MTU it will use plus the Ethernet header;
		// the receive sections are sized for it (within bounds).
		v.ndisMTU = m.MTU
		return nil
	case protocol.SendNDISVersion:
		return nil
	case protocol.SendRecvBuf:
		return v.recvBuf(p, m)
	case protocol.SendSendBuf:
		return v.sendBuf(p, m)
	case protocol.RevokeRecvBuf:
		v.rx.revoke()
		return nil
	case protocol.RevokeSendBuf:
		if v.send.pages != nil {
			v.ch.ReturnGPADL(v.send.handle)
			v.send = pageBuffer{}
		}
		return nil
	case protocol.Subchannel:
		// Sub-channels are declined (the RSS capabilities query is
		// refused, so Linux asks for none); a guest that asks anyway
		// gets a failure and none.
		return v.complete(p.TransactionID, protocol.SubchannelComplete{Status: protocol.StatusFail})
	case protocol.SwitchDataPath:
		// There is no virtual function to switch to.
		if p.CompletionRequested() {
			return v.ch.SendCompletion(p.TransactionID, nil)
		}
		return nil
	}
	return fmt.Errorf("%w: NVSP %v from a guest", ErrMalformed, m.Type())
}

// init is INIT: the version offered (Linux offers one per INIT, min =
// max) is accepted when it is one of Versions.
func (v *VSP) init(p *proto.Packet, m protocol.Init) error {
	status := protocol.StatusProtocolUnsupported
	if v.state == StateStart {
		for _, ver := range Versions {
			if m.MinVersion <= ver && ver <= m.MaxVersion {
				v.version, v.state, status = ver, StateInitialized, protocol.StatusSuccess
				break
			}
		}
	} else {
		status = protocol.StatusFail
	}
	return v.complete(p.TransactionID, protocol.InitComplete{
		NegotiatedVersion: protocol.VersionInvalid,
		MaxMDLChainLength: 34,
		Status:            status,
	})
}

// sendBuf is SEND_SEND_BUF: the guest's send buffer, in sections of
// SendSectionSize.
func (v *VSP) sendBuf(p *proto.Packet, m protocol.SendSendBuf) error {
	reply := protocol.SendSendBufComplete{Status: protocol.StatusFail}
	switch {
	case v.state < StateInitialized:
		v.log.Warn("netvsp: SEND_SEND_BUF before INIT")
	case v.send.pages != nil:
		v.log.Warn("netvsp: a second SEND_SEND_BUF", "gpadl", m.GPADL)
	default:
		pages, err := v.ch.BorrowGPADL(m.GPADL)
		switch {
		case err != nil:
			v.log.Warn("netvsp: send buffer refused", "gpadl", m.GPADL, "err", err)
		case len(pages)*PageSize < SendSectionSize:
			v.ch.ReturnGPADL(m.GPADL)
			v.log.Warn("netvsp: send buffer smaller than a section", "gpadl", m.GPADL, "pages", len(pages))
		default:
			v.send = pageBuffer{handle: m.GPADL, pages: pages}
			reply = protocol.SendSendBufComplete{Status: protocol.StatusSuccess, SectionSize: SendSectionSize}
		}
	}
	return v.complete(p.TransactionID, reply)
}

// recvBuf is SEND_RECV_BUF: the guest's receive buffer, carved into one
// section of equal sub-allocations sized for the guest's frames.
func (v *VSP) recvBuf(p *proto.Packet, m protocol.SendRecvBuf) error {
	reply := protocol.SendRecvBufComplete{Status: protocol.StatusFail}
	if v.state != StateInitialized {
		v.log.Warn("netvsp: SEND_RECV_BUF out of order", "state", v.state)
		return v.complete(p.TransactionID, reply)
	}
	pages, err := v.ch.BorrowGPADL(m.GPADL)
	if err != nil {
		v.log.Warn("netvsp: receive buffer refused", "gpadl", m.GPADL, "err", err)
		return v.complete(p.TransactionID, reply)
	}
	buf := pageBuffer{handle: m.GPADL, pages: pages}
	size := v.sectionSize()
	sec := protocol.OneSection(uint32(min(buf.len(), 1<<31)), size)
	if sec.NumSubAllocs < minRecvSections {
		v.ch.ReturnGPADL(m.GPADL)
		v.log.Warn("netvsp: receive buffer too small", "gpadl", m.GPADL, "pages", len(pages), "sections", sec.NumSubAllocs)
		return v.complete(p.TransactionID, reply)
	}
	v.rx.setBuffer(buf, size, int(sec.NumSubAllocs))
	v.state = StateReady
	return v.complete(p.TransactionID, protocol.SendRecvBufComplete{Status: protocol.StatusSuccess, NumSections: 1, Section: sec})
}

// sectionSize is the receive section for the guest's frame size (its
// SEND_NDIS_CONFIG mtu, which includes the Ethernet header; never below a
// standard frame's) and an 802.1Q tag, bounded by the frames the VSP
// carries.
func (v *VSP) sectionSize() uint32 {
	frame := max(v.ndisMTU, ethernetHeader+DefaultMTU) + vlanTag
	return rxHeadroom + min(frame, maxFrame) + rxFooter
}
