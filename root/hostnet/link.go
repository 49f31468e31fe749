package hostnet

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// minFrame is Ethernet's shortest frame without its FCS (IEEE 802.3
// 3.2.8, Linux's ETH_ZLEN): shorter outbound frames are zero-padded to it.
const minFrame = 60

// link is the stack's link endpoint over the switch port: a LinkEndpoint
// without a link header of its own, wrapped by gVisor's ethernet endpoint,
// which adds and strips the Ethernet header (so with it the stack resolves
// neighbours with ARP). Outbound packets are flattened into one frame and
// handed to the Uplink; inbound frames are copied into a packet buffer and
// dispatched on the caller's goroutine.
//
// Concurrency: WritePackets runs on any stack goroutine and Deliver on the
// port's; the uplink is an atomic pointer, the dispatcher is read under
// dmu (and used after releasing it), and the frame scratch buffer is
// guarded by wmu.
type link struct {
	mac   tcpip.LinkAddress
	mtu   atomic.Uint32
	stats *counters

	dmu        sync.RWMutex
	dispatcher stack.NetworkDispatcher // nil before Attach and after Close
	onClose    func()

	up atomic.Pointer[uplinkRef] // nil until Stack.Attach

	wmu     sync.Mutex
	scratch []byte // one frame, reused: Uplink.Send copies it
}

type uplinkRef struct{ up Uplink }

// counters are the link's frame counters (see Stats).
type counters struct {
	framesIn, bytesIn, droppedIn    atomic.Uint64
	framesOut, bytesOut, droppedOut atomic.Uint64
}

var _ stack.LinkEndpoint = (*link)(nil)

// MTU implements stack.NetworkLinkEndpoint.
func (l *link) MTU() uint32 { return l.mtu.Load() }

// SetMTU implements stack.NetworkLinkEndpoint.
func (l *link) SetMTU(mtu uint32) { l.mtu.Store(mtu) }

// MaxHeaderLength implements stack.NetworkLinkEndpoint: the Ethernet
// header is the wrapper's.
func (*link) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint.
func (l *link) LinkAddress() tcpip.LinkAddress { return l.mac }

// SetLinkAddress implements stack.NetworkLinkEndpoint; the MAC is the
// port's and fixed by Config, so this does nothing.
func (*link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint: no offloads, so the
// stack computes and verifies every checksum itself (the frames come from
// guests); the wrapper adds ResolutionRequired.
func (*link) Capabilities() stack.LinkEndpointCapabilities { return stack.CapabilityNone }

// Attach implements stack.NetworkLinkEndpoint.
func (l *link) Attach(d stack.NetworkDispatcher) {
	l.dmu.Lock()
	l.dispatcher = d
	l.dmu.Unlock()
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (l *link) IsAttached() bool {
	l.dmu.RLock()
	defer l.dmu.RUnlock()
	return l.dispatcher != nil
}

// Wait implements stack.NetworkLinkEndpoint: the link owns no goroutine.
func (*link) Wait() {}

// ARPHardwareType implements stack.NetworkLinkEndpoint; the ethernet
// wrapper reports ARPHardwareEther.
func (*link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint: no header of its own.
func (*link) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint: no header of its own.
func (*link) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.NetworkLinkEndpoint.
func (l *link) Close() {
	l.dmu.Lock()
	f := l.onClose
	l.onClose = nil
	l.dispatcher = nil
	l.dmu.Unlock()
	if f != nil {
		f()
	}
}

// SetOnCloseAction implements stack.NetworkLinkEndpoint.
func (l *link) SetOnCloseAction(f func()) {
	l.dmu.Lock()
	l.onClose = f
	l.dmu.Unlock()
}

// WritePackets implements stack.LinkWriter: each packet (Ethernet header
// already pushed by the wrapper) becomes one frame sent on the uplink. A
// frame the switch refuses, or sent before Attach, is counted as dropped
// and reported written: to the stack it is a loss on the wire, which TCP
// repairs. The caller keeps its references to pkts.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	ref := l.up.Load()
	n := 0
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for _, pkt := range pkts.AsSlice() {
		n++
		if ref == nil {
			l.stats.droppedOut.Add(1)
			continue
		}
		frame := l.scratch[:0]
		for _, s := range pkt.AsSlices() {
			frame = append(frame, s...)
		}
		for len(frame) < minFrame {
			frame = append(frame, 0)
		}
		l.scratch = frame
		if !ref.up.Send(frame) {
			l.stats.droppedOut.Add(1)
			continue
		}
		l.stats.framesOut.Add(1)
		l.stats.bytesOut.Add(uint64(len(frame)))
	}
	return n, nil
}

// deliver hands one inbound Ethernet frame (not retained) to the stack.
// Frames shorter than an Ethernet header, longer than the MTU allows, or
// arriving while no dispatcher is attached are dropped and counted.
func (l *link) deliver(frame []byte) {
	l.stats.framesIn.Add(1)
	l.stats.bytesIn.Add(uint64(len(frame)))
	if len(frame) < header.EthernetMinimumSize || len(frame) > header.EthernetMinimumSize+int(l.MTU()) {
		l.stats.droppedIn.Add(1)
		return
	}
	// Not under dmu: the stack detaches (Attach(nil)) holding its own
	// lock, which delivery may need. A NIC being removed drops the packet.
	l.dmu.RLock()
	d := l.dispatcher
	l.dmu.RUnlock()
	if d == nil {
		l.stats.droppedIn.Add(1)
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	defer pkt.DecRef()
	// The protocol is the ethernet wrapper's to read from the header.
	d.DeliverNetworkPacket(0, pkt)
}
