package storvsp

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"gohv/root/storvsp/protocol"
	"gohv/root/storvsp/scsi"
)

// Channel is the VSP's way back to the guest: the host→guest half of one
// VMBus channel (the partition worker backs it with a vmbus/channel channel).
type Channel interface {
	// Send writes packet — always one whole protocol.PacketSize-byte
	// vstor_packet — to the guest as the VMBus completion (packet type
	// COMP 0xB, flags 0, offset8 2, len8 10: 80 bytes with the
	// descriptor, trap 7) of the request with transactionID, echoed
	// unchanged. It may block until the ring has room; an error means
	// the channel is gone, and the VSP then stops. When the caller runs
	// HandlePacket on several goroutines, Send must be safe for
	// concurrent use.
	Send(packet []byte, transactionID uint64) error
}

// Packet is one guest→host VMBus data packet on the storage channel, as
// the channel's reader hands it over: an in-band packet (type 0x6) or a
// GPA-direct one (type 0x9). Completion packets from the guest are the
// reader's to refuse. Everything in it is guest-controlled.
type Packet struct {
	// TransactionID is the descriptor's trans_id, echoed by the
	// completion.
	TransactionID uint64
	// Payload is the vstor_packet: the bytes after the descriptor (and,
	// for GPA-direct packets, after the range list).
	Payload []byte
	// Data is the request's data buffer: NewGPADirect over the packet's
	// ranges; nil for in-band packets.
	Data GuestBuffers
}

// Address is a logical unit's place on the controller: Linux scans paths
// (SCSI channels) 0..7, targets 0..1, LUNs 0..254.
type Address struct {
	Path, Target, LUN uint8
}

func (a Address) String() string { return fmt.Sprintf("%d:%d:%d", a.Path, a.Target, a.LUN) }

// DefaultMaxTransferBytes is QUERY_PROPERTIES' max_transfer_bytes unless
// Config says otherwise: 256 KiB, as Hyper-V and OpenVMM answer.
const DefaultMaxTransferBytes = 256 << 10

// Versions are the protocol versions the VSP accepts, newest first. 6.2
// (WIN10), which Linux offers first, is refused: on 6.2 with vendor "Msft"
// storvsc lets the midlayer try WRITE SAME, which gohv does not serve, so
// Linux settles on 6.0 as it does with Hyper-V and OpenVMM. Versions below
// 5.1 use the 48-byte packet this VSP does not speak.
var Versions = [...]protocol.Version{protocol.VersionWin8_1, protocol.VersionWin8}

// Config is a storage controller's logical units and limits.
type Config struct {
	// LUNs are the logical units by address; every other address is
	// answered as absent. A LogicalUnit may serve several VSPs (one per
	// channel open) at once.
	LUNs map[Address]*scsi.LogicalUnit
	// MaxTransferBytes is QUERY_PROPERTIES' max_transfer_bytes: a
	// multiple of 4096, at least 4096; 0 means DefaultMaxTransferBytes.
	// An EXECUTE_SRB whose data_transfer_length or GPA range is longer
	// is refused (ILLEGAL REQUEST, INVALID FIELD IN CDB) untouched.
	MaxTransferBytes uint32
	// Logger receives the negotiation and disk failures; nil discards.
	Logger *slog.Logger
}

// State is where the VSTOR initialisation stands.
type State int

// The states, in the order Linux's storvsc_channel_init walks them.
const (
	StateWaitBegin      State = iota // expects BEGIN_INITIALIZATION
	StateWaitVersion                 // expects QUERY_PROTOCOL_VERSION until one is accepted
	StateWaitProperties              // expects QUERY_PROPERTIES
	StateWaitEnd                     // expects END_INITIALIZATION
	StateReady                       // serves EXECUTE_SRB
)

func (s State) String() string {
	switch s {
	case StateWaitBegin:
		return "wait-begin"
	case StateWaitVersion:
		return "wait-version"
	case StateWaitProperties:
		return "wait-properties"
	case StateWaitEnd:
		return "wait-end"
	case StateReady:
		return "ready"
	}
	return fmt.Sprintf("state-%d", int(s))
}

// Errors HandlePacket returns; either way the caller closes the channel.
var (
	// ErrMalformed: the guest's packet cannot be answered (too short, an
	// operation only the host sends, an SRB whose lengths lie).
	ErrMalformed = errors.New("storvsp: malformed packet")
	// ErrClosed: HandlePacket already failed on this VSP.
	ErrClosed = errors.New("storvsp: channel closed after an earlier failure")
)

// VSP is the storage VSP of one open channel.
type VSP struct {
	ch      Channel
	luns    map[Address]*scsi.LogicalUnit
	targets map[[2]uint8][]uint16 // path/target → its LUNs, ascending (REPORT LUNS)
	maxXfer uint32
	log     *slog.Logger

	// mu orders the initialisation: held while a control packet is
	// answered, so state, version and their completions change together.
	mu      sync.Mutex
	state   State
	version protocol.Version
	failed  error

	// io is held shared by every EXECUTE_SRB in flight and exclusively by
	// a reset, which completes only when they have.
	io sync.RWMutex
}

// New makes the VSP for a channel the guest has just opened; make a new
// one each time it reopens it.
func New(ch Channel, cfg Config) (*VSP, error) {
	if ch == nil {
		return nil, errors.New("storvsp: nil channel")
	}
	max := cfg.MaxTransferBytes
	if max == 0 {
		max = DefaultMaxTransferBytes
	}
	if max < PageSize || max%PageSize != 0 {
		return nil, fmt.Errorf("storvsp: max transfer bytes %d: not a positive multiple of %d", max, PageSize)
	}
	v := &VSP{
		ch:      ch,
		luns:    make(map[Address]*scsi.LogicalUnit, len(cfg.LUNs)),
		targets: map[[2]uint8][]uint16{},
		maxXfer: max,
		log:     cfg.Logger,
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	for a, u := range cfg.LUNs {
		if u == nil {
			return nil, fmt.Errorf("storvsp: LUN %v: nil logical unit", a)
		}
		v.luns[a] = u
		t := [2]uint8{a.Path, a.Target}
		v.targets[t] = append(v.targets[t], uint16(a.LUN))
	}
	for _, l := range v.targets {
		slices.Sort(l)
	}
	return v, nil
}

// State is the initialisation's state.
func (v *VSP) State() State {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state
}

// Version is the negotiated protocol version, 0 before one is.
func (v *VSP) Version() protocol.Version {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.version
}

// HandlePacket answers one guest packet. It returns nil after sending
// exactly one completion for it; an error (wrapping ErrMalformed, the
// Channel's send error, or ErrClosed) when the channel must close, having
// sent none — except a Send that failed. After an error every later call
// returns ErrClosed. See the package documentation for concurrency and for
// where a panic is recovered.
func (v *VSP) HandlePacket(p Packet) error {
	v.mu.Lock()
	failed := v.failed
	v.mu.Unlock()
	if failed != nil {
		return fmt.Errorf("%w (%w)", ErrClosed, failed)
	}
	err := v.handle(p)
	if err != nil {
		v.mu.Lock()
		if v.failed == nil {
			v.failed = err
		}
		v.mu.Unlock()
	}
	return err
}

func malformed(p Packet, format string, args ...any) error {
	return fmt.Errorf("storvsp: transaction %#x: %s: %w", p.TransactionID, fmt.Sprintf(format, args...), ErrMalformed)
}

func (v *VSP) handle(p Packet) error {
	pkt, err := protocol.ParsePacket(p.Payload)
	if err != nil {
		return malformed(p, "%v", err)
	}
	switch pkt.Operation {
	case protocol.OpExecuteSRB:
		return v.executeSRB(p, &pkt)
	case protocol.OpResetLUN, protocol.OpResetAdapter, protocol.OpResetBus:
		// Nothing is queued below the VSP: once the SRBs in flight have
		// completed, so has the reset (Linux waits 5 s for RESET_BUS).
		v.io.Lock()
		v.io.Unlock()
		return v.complete(p, protocol.StatusSuccess, nil)
	case protocol.OpBeginInitialization, protocol.OpQueryProtocolVersion, protocol.OpQueryProperties,
		protocol.OpEndInitialization, protocol.OpCreateSubChannels, protocol.OpFCHBAData:
		return v.control(p, &pkt)
	}
	return malformed(p, "operation %v is not one a guest sends", pkt.Operation)
}

// complete sends a COMPLETE_IO with status; set fills the union.
func (v *VSP) complete(p Packet, status protocol.NTStatus, set func(*protocol.Packet)) error {
	out := protocol.Packet{Operation: protocol.OpCompleteIO, Status: status}
	if set != nil {
		set(&out)
	}
	b := out.Marshal()
	if err := v.ch.Send(b[:], p.TransactionID); err != nil {
		return fmt.Errorf("storvsp: transaction %#x: send completion: %w", p.TransactionID, err)
	}
	return nil
}

// control answers the initialisation packets (§6.3) and the ones the VSP
// declines.
func (v *VSP) control(p Packet, pkt *protocol.Packet) error {
	// Decode what the operation carries before anything is sent or
	// changed: a short packet closes the channel without an answer.
	var ver protocol.ProtocolVersion
	var err error
	switch pkt.Operation {
	case protocol.OpQueryProtocolVersion:
		ver, err = pkt.ProtocolVersion()
	case protocol.OpCreateSubChannels:
		_, err = pkt.SubChannelCount()
	}
	if err != nil {
		return malformed(p, "%v: %v", pkt.Operation, err)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	switch op := pkt.Operation; {
	case op == protocol.OpCreateSubChannels:
		// QUERY_PROPERTIES offered none; Linux asks only when offered.
		v.log.Info("storvsp: sub-channels declined", "state", v.state)
		return v.complete(p, protocol.StatusInvalidDeviceRequest, nil)
	case op == protocol.OpFCHBAData:
		return v.complete(p, protocol.StatusInvalidDeviceRequest, nil) // not a Fibre Channel HBA
	case op == protocol.OpBeginInitialization && v.state != StateReady:
		// From any initialisation state: a guest starting over.
		if err := v.complete(p, protocol.StatusSuccess, nil); err != nil {
			return err
		}
		v.state, v.version = StateWaitVersion, 0
	case op == protocol.OpQueryProtocolVersion && v.state == StateWaitVersion:
		echo := func(q *protocol.Packet) { q.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: ver.MajorMinor}) }
		if !slices.Contains(Versions[:], ver.MajorMinor) {
			v.log.Debug("storvsp: protocol version refused", "version", ver.MajorMinor.String())
			return v.complete(p, protocol.StatusRevisionMismatch, echo)
		}
		if err := v.complete(p, protocol.StatusSuccess, echo); err != nil {
			return err
		}
		v.state, v.version = StateWaitProperties, ver.MajorMinor
		v.log.Info("storvsp: protocol negotiated", "version", ver.MajorMinor.String())
	case op == protocol.OpQueryProperties && v.state == StateWaitProperties:
		props := protocol.ChannelProperties{MaxTransferBytes: v.maxXfer} // no multi-channel, no sub-channels
		if err := v.complete(p, protocol.StatusSuccess, func(q *protocol.Packet) { q.SetChannelProperties(props) }); err != nil {
			return err
		}
		v.state = StateWaitEnd
	case op == protocol.OpEndInitialization && v.state == StateWaitEnd:
		if err := v.complete(p, protocol.StatusSuccess, nil); err != nil {
			return err
		}
		v.state = StateReady
	default:
		v.log.Debug("storvsp: packet out of order", "operation", op.String(), "state", v.state.String())
		return v.complete(p, protocol.StatusInvalidDeviceState, nil)
	}
	return nil
}

// executeSRB runs one SCSI request and sends its completion.
func (v *VSP) executeSRB(p Packet, pkt *protocol.Packet) error {
	req, err := pkt.SCSIRequest()
	if err != nil {
		return malformed(p, "EXECUTE_SRB: %v", err)
	}
	if req.CDBLength > protocol.CDBSize {
		return malformed(p, "EXECUTE_SRB: cdb_length %d", req.CDBLength)
	}
	if req.DataTransferLength > 0 && (p.Data == nil || uint64(req.DataTransferLength) > uint64(p.Data.Len())) {
		have := 0
		if p.Data != nil {
			have = p.Data.Len()
		}
		return malformed(p, "EXECUTE_SRB: data_transfer_length %d, buffer %d bytes", req.DataTransferLength, have)
	}

	out := protocol.SCSIRequest{
		Length:     protocol.SCSIRequestSize,
		PortNumber: req.PortNumber,
		PathID:     req.PathID,
		TargetID:   req.TargetID,
		LUN:        req.LUN,
		CDBLength:  req.CDBLength,
		DataIn:     req.DataIn,
	}
	if v.State() != StateReady {
		out.SRBStatus = protocol.SRBStatusError
		return v.complete(p, protocol.StatusInvalidDeviceState, func(q *protocol.Packet) { q.SetSCSIRequest(out) })
	}

	v.io.RLock()
	defer v.io.RUnlock()
	addr := Address{req.PathID, req.TargetID, req.LUN}
	cdb := req.CDB()
	var r scsi.Result
	absent := false
	if uint64(req.DataTransferLength) > uint64(v.maxXfer) || (p.Data != nil && uint64(p.Data.Len()) > uint64(v.maxXfer)) {
		// Longer than QUERY_PROPERTIES' max_transfer_bytes: refused
		// before a page of it is read.
		r = invalidFieldInCDB
	} else if buf, err := dataBuffer(p, &req); err != nil {
		// Neither the disk nor the guest has been touched: a command
		// over a bad page changes nothing.
		r = bufferFault(err)
	} else {
		switch u, ok := v.luns[addr]; {
		case len(cdb) > 0 && scsi.Opcode(cdb[0]) == scsi.OpReportLUNs:
			// The target's command, for whichever LUN it is sent to.
			r = scsi.ReportLUNs(cdb, v.targets[[2]uint8{addr.Path, addr.Target}], buf)
		case ok:
			r = u.Execute(cdb, buf)
		default:
			r = scsi.NotPresent(cdb, buf)
			absent = r.Status == scsi.StatusCheckCondition && r.Sense.Code == scsi.ASCLogicalUnitNotSupported
		}
	}
	if r.Err != nil {
		v.log.Warn("storvsp: command failed", "lun", addr.String(), "op", opName(cdb), "sense", r.Sense.String(), "err", r.Err)
	}

	status := protocol.StatusSuccess
	out.SCSIStatus = uint8(r.Status)
	if r.Status == scsi.StatusGood {
		out.SRBStatus = protocol.SRBStatusSuccess
		out.DataTransferLength = uint32(r.N)
	} else {
		// CHECK CONDITION with autosense: Linux copies the sense only
		// with both, and forces data_transfer_length to 0 anyway.
		switch {
		case absent:
			// Linux: DID_NO_CONNECT, and it removes the LUN.
			out.SRBStatus, status = protocol.SRBStatusInvalidLUN, protocol.StatusDeviceDoesNotExist
		case r.Sense.Key == scsi.KeyIllegalRequest:
			out.SRBStatus, status = protocol.SRBStatusInvalidRequest, protocol.StatusIODeviceError
		default:
			out.SRBStatus, status = protocol.SRBStatusError, protocol.StatusIODeviceError
		}
		sense := r.Sense.Fixed()
		n := min(len(sense), int(req.SenseInfoLength))
		if n > 0 {
			copy(out.CDBOrSense[:], sense[:n])
			out.SenseInfoLength = uint8(n)
			out.SRBStatus |= protocol.SRBStatusAutosenseValid
		}
	}
	return v.complete(p, status, func(q *protocol.Packet) { q.SetSCSIRequest(out) })
}

// invalidFieldInCDB is the answer to a request the VSP refuses before
// any logical unit sees it: CHECK CONDITION, ILLEGAL REQUEST / INVALID
// FIELD IN CDB, so SRB status INVALID_REQUEST with autosense and
// IO_DEVICE_ERROR, which Linux fails at once from the sense, without a
// retry. OpenVMM's SCSI disk refuses a transfer beyond its maximum length
// the same way. A package-level value: refusing builds nothing.
var invalidFieldInCDB = scsi.Result{Status: scsi.StatusCheckCondition,
	Sense: scsi.Sense{Key: scsi.KeyIllegalRequest, Code: scsi.ASCInvalidFieldInCDB}}

// dataBuffer is the SRB's data buffer cut to its data_transfer_length
// (already checked against the buffer's length and max_transfer_bytes),
// nil when it moves no data, once every page under the transfer has been
// found to be the guest's RAM; a page outside it is the error.
// Guest-controlled: req, p.Data.
func dataBuffer(p Packet, req *protocol.SCSIRequest) (scsi.Buffer, error) {
	if req.DataTransferLength == 0 {
		return nil, nil
	}
	n := int(req.DataTransferLength)
	if err := p.Data.Check(n); err != nil {
		return nil, err
	}
	return window{p.Data, n}, nil
}

// bufferFault is scsi's answer to an initiator buffer it cannot reach
// (ILLEGAL REQUEST / INVALID FIELD IN CDB, Err wrapping scsi.ErrBuffer),
// given before the command starts.
func bufferFault(err error) scsi.Result {
	r := invalidFieldInCDB
	r.Err = fmt.Errorf("%w: %w", scsi.ErrBuffer, err)
	return r
}

func opName(cdb []byte) string {
	if len(cdb) == 0 {
		return "none"
	}
	return scsi.Opcode(cdb[0]).String()
}
