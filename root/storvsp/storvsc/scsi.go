package storvsc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"gohv/root/storvsp/protocol"
	"gohv/vmbus/client"
	"gohv/vmbus/proto"
)

// Address is a logical unit's place on the controller: path (SCSI
// channel) 0..7, target 0..1, LUN 0..254 as Linux scans them.
type Address struct {
	Path, Target, LUN uint8
}

func (a Address) String() string { return fmt.Sprintf("%d:%d:%d", a.Path, a.Target, a.LUN) }

// Direction is vmscsi_request.data_in: which way the data moves.
type Direction uint8

const (
	// DataOut: initiator to device (WRITE), Linux's WRITE_TYPE.
	DataOut Direction = protocol.DataOut
	// DataIn: device to initiator (READ), READ_TYPE.
	DataIn Direction = protocol.DataIn
	// NoData: UNKNOWN_TYPE.
	NoData Direction = protocol.DataUnspecified
)

// Request is one SCSI command.
type Request struct {
	Addr Address
	// CDB is the command descriptor block, 1 to 16 bytes.
	CDB []byte
	// Dir says which way Data moves; NoData for a command without data.
	Dir Direction
	// Data is the data buffer, nil for NoData. Its length is the
	// request's data_transfer_length and at most MaxTransferBytes.
	Data *Buffer

	// The two fields below describe the data as given, unchecked: for
	// tests that play a guest breaking the rules. A Go guest leaves them
	// zero.

	// Pages, when set, is sent as the GPA-direct range in place of
	// Data's (Data may then be nil): any offset, length and frames.
	Pages *client.Range
	// TransferLength, when non-zero, is sent as data_transfer_length in
	// place of the data's length.
	TransferLength uint32
}

// Result is a command's completion as the host sent it.
type Result struct {
	// Status is vstor_packet.status (informational for SRBs).
	Status protocol.NTStatus
	// SRBStatus is the SRB status with its flags (AUTOSENSE_VALID).
	SRBStatus protocol.SRBStatus
	// SCSIStatus is the SAM status: 0x00 GOOD, 0x02 CHECK CONDITION, ...
	SCSIStatus uint8
	// N is data_transfer_length: the bytes the host moved.
	N int
	// SenseData are the valid sense bytes (sense_info_length of them,
	// at most 20), present with AUTOSENSE_VALID.
	SenseData []byte
}

// SAM status codes the package names.
const (
	StatusGood           = 0x00
	StatusCheckCondition = 0x02
)

// OK reports SRB SUCCESS with SCSI status GOOD.
func (r *Result) OK() bool {
	return r.SRBStatus.Code() == protocol.SRBStatusSuccess && r.SCSIStatus == StatusGood
}

// Sense decodes the sense data; ok is false without valid sense.
func (r *Result) Sense() (s Sense, ok bool) {
	if r.SRBStatus&protocol.SRBStatusAutosenseValid == 0 {
		return Sense{}, false
	}
	return ParseSense(r.SenseData)
}

// CommandError is a command that did not end in SUCCESS/GOOD.
type CommandError struct {
	Addr Address
	// Op is the CDB's operation code.
	Op uint8
	Result
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("storvsc: %v %s: SRB status %#02x, SCSI status %#02x, %v", e.Addr, opName(e.Op), uint8(e.SRBStatus), e.SCSIStatus, e.Status)
	if s, ok := e.Sense(); ok {
		msg += ", sense " + s.String()
	}
	return msg
}

// SenseOf is the sense data of a *CommandError in err's chain.
func SenseOf(err error) (Sense, bool) {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return Sense{}, false
	}
	return ce.Sense()
}

// Sense is the key and additional sense code of sense data.
type Sense struct {
	Key, ASC, ASCQ uint8
}

// Sense keys the package names (SPC-4 table 27).
const (
	KeyNoSense        = 0x0
	KeyNotReady       = 0x2
	KeyMediumError    = 0x3
	KeyHardwareError  = 0x4
	KeyIllegalRequest = 0x5
	KeyUnitAttention  = 0x6
	KeyDataProtect    = 0x7
	KeyAbortedCommand = 0xB
)

var keyNames = map[uint8]string{
	KeyNoSense: "NO SENSE", KeyNotReady: "NOT READY", KeyMediumError: "MEDIUM ERROR",
	KeyHardwareError: "HARDWARE ERROR", KeyIllegalRequest: "ILLEGAL REQUEST",
	KeyUnitAttention: "UNIT ATTENTION", KeyDataProtect: "DATA PROTECT", KeyAbortedCommand: "ABORTED COMMAND",
}

func (s Sense) String() string {
	name, ok := keyNames[s.Key]
	if !ok {
		name = fmt.Sprintf("KEY %#x", s.Key)
	}
	return fmt.Sprintf("%s %02x/%02x/%02x", name, s.Key, s.ASC, s.ASCQ)
}

// ParseSense decodes fixed-format (0x70, 0x71) or descriptor-format
// (0x72, 0x73) sense data.
func ParseSense(b []byte) (Sense, bool) {
	if len(b) < 1 {
		return Sense{}, false
	}
	switch b[0] & 0x7F {
	case 0x70, 0x71:
		if len(b) < 14 {
			return Sense{}, false
		}
		return Sense{Key: b[2] & 0x0F, ASC: b[12], ASCQ: b[13]}, true
	case 0x72, 0x73:
		if len(b) < 4 {
			return Sense{}, false
		}
		return Sense{Key: b[1] & 0x0F, ASC: b[2], ASCQ: b[3]}, true
	}
	return Sense{}, false
}

// Linux's SRB constants (linux-guest-hyperv-facts.md §6.2, §6.4).
const (
	senseBufferSize  = protocol.SenseBufferSize // sense_info_length: 0x14
	srbTimeout       = 60                       // time_out_value, seconds
	queueTagUntagged = 0xFF                     // SP_UNTAGGED
	simpleTagRequest = 0x20                     // SRB_SIMPLE_TAG_REQUEST
)

// Execute sends one command and waits for its completion. The error is
// about getting the command there and back (arguments, the channel, a
// malformed completion, ctx); a command the host completed comes back as a
// Result whatever its status — Result.OK says whether it succeeded. If ctx
// ends first, the command stays in flight at the host and its Data stays
// held (Buffer.Free waits for it).
func (c *Controller) Execute(ctx context.Context, r *Request) (Result, error) {
	if len(r.CDB) == 0 || len(r.CDB) > protocol.CDBSize {
		return Result{}, fmt.Errorf("%w: CDB of %d bytes", ErrInvalid, len(r.CDB))
	}
	var rng client.Range
	hasData := false
	switch {
	case r.Pages != nil:
		rng, hasData = *r.Pages, true
	case r.Data != nil:
		rng, hasData = r.Data.Range(), true
		if r.Data.Len() > c.MaxTransferBytes() {
			return Result{}, fmt.Errorf("%w: %d bytes of data, the host takes at most %d", ErrInvalid, r.Data.Len(), c.MaxTransferBytes())
		}
	}
	switch {
	case r.Dir > NoData:
		return Result{}, fmt.Errorf("%w: direction %d", ErrInvalid, r.Dir)
	case hasData && r.Dir == NoData:
		return Result{}, fmt.Errorf("%w: data for a command without data", ErrInvalid)
	case !hasData && r.Dir != NoData:
		return Result{}, fmt.Errorf("%w: direction %d without data", ErrInvalid, r.Dir)
	}
	length := rng.Len
	if r.TransferLength != 0 {
		length = r.TransferLength
	}

	srb := protocol.SCSIRequest{
		Length:             protocol.SCSIRequestSize,
		PortNumber:         c.cfg.PortNumber,
		PathID:             r.Addr.Path,
		TargetID:           r.Addr.Target,
		LUN:                r.Addr.LUN,
		CDBLength:          uint8(len(r.CDB)),
		SenseInfoLength:    senseBufferSize,
		DataIn:             uint8(r.Dir),
		DataTransferLength: length,
		QueueTag:           queueTagUntagged,
		QueueAction:        simpleTagRequest,
		SRBFlags:           protocol.SRBFlagsDisableSynchTransfer | protocol.SRBFlagsQueueActionEnable | protocol.SRBFlagsNoQueueFreeze,
		TimeOutValue:       srbTimeout,
	}
	switch r.Dir {
	case DataIn:
		srb.SRBFlags |= protocol.SRBFlagsDataIn
	case DataOut:
		srb.SRBFlags |= protocol.SRBFlagsDataOut
	}
	copy(srb.CDBOrSense[:], r.CDB)
	pkt := protocol.Packet{Operation: protocol.OpExecuteSRB, Flags: protocol.FlagRequestCompletion}
	pkt.SetSCSIRequest(srb)
	payload := pkt.Marshal()

	if r.Data != nil {
		if err := r.Data.acquire(); err != nil {
			return Result{}, err
		}
	}
	cl, err := c.register(0, r.Data, length)
	if err != nil {
		if r.Data != nil {
			r.Data.release()
		}
		return Result{}, err
	}
	if hasData {
		h, herr := appendGPADirectHeader(nil, cl.tid, rng, len(payload))
		if herr != nil {
			c.unregister(cl)
			return Result{}, fmt.Errorf("%w: %v", ErrInvalid, herr)
		}
		err = c.ch.SendPacket(ctx, h, payload[:])
	} else {
		err = c.ch.SendInband(ctx, proto.PacketFlagCompletionRequested, cl.tid, payload[:])
	}
	if err != nil {
		c.unregister(cl)
		return Result{}, fmt.Errorf("storvsc: %v %s: %w", r.Addr, opName(r.CDB[0]), err)
	}
	c.requests.Add(1)
	resp, err := c.wait(ctx, cl)
	if err != nil {
		return Result{}, fmt.Errorf("storvsc: %v %s: %w", r.Addr, opName(r.CDB[0]), err)
	}
	done, _ := resp.SCSIRequest() // checked by dispatch
	res := Result{
		Status:     resp.Status,
		SRBStatus:  done.SRBStatus,
		SCSIStatus: done.SCSIStatus,
		N:          int(done.DataTransferLength),
	}
	if n := min(int(done.SenseInfoLength), senseBufferSize); n > 0 && done.SRBStatus&protocol.SRBStatusAutosenseValid != 0 {
		res.SenseData = append([]byte(nil), done.CDBOrSense[:n]...)
	}
	return res, nil
}

// appendGPADirectHeader builds the descriptor and the one-range extension
// of a GPA-direct packet as Linux 6.1's storvsc lays it out: up to 32
// pages in 32 PFN slots (the slots after the range's pages hold StalePFN),
// more in exactly as many as the range spans. r is sent as given: only
// what the packet format itself needs is checked.
func appendGPADirectHeader(b []byte, tid uint64, r client.Range, payloadLen int) ([]byte, error) {
	if r.Offset >= proto.PageSize {
		// The packet could carry it; the VMBus format's page count could
		// not be derived from it.
		return b, fmt.Errorf("GPA-direct byte offset %d beyond the first page", r.Offset)
	}
	pages := proto.GPARangePages(r.Offset, r.Len)
	if len(r.PFNs) > maxBufferBytes/proto.PageSize+1 {
		return b, fmt.Errorf("GPA-direct range of %d PFNs", len(r.PFNs))
	}
	slots := len(r.PFNs)
	if pages <= linuxPFNSlots && slots <= linuxPFNSlots {
		slots = linuxPFNSlots
	}
	hdr := proto.GPADirectHeaderSize + 8 + 8*slots
	if b == nil {
		b = make([]byte, 0, hdr)
	}
	d := proto.PacketDescriptor{
		Type:          proto.PktDataUsingGPADirect,
		DataOffset8:   uint16(hdr / 8),
		Length8:       uint16((hdr + payloadLen + 7) / 8),
		Flags:         proto.PacketFlagCompletionRequested,
		TransactionID: tid,
	}
	b = d.Append(b)
	b = binary.LittleEndian.AppendUint32(b, 0) // reserved
	b = binary.LittleEndian.AppendUint32(b, 1) // rangecount
	b = binary.LittleEndian.AppendUint32(b, r.Len)
	b = binary.LittleEndian.AppendUint32(b, r.Offset)
	for i := range slots {
		pfn := StalePFN
		if i < len(r.PFNs) {
			pfn = r.PFNs[i]
		}
		b = binary.LittleEndian.AppendUint64(b, pfn)
	}
	return b, nil
}

// run executes a command and turns anything but SUCCESS/GOOD into a
// *CommandError.
func (c *Controller) run(ctx context.Context, r *Request) (Result, error) {
	res, err := c.Execute(ctx, r)
	if err != nil {
		return res, err
	}
	if !res.OK() {
		return res, &CommandError{Addr: r.Addr, Op: r.CDB[0], Result: res}
	}
	return res, nil
}

// dataIn runs a data-in command into a scratch buffer of n bytes and
// returns the bytes the host moved.
func (c *Controller) dataIn(ctx context.Context, a Address, cdb []byte, n int) ([]byte, error) {
	buf, err := c.NewBuffer(n)
	if err != nil {
		return nil, err
	}
	defer buf.Free()
	res, err := c.run(ctx, &Request{Addr: a, CDB: cdb, Dir: DataIn, Data: buf})
	if err != nil {
		return nil, err
	}
	out := make([]byte, res.N)
	buf.ReadAt(out, 0)
	return out, nil
}

// TestUnitReady sends TEST UNIT READY.
func (c *Controller) TestUnitReady(ctx context.Context, a Address) error {
	_, err := c.run(ctx, &Request{Addr: a, CDB: CDBTestUnitReady(), Dir: NoData})
	return err
}

// Inquiry is standard INQUIRY data.
type Inquiry struct {
	// Qualifier is the peripheral qualifier: 0 a unit is there, 3 none
	// can be (byte 0 = 0x7F: the target answers for an absent LUN).
	Qualifier uint8
	// DeviceType is the peripheral device type: 0 direct access.
	DeviceType uint8
	Removable  bool
	// Version is the SPC version claimed (5: SPC-3).
	Version        uint8
	ResponseFormat uint8
	CmdQue         bool
	// Vendor, Product and Revision are the identification, trailing
	// spaces removed.
	Vendor, Product, Revision string
	// Raw is the whole answer.
	Raw []byte
}

// Present reports a logical unit at the address (qualifier 0).
func (i *Inquiry) Present() bool { return i.Qualifier == 0 }

// Inquiry asks for the standard INQUIRY data as Linux's scan does: 36
// bytes first, then additional_length + 5 if that is more.
func (c *Controller) Inquiry(ctx context.Context, a Address) (Inquiry, error) {
	b, err := c.dataIn(ctx, a, CDBInquiry(false, 0, 36), 36)
	if err != nil {
		return Inquiry{}, err
	}
	if len(b) >= 5 && int(b[4])+5 > len(b) {
		if b, err = c.dataIn(ctx, a, CDBInquiry(false, 0, uint16(b[4])+5), int(b[4])+5); err != nil {
			return Inquiry{}, err
		}
	}
	return parseInquiry(b)
}

// ErrBadData: an answer's data does not hold what the command returns.
var ErrBadData = errors.New("storvsc: malformed command data")

func parseInquiry(b []byte) (Inquiry, error) {
	if len(b) < 36 {
		return Inquiry{Raw: b}, fmt.Errorf("%w: standard INQUIRY data of %d bytes, want at least 36", ErrBadData, len(b))
	}
	trim := func(s []byte) string {
		for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == 0) {
			s = s[:len(s)-1]
		}
		return string(s)
	}
	return Inquiry{
		Qualifier: b[0] >> 5, DeviceType: b[0] & 0x1F, Removable: b[1]&0x80 != 0,
		Version: b[2], ResponseFormat: b[3] & 0x0F, CmdQue: b[7]&0x02 != 0,
		Vendor: trim(b[8:16]), Product: trim(b[16:32]), Revision: trim(b[32:36]), Raw: b,
	}, nil
}

// InquiryVPD returns VPD page page, header included, asked for as Linux
// asks: the 4-byte header first, then the whole page. A page whose byte 1
// is not page is refused (Linux's check).
func (c *Controller) InquiryVPD(ctx context.Context, a Address, page uint8) ([]byte, error) {
	h, err := c.dataIn(ctx, a, CDBInquiry(true, page, 4), 4)
	if err != nil {
		return nil, err
	}
	if len(h) < 4 || h[1] != page {
		return nil, fmt.Errorf("%w: VPD page %#02x header % x", ErrBadData, page, h)
	}
	n := 4 + int(binary.BigEndian.Uint16(h[2:]))
	if n > proto.PageSize {
		return nil, fmt.Errorf("%w: VPD page %#02x of %d bytes", ErrBadData, page, n)
	}
	b, err := c.dataIn(ctx, a, CDBInquiry(true, page, uint16(n)), n)
	if err != nil {
		return nil, err
	}
	if len(b) < 4 || b[1] != page {
		return nil, fmt.Errorf("%w: VPD page %#02x answered with % x", ErrBadData, page, b[:min(len(b), 4)])
	}
	return b, nil
}

// Capacity is a logical unit's size.
type Capacity struct {
	// Blocks is the number of logical blocks (last LBA + 1).
	Blocks uint64
	// BlockSize is the logical block length in bytes.
	BlockSize uint32
	// Thin: LBPME, logical block provisioning (UNMAP) enabled (READ
	// CAPACITY(16) only).
	Thin bool
}

// ReadCapacity16 sends READ CAPACITY(16).
func (c *Controller) ReadCapacity16(ctx context.Context, a Address) (Capacity, error) {
	b, err := c.dataIn(ctx, a, CDBReadCapacity16(32), 32)
	if err != nil {
		return Capacity{}, err
	}
	if len(b) < 12 {
		return Capacity{}, fmt.Errorf("%w: READ CAPACITY(16) data of %d bytes", ErrBadData, len(b))
	}
	last := binary.BigEndian.Uint64(b)
	if last == ^uint64(0) {
		return Capacity{}, fmt.Errorf("%w: READ CAPACITY(16) last LBA %#x", ErrBadData, last)
	}
	cp := Capacity{Blocks: last + 1, BlockSize: binary.BigEndian.Uint32(b[8:])}
	if len(b) >= 15 {
		cp.Thin = b[14]&0x80 != 0
	}
	return cp, nil
}

// ReadCapacity10 sends READ CAPACITY(10). A unit of 2^32 blocks or more
// answers with last LBA 0xFFFFFFFF: that is an error wrapping ErrBadData
// that says to ask READ CAPACITY(16).
func (c *Controller) ReadCapacity10(ctx context.Context, a Address) (Capacity, error) {
	b, err := c.dataIn(ctx, a, CDBReadCapacity10(), 8)
	if err != nil {
		return Capacity{}, err
	}
	if len(b) < 8 {
		return Capacity{}, fmt.Errorf("%w: READ CAPACITY(10) data of %d bytes", ErrBadData, len(b))
	}
	last := binary.BigEndian.Uint32(b)
	if last == 0xFFFF_FFFF {
		return Capacity{}, fmt.Errorf("%w: READ CAPACITY(10) says 2^32 blocks or more: ask READ CAPACITY(16)", ErrBadData)
	}
	return Capacity{Blocks: uint64(last) + 1, BlockSize: binary.BigEndian.Uint32(b[4:])}, nil
}

// ReadCapacity asks as Linux's sd does for an SPC-3 unit: READ
// CAPACITY(16) first, READ CAPACITY(10) if the unit refuses it with
// ILLEGAL REQUEST.
func (c *Controller) ReadCapacity(ctx context.Context, a Address) (Capacity, error) {
	cp, err := c.ReadCapacity16(ctx, a)
	if s, ok := SenseOf(err); ok && s.Key == KeyIllegalRequest {
		return c.ReadCapacity10(ctx, a)
	}
	return cp, err
}

// use16 is sd's choice of CDB for a transfer: READ/WRITE(16) when the LBA
// or the block count does not fit the 10-byte form.
func use16(lba uint64, blocks uint32) bool { return lba > 0xFFFF_FFFF || blocks > 0xFFFF }

// Read reads blocks blocks at lba into buf, whose length is the transfer
// length (blocks × the block size), with READ(10) or, when the LBA or the
// count does not fit it, READ(16).
func (c *Controller) Read(ctx context.Context, a Address, lba uint64, blocks uint32, buf *Buffer) error {
	cdb := CDBRead16(lba, blocks)
	if !use16(lba, blocks) {
		cdb = CDBRead10(uint32(lba), uint16(blocks))
	}
	return c.transfer(ctx, a, cdb, DataIn, buf)
}

// Write writes blocks blocks at lba from buf, with WRITE(10) or WRITE(16)
// as Read chooses.
func (c *Controller) Write(ctx context.Context, a Address, lba uint64, blocks uint32, buf *Buffer) error {
	cdb := CDBWrite16(lba, blocks)
	if !use16(lba, blocks) {
		cdb = CDBWrite10(uint32(lba), uint16(blocks))
	}
	return c.transfer(ctx, a, cdb, DataOut, buf)
}

func (c *Controller) transfer(ctx context.Context, a Address, cdb []byte, dir Direction, buf *Buffer) error {
	if buf == nil {
		return fmt.Errorf("%w: no buffer", ErrInvalid)
	}
	res, err := c.run(ctx, &Request{Addr: a, CDB: cdb, Dir: dir, Data: buf})
	if err == nil && res.N != buf.Len() {
		err = fmt.Errorf("%w: %s moved %d of %d bytes", ErrBadData, opName(cdb[0]), res.N, buf.Len())
	}
	return err
}

// SynchronizeCache sends SYNCHRONIZE CACHE(10) for the whole unit.
func (c *Controller) SynchronizeCache(ctx context.Context, a Address) error {
	_, err := c.run(ctx, &Request{Addr: a, CDB: CDBSynchronizeCache10(0, 0), Dir: NoData})
	return err
}

// ReportLUNs sends REPORT LUNS (SELECT REPORT 0) to a's target and
// returns the LUNs it lists, decoding single-level peripheral and flat
// space addressing.
func (c *Controller) ReportLUNs(ctx context.Context, a Address) ([]uint16, error) {
	const alloc = 8 + 8*256
	b, err := c.dataIn(ctx, a, CDBReportLUNs(0, alloc), alloc)
	if err != nil {
		return nil, err
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: REPORT LUNS data of %d bytes", ErrBadData, len(b))
	}
	n := int(binary.BigEndian.Uint32(b)) / 8
	if n > (len(b)-8)/8 {
		return nil, fmt.Errorf("%w: REPORT LUNS lists %d LUNs in %d bytes", ErrBadData, n, len(b))
	}
	luns := make([]uint16, 0, n)
	for i := range n {
		e := b[8+8*i:]
		switch e[0] >> 6 {
		case 0: // peripheral device addressing
			luns = append(luns, uint16(e[1]))
		case 1: // flat space addressing
			luns = append(luns, binary.BigEndian.Uint16(e)&0x3FFF)
		default:
			return nil, fmt.Errorf("%w: REPORT LUNS entry % x", ErrBadData, e[:8])
		}
	}
	return luns, nil
}

// Unit is a logical unit Discover found.
type Unit struct {
	Address
	Inquiry Inquiry
}

// Scan limits: Linux's storvsc sets max_channel 7, max_id 2 for SCSI.
const (
	MaxPath   = 7
	MaxTarget = 1
)

// Discover scans the controller as Linux's SCSI midlayer scans storvsc's
// host: a standard INQUIRY to LUN 0 of every path 0..MaxPath and target
// 0..MaxTarget; where a target answers at all (a unit, or qualifier 3),
// REPORT LUNS, then a standard INQUIRY to each LUN it lists. It returns the
// units present (qualifier 0), in address order.
func (c *Controller) Discover(ctx context.Context) ([]Unit, error) {
	var out []Unit
	for path := uint8(0); path <= MaxPath; path++ {
		for target := uint8(0); target <= MaxTarget; target++ {
			a := Address{Path: path, Target: target}
			inq, err := c.Inquiry(ctx, a)
			if err != nil {
				var ce *CommandError
				if errors.As(err, &ce) {
					continue // nothing answers there
				}
				return out, err
			}
			if !inq.Present() && inq.Qualifier != 3 {
				continue
			}
			luns, err := c.ReportLUNs(ctx, a)
			if err != nil {
				return out, err
			}
			for _, l := range luns {
				if l > 0xFF {
					continue // beyond the vmscsi_request's 8-bit LUN
				}
				la := Address{Path: path, Target: target, LUN: uint8(l)}
				li := inq
				if l != 0 {
					if li, err = c.Inquiry(ctx, la); err != nil {
						return out, err
					}
				}
				if li.Present() {
					out = append(out, Unit{Address: la, Inquiry: li})
				}
			}
		}
	}
	return out, nil
}

// Operation codes the package builds CDBs for (SPC-4, SBC-3).
const (
	OpTestUnitReady      = 0x00
	OpInquiry            = 0x12
	OpReadCapacity10     = 0x25
	OpRead10             = 0x28
	OpWrite10            = 0x2A
	OpSynchronizeCache10 = 0x35
	OpRead16             = 0x88
	OpWrite16            = 0x8A
	OpServiceActionIn16  = 0x9E
	OpReportLUNs         = 0xA0

	saReadCapacity16 = 0x10
)

var opNames = map[uint8]string{
	OpTestUnitReady: "TEST UNIT READY", OpInquiry: "INQUIRY", OpReadCapacity10: "READ CAPACITY(10)",
	OpRead10: "READ(10)", OpWrite10: "WRITE(10)", OpSynchronizeCache10: "SYNCHRONIZE CACHE(10)",
	OpRead16: "READ(16)", OpWrite16: "WRITE(16)", OpServiceActionIn16: "SERVICE ACTION IN(16)",
	OpReportLUNs: "REPORT LUNS",
}

func opName(op uint8) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("opcode %#02x", op)
}

// CDBTestUnitReady is TEST UNIT READY.
func CDBTestUnitReady() []byte { return make([]byte, 6) }

// CDBInquiry is INQUIRY: standard data (evpd false, page 0) or VPD page
// page, at most alloc bytes.
func CDBInquiry(evpd bool, page uint8, alloc uint16) []byte {
	b := []byte{OpInquiry, 0, page, 0, 0, 0}
	if evpd {
		b[1] = 1
	}
	binary.BigEndian.PutUint16(b[3:], alloc)
	return b
}

// CDBReadCapacity10 is READ CAPACITY(10).
func CDBReadCapacity10() []byte {
	b := make([]byte, 10)
	b[0] = OpReadCapacity10
	return b
}

// CDBReadCapacity16 is READ CAPACITY(16) (SERVICE ACTION IN(16), service
// action 0x10), at most alloc bytes.
func CDBReadCapacity16(alloc uint32) []byte {
	b := make([]byte, 16)
	b[0], b[1] = OpServiceActionIn16, saReadCapacity16
	binary.BigEndian.PutUint32(b[10:], alloc)
	return b
}

func cdb10(op uint8, lba uint32, blocks uint16) []byte {
	b := make([]byte, 10)
	b[0] = op
	binary.BigEndian.PutUint32(b[2:], lba)
	binary.BigEndian.PutUint16(b[7:], blocks)
	return b
}

func cdb16(op uint8, lba uint64, blocks uint32) []byte {
	b := make([]byte, 16)
	b[0] = op
	binary.BigEndian.PutUint64(b[2:], lba)
	binary.BigEndian.PutUint32(b[10:], blocks)
	return b
}

// CDBRead10 is READ(10).
func CDBRead10(lba uint32, blocks uint16) []byte { return cdb10(OpRead10, lba, blocks) }

// CDBWrite10 is WRITE(10).
func CDBWrite10(lba uint32, blocks uint16) []byte { return cdb10(OpWrite10, lba, blocks) }

// CDBRead16 is READ(16).
func CDBRead16(lba uint64, blocks uint32) []byte { return cdb16(OpRead16, lba, blocks) }

// CDBWrite16 is WRITE(16).
func CDBWrite16(lba uint64, blocks uint32) []byte { return cdb16(OpWrite16, lba, blocks) }

// CDBSynchronizeCache10 is SYNCHRONIZE CACHE(10) of blocks blocks at lba
// (0 blocks: to the end of the unit).
func CDBSynchronizeCache10(lba uint32, blocks uint16) []byte {
	return cdb10(OpSynchronizeCache10, lba, blocks)
}

// CDBReportLUNs is REPORT LUNS with SELECT REPORT sel, at most alloc
// bytes.
func CDBReportLUNs(sel uint8, alloc uint32) []byte {
	b := make([]byte, 12)
	b[0], b[2] = OpReportLUNs, sel
	binary.BigEndian.PutUint32(b[6:], alloc)
	return b
}
