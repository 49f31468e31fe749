package vswitch

// Frame bounds. A frame is what a synthetic NIC hands its VSP and what the
// root's stack writes: destination address, source address, EtherType (or
// an 802.1Q tag and then the EtherType) and payload, without preamble and
// without frame check sequence — neither netvsc nor the root's stack adds
// or checks an FCS, so the switch never sees one.
const (
	// HeaderSize is the Ethernet II header: destination, source, EtherType
	// (IEEE 802.3-2018 3.1.1).
	HeaderSize = 14
	// TagSize is one IEEE 802.1Q tag (TPID 0x8100 and the TCI).
	TagSize = 4
	// JumboPayload is the largest payload a port carries: the 9216-byte
	// jumbo size common to data-centre switches, above Linux netvsc's
	// usual 9000-byte jumbo MTU.
	JumboPayload = 9216

	// MinFrameSize is the shortest frame a port accepts: a header. The
	// switch does not pad to 60 bytes; it forwards what it was given.
	MinFrameSize = HeaderSize
	// MaxFrameSize is the longest frame a port accepts: a header, one
	// 802.1Q tag and a jumbo payload, 9234 bytes.
	MaxFrameSize = HeaderSize + TagSize + JumboPayload

	// standardBufSize is the smaller of the two sizes a queue slot's
	// buffer takes: a 1500-byte payload with a header and a tag (1518)
	// rounded up. Slots grow to MaxFrameSize only when a longer frame
	// passes through them.
	standardBufSize = 1536
)

// dst and src read a frame's addresses; the frame is at least
// MinFrameSize long (Send checked).
func dst(frame []byte) MAC { return MAC(frame[0:6]) }
func src(frame []byte) MAC { return MAC(frame[6:12]) }
