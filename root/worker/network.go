package worker

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/google/uuid"

	"gohv/root/netvsp"
	"gohv/vmbus/proto"
	"gohv/vmbus/server"
)

// NIC is one synthetic network adapter: its address and the switch port
// the guest's frames go to. The frames the switch forwards to the NIC
// reach the guest through the worker's NICEndpoint for it.
type NIC struct {
	MAC  [6]byte
	MTU  int // 0: netvsp.DefaultMTU
	Port netvsp.Port
}

// nicDevice is one NIC's VMBus device: every open of its channel gets a
// fresh network VSP; the VSP of the current open receives the switch's
// frames.
type nicDevice struct {
	instance proto.GUID
	nic      NIC
	mem      netvsp.GuestMemory
	log      *slog.Logger
	vsp      atomic.Pointer[netvsp.VSP] // the open channel's, nil while closed
	// dropped counts frames the switch forwarded while the channel was
	// closed (before the guest's driver came, between two opens).
	dropped atomic.Uint64
}

func (d *nicDevice) Offer() server.Offer {
	return server.Offer{InterfaceType: proto.NICGUID, InterfaceInstance: d.instance}
}

func (d *nicDevice) Open(ch *server.Channel) (server.Handler, error) {
	v, err := netvsp.New(nicChannel{ch}, d.mem, netvsp.Config{MAC: d.nic.MAC, MTU: d.nic.MTU, Port: d.nic.Port, Log: d.log})
	if err != nil {
		return nil, err
	}
	d.vsp.Store(v)
	return &nicHandler{d: d, v: v, ch: ch}, nil
}

// Deliver gives the guest a frame the switch forwarded: the switch
// port's goroutine.
func (d *nicDevice) Deliver(frame []byte) {
	if v := d.vsp.Load(); v != nil {
		v.Deliver(frame)
		return
	}
	d.dropped.Add(1)
}

// nicHandler serves one open of a NIC's channel.
type nicHandler struct {
	d  *nicDevice
	v  *netvsp.VSP
	ch *server.Channel
}

func (h *nicHandler) Packet(p *proto.Packet) error { return h.v.Packet(p) }

func (h *nicHandler) Close(err error) {
	h.d.vsp.CompareAndSwap(h.v, nil)
	h.v.Close(err)
	s := h.v.Stats()
	toGuest, fromGuest := h.ch.SignalCounts()
	h.d.log.Info("netvsp: channel closed", "tx_frames", s.TxFrames, "rx_frames", s.RxFrames,
		"tx_dropped", s.TxDropped, "rx_dropped", s.RxDropped, "tx_malformed", s.TxMalformed,
		"signals_to_guest", toGuest, "signals_from_guest", fromGuest)
}

// nicChannel is a server channel as the VSP uses it: GPADLs of whole
// pages only, since the VSP indexes its buffers by byte.
type nicChannel struct{ *server.Channel }

func (c nicChannel) BorrowGPADL(handle uint32) ([]*[netvsp.PageSize]byte, error) {
	l, err := c.Channel.BorrowGPADL(handle)
	if err != nil {
		return nil, err
	}
	if !l.WholePages {
		c.Channel.ReturnGPADL(handle)
		return nil, fmt.Errorf("worker: gpadl %d is not of whole pages", handle)
	}
	return l.Pages, nil
}

// addNICs offers one network channel per NIC, in order.
func (w *Worker) addNICs(nics []NIC) error {
	for i, n := range nics {
		dev := &nicDevice{
			instance: proto.GUIDFromUUID(uuid.NewSHA1(instanceNamespace, fmt.Appendf(nil, "%s/nic/%d", w.p.Name, i))),
			nic:      n,
			mem:      w.p.Mem,
			log:      w.log.With("nic", i),
		}
		relid, err := w.srv.AddDevice(dev)
		if err != nil {
			return fmt.Errorf("NIC %d: %w", i, err)
		}
		w.nics = append(w.nics, dev)
		w.log.Debug("vmbus: NIC offered", "nic", i, "relid", relid)
	}
	return nil
}

// NICEndpoint is where the switch delivers NIC i's frames: its Deliver
// hands a frame to the guest's current channel, or drops it while the
// channel is closed. nil for a NIC the partition does not have.
func (w *Worker) NICEndpoint(i int) interface{ Deliver(frame []byte) } {
	if i < 0 || i >= len(w.nics) {
		return nil
	}
	return w.nics[i]
}
