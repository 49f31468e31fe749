package protocol

import (
	"encoding/binary"
	"time"
)

// Versions (drivers/hv/hv_util.c, include/uapi/linux/hyperv.h; OpenVMM
// hyperv_ic_protocol names the same numbers).
var (
	Framework1 = Version{1, 0} // UTIL_WS2K8_FW_VERSION
	Framework3 = Version{3, 0} // UTIL_FW_VERSION

	Shutdown1   = Version{1, 0} // SD_VERSION_1
	Shutdown3   = Version{3, 0} // SD_VERSION
	Shutdown3_1 = Version{3, 1} // SD_VERSION_3_1
	Shutdown3_2 = Version{3, 2} // SD_VERSION_3_2

	Heartbeat1 = Version{1, 0} // HB_VERSION_1
	Heartbeat3 = Version{3, 0} // HB_VERSION

	TimeSync1 = Version{1, 0} // TS_VERSION_1
	TimeSync3 = Version{3, 0} // TS_VERSION_3
	TimeSync4 = Version{4, 0} // TS_VERSION: the body becomes ictimesync_ref_data
)

// The versions Linux 6.1's hv_utils accepts, in its order of preference
// (fw_versions, sd_versions, hb_versions, ts_versions in hv_util.c). It
// answers NEGOTIATE with the first of its list that the host offered,
// whatever order the host offered them in.
var (
	LinuxFrameworkVersions = [...]Version{Framework3, Framework1}
	LinuxShutdownVersions  = [...]Version{Shutdown3_2, Shutdown3_1, Shutdown3, Shutdown1}
	LinuxHeartbeatVersions = [...]Version{Heartbeat3, Heartbeat1}
	LinuxTimeSyncVersions  = [...]Version{TimeSync4, TimeSync3, TimeSync1}
)

// Body sizes. Where Linux's packed struct is shorter than what Hyper-V and
// OpenVMM put on the wire, both are named: the host sends the wire size,
// and the Linux size is the least a Parse function accepts (Linux checks
// recvlen against it).
const (
	VersionSize     = 4   // sizeof(struct ic_version)
	NegotiateSize   = 8   // sizeof(struct icmsg_negotiate) without icversion_data[]
	MaxVersionCount = 100 // IC_VERSION_NEGOTIATION_MAX_VER_COUNT, per count
	// NegotiateResponseSize is the icmsgsize Linux writes into every
	// NEGOTIATE answer (0x10): the counts and two versions.
	NegotiateResponseSize = NegotiateSize + 2*VersionSize

	ShutdownSize       = 2060 // sizeof(struct shutdown_msg_data)
	DisplayMessageSize = 2048 // shutdown_msg_data.display_message

	HeartbeatSize    = 40 // sizeof(struct heartbeat_msg_data): seq_num, reserved[8]
	HeartbeatMinSize = 8  // what Linux reads ("the host may not fill [reserved] up entirely")

	TimeSyncSize         = 28 // ictimesync_data as OpenVMM sends it: 25 bytes and reserved[3]
	TimeSyncLinuxSize    = 25 // sizeof(struct ictimesync_data), packed
	TimeSyncRefSize      = 24 // ictimesync_ref_data as OpenVMM sends it: reserved[5]
	TimeSyncRefLinuxSize = 22 // sizeof(struct ictimesync_ref_data), packed: reserved[3]
)

// Body field offsets (include/linux/hyperv.h).
const (
	offFrameVerCnt = 0 // icmsg_negotiate.icframe_vercnt
	offMsgVerCnt   = 2 // icmsg_negotiate.icmsg_vercnt
	offNegReserved = 4
	offVersionData = 8 // icversion_data[]

	offReasonCode     = 0 // shutdown_msg_data.reason_code
	offTimeoutSeconds = 4
	offShutdownFlags  = 8
	offDisplayMessage = 12

	offSeqNum = 0 // heartbeat_msg_data.seq_num

	offParentTime    = 0 // both time-sync layouts
	offChildTime     = 8
	offRoundTripTime = 16
	offTSFlags       = 24

	offVMReferenceTime = 8 // ictimesync_ref_data
	offRefFlags        = 16
	offLeapFlags       = 17
	offStratum         = 18
)

// NegotiateMsg is struct icmsg_negotiate with its version array: the
// framework versions first, then the service's message versions.
type NegotiateMsg struct {
	Framework []Version
	Message   []Version
}

// Size is the body's length: 8 + 4 per version.
func (n NegotiateMsg) Size() int {
	return NegotiateSize + VersionSize*(len(n.Framework)+len(n.Message))
}

// Append appends the body. It fails if a list is longer than
// MaxVersionCount (Linux refuses such a message).
func (n NegotiateMsg) Append(dst []byte) ([]byte, error) {
	if len(n.Framework) > MaxVersionCount || len(n.Message) > MaxVersionCount {
		return dst, malformed("negotiate: %d framework and %d message versions, at most %d each",
			len(n.Framework), len(n.Message), MaxVersionCount)
	}
	le := binary.LittleEndian
	dst = le.AppendUint16(dst, uint16(len(n.Framework)))
	dst = le.AppendUint16(dst, uint16(len(n.Message)))
	dst = le.AppendUint32(dst, 0)
	for _, l := range [2][]Version{n.Framework, n.Message} {
		for _, v := range l {
			dst = le.AppendUint16(dst, v.Major)
			dst = le.AppendUint16(dst, v.Minor)
		}
	}
	return dst, nil
}

// ParseNegotiate decodes a NEGOTIATE body with any counts up to
// MaxVersionCount whose versions are all present. It allocates one
// Version per four bytes of body at most; the host end, which needs only
// the answer, uses ParseNegotiateResponse, which allocates nothing.
func ParseNegotiate(body []byte) (NegotiateMsg, error) {
	nf, nm, err := versionCounts(body)
	if err != nil {
		return NegotiateMsg{}, err
	}
	n := NegotiateMsg{Framework: make([]Version, nf), Message: make([]Version, nm)}
	for i := range n.Framework {
		n.Framework[i] = versionAt(body, i)
	}
	for i := range n.Message {
		n.Message[i] = versionAt(body, nf+i)
	}
	return n, nil
}

func versionCounts(body []byte) (nf, nm int, err error) {
	if len(body) < NegotiateSize {
		return 0, 0, malformed("negotiate: %d bytes, need %d", len(body), NegotiateSize)
	}
	le := binary.LittleEndian
	nf, nm = int(le.Uint16(body[offFrameVerCnt:])), int(le.Uint16(body[offMsgVerCnt:]))
	if nf > MaxVersionCount || nm > MaxVersionCount {
		return 0, 0, malformed("negotiate: %d framework and %d message versions, at most %d each", nf, nm, MaxVersionCount)
	}
	if need := NegotiateSize + VersionSize*(nf+nm); len(body) < need {
		return 0, 0, malformed("negotiate: %d+%d versions need %d bytes, have %d", nf, nm, need, len(body))
	}
	return nf, nm, nil
}

func versionAt(body []byte, i int) Version {
	off := offVersionData + VersionSize*i
	return Version{binary.LittleEndian.Uint16(body[off:]), binary.LittleEndian.Uint16(body[off+2:])}
}

// NegotiateResult is a guest's answer to NEGOTIATE, as Linux's
// vmbus_prep_negotiate_resp writes it: counts 1 and 1 with the chosen
// framework and message versions in icversion_data[0] and [1], or counts
// 0 and 0 when it shares no version with the host (the two version slots
// then hold leftovers and mean nothing).
type NegotiateResult struct {
	OK        bool    // counts 1/1: a common version was found
	Framework Version // the chosen framework version, when OK
	Message   Version // the chosen service version, when OK
}

// ParseNegotiateResponse decodes a guest's NEGOTIATE answer. Counts other
// than 1/1 and 0/0, or a 1/1 answer without its two versions, are
// malformed.
func ParseNegotiateResponse(body []byte) (NegotiateResult, error) {
	nf, nm, err := versionCounts(body)
	if err != nil {
		return NegotiateResult{}, err
	}
	switch {
	case nf == 0 && nm == 0:
		return NegotiateResult{}, nil
	case nf == 1 && nm == 1:
		return NegotiateResult{OK: true, Framework: versionAt(body, 0), Message: versionAt(body, 1)}, nil
	}
	return NegotiateResult{}, malformed("negotiate answer with %d framework and %d message versions, want 1 and 1 (or 0 and 0)", nf, nm)
}

// ShutdownFlags is shutdown_msg_data.flags: 0 shut down, 2 restart, 4
// hibernate, each possibly with 1 (force) — hv_util.c's comment; Linux
// always acts as if forced, answers HV_S_OK for 0-3 (and 4-5 when it can
// hibernate) and HV_E_FAIL for anything else.
type ShutdownFlags uint32

// The flags (OpenVMM hyperv_ic_protocol ShutdownFlags bits).
const (
	ShutdownForce     ShutdownFlags = 1
	ShutdownRestart   ShutdownFlags = 2
	ShutdownHibernate ShutdownFlags = 4
)

// ShutdownReasonPlanned is SHTDN_REASON_FLAG_PLANNED (Windows SDK), the
// reason_code OpenVMM sends; Linux ignores the field.
const ShutdownReasonPlanned uint32 = 0x80000000

// ShutdownMsg is struct shutdown_msg_data (MsgShutdown's body).
type ShutdownMsg struct {
	ReasonCode     uint32
	TimeoutSeconds uint32
	Flags          ShutdownFlags
	DisplayMessage [DisplayMessageSize]byte // display_message; Linux ignores it
}

// Append appends the ShutdownSize-byte body.
func (s *ShutdownMsg) Append(dst []byte) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, s.ReasonCode)
	dst = le.AppendUint32(dst, s.TimeoutSeconds)
	dst = le.AppendUint32(dst, uint32(s.Flags))
	return append(dst, s.DisplayMessage[:]...)
}

// ParseShutdown decodes a shutdown body of at least ShutdownSize bytes
// (Linux's check).
func ParseShutdown(body []byte) (ShutdownMsg, error) {
	var s ShutdownMsg
	if len(body) < ShutdownSize {
		return s, malformed("shutdown: %d bytes, need %d", len(body), ShutdownSize)
	}
	le := binary.LittleEndian
	s.ReasonCode = le.Uint32(body[offReasonCode:])
	s.TimeoutSeconds = le.Uint32(body[offTimeoutSeconds:])
	s.Flags = ShutdownFlags(le.Uint32(body[offShutdownFlags:]))
	copy(s.DisplayMessage[:], body[offDisplayMessage:])
	return s, nil
}

// HeartbeatMsg is struct heartbeat_msg_data (MsgHeartbeat's body). Linux
// answers a request with SeqNum+1.
type HeartbeatMsg struct {
	SeqNum uint64
}

// Append appends the HeartbeatSize-byte body, reserved words zero.
func (h HeartbeatMsg) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, h.SeqNum)
	return append(dst, make([]byte, HeartbeatSize-8)...)
}

// ParseHeartbeat decodes a heartbeat body of at least HeartbeatMinSize
// bytes.
func ParseHeartbeat(body []byte) (HeartbeatMsg, error) {
	if len(body) < HeartbeatMinSize {
		return HeartbeatMsg{}, malformed("heartbeat: %d bytes, need %d", len(body), HeartbeatMinSize)
	}
	return HeartbeatMsg{SeqNum: binary.LittleEndian.Uint64(body[offSeqNum:])}, nil
}

// TimeSyncFlags is the time-sync messages' flags byte (ICTIMESYNCFLAG_*).
type TimeSyncFlags uint8

// The flags. Linux sets its clock on Sync (hv_set_host_time, unless the
// sample is over 600 s stale) and only records Sample for its "hyperv"
// PTP clock.
const (
	TimeSyncProbe  TimeSyncFlags = 0 // ICTIMESYNCFLAG_PROBE
	TimeSyncSync   TimeSyncFlags = 1 // ICTIMESYNCFLAG_SYNC: set the clock (after boot, restore)
	TimeSyncSample TimeSyncFlags = 2 // ICTIMESYNCFLAG_SAMPLE: a periodic sample, a hint
)

// TimeSyncMsg is struct ictimesync_data, MsgTimeSync's body for service
// versions before 4.0. Linux reads ParentTime and Flags and takes the
// moment of receipt as the sample's reference time.
type TimeSyncMsg struct {
	ParentTime    uint64 // host UTC, 100 ns units since 1601-01-01 (FileTime)
	ChildTime     uint64 // unused
	RoundTripTime uint64 // unused by Linux
	Flags         TimeSyncFlags
}

// Append appends the TimeSyncSize-byte body.
func (t TimeSyncMsg) Append(dst []byte) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, t.ParentTime)
	dst = le.AppendUint64(dst, t.ChildTime)
	dst = le.AppendUint64(dst, t.RoundTripTime)
	return append(dst, byte(t.Flags), 0, 0, 0)
}

// ParseTimeSync decodes an ictimesync_data body of at least
// TimeSyncLinuxSize bytes.
func ParseTimeSync(body []byte) (TimeSyncMsg, error) {
	if len(body) < TimeSyncLinuxSize {
		return TimeSyncMsg{}, malformed("timesync: %d bytes, need %d", len(body), TimeSyncLinuxSize)
	}
	le := binary.LittleEndian
	return TimeSyncMsg{
		ParentTime:    le.Uint64(body[offParentTime:]),
		ChildTime:     le.Uint64(body[offChildTime:]),
		RoundTripTime: le.Uint64(body[offRoundTripTime:]),
		Flags:         TimeSyncFlags(body[offTSFlags]),
	}, nil
}

// TimeSyncRefMsg is struct ictimesync_ref_data, MsgTimeSync's body from
// service version 4.0: the host's time together with the partition's
// reference time (TIME_REF_COUNT) at the moment the host read it, so the
// guest can add the time the message spent in transit.
type TimeSyncRefMsg struct {
	ParentTime      uint64 // host UTC, 100 ns units since 1601-01-01 (FileTime)
	VMReferenceTime uint64 // the partition's reference time when ParentTime was read
	Flags           TimeSyncFlags
	LeapFlags       int8 // NTP leap indicator; 0
	Stratum         int8 // NTP stratum; 0
}

// Append appends the TimeSyncRefSize-byte body.
func (t TimeSyncRefMsg) Append(dst []byte) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, t.ParentTime)
	dst = le.AppendUint64(dst, t.VMReferenceTime)
	return append(dst, byte(t.Flags), byte(t.LeapFlags), byte(t.Stratum), 0, 0, 0, 0, 0)
}

// ParseTimeSyncRef decodes an ictimesync_ref_data body of at least
// TimeSyncRefLinuxSize bytes.
func ParseTimeSyncRef(body []byte) (TimeSyncRefMsg, error) {
	if len(body) < TimeSyncRefLinuxSize {
		return TimeSyncRefMsg{}, malformed("timesync v4: %d bytes, need %d", len(body), TimeSyncRefLinuxSize)
	}
	le := binary.LittleEndian
	return TimeSyncRefMsg{
		ParentTime:      le.Uint64(body[offParentTime:]),
		VMReferenceTime: le.Uint64(body[offVMReferenceTime:]),
		Flags:           TimeSyncFlags(body[offRefFlags]),
		LeapFlags:       int8(body[offLeapFlags]),
		Stratum:         int8(body[offStratum]),
	}, nil
}

// WindowsEpochDelta is WLTIMEDELTA: 1970-01-01 minus 1601-01-01 in 100 ns
// units.
const WindowsEpochDelta = 116444736000000000

// FileTime is t as the time-sync messages carry it: 100 ns units since
// 1601-01-01 00:00 UTC. Times before 1601 give 0.
func FileTime(t time.Time) uint64 {
	// Split to stay inside int64: UnixNano overflows after 2262.
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	const epochSec = WindowsEpochDelta / 10_000_000
	if sec < -epochSec {
		return 0
	}
	return uint64(sec+epochSec)*10_000_000 + uint64(nsec/100)
}

// TimeFromFileTime is the inverse of FileTime, in UTC.
func TimeFromFileTime(ft uint64) time.Time {
	const epochSec = WindowsEpochDelta / 10_000_000
	return time.Unix(int64(ft/10_000_000)-epochSec, int64(ft%10_000_000)*100).UTC()
}
