package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/google/uuid"

	"gohv/hv"
	"gohv/hv/synic"
	"gohv/hv/tlfs"
	"gohv/root/storvsp"
	"gohv/root/storvsp/scsi"
	"gohv/vmbus/proto"
	"gohv/vmbus/server"
)

// Config is what the worker serves a partition.
type Config struct {
	// Disks are the partition's SCSI disks.
	Disks []Disk
	// NICs are the partition's network adapters, offered after the
	// disks' controllers.
	NICs []NIC
	// Log receives the worker's and its services' events (nil:
	// discarded); the partition's name is added.
	Log *slog.Logger
	// MaxVersion caps the VMBus version (0: the newest gohv speaks).
	MaxVersion proto.Version
}

// Disk is one SCSI disk: a backing store at a controller and LUN.
type Disk struct {
	Name       string // for logs: the image's boot-module name
	Controller int
	LUN        int
	Image      scsi.Disk
}

// Worker serves one partition's VMBus devices.
type Worker struct {
	p      *hv.Partition
	log    *slog.Logger
	srv    *server.Server
	ports  []uint32 // message connections bound on the partition
	cancel context.CancelFunc
	ran    chan struct{}

	shutdown, heartbeat *icDevice
	nics                []*nicDevice
}

// instanceNamespace makes channel instance GUIDs: the same partition
// name and controller get the same GUID on every boot, so the guest's
// device names stay put.
var instanceNamespace = uuid.MustParse("6d1a3a57-6f68-4a76-9a5e-0b3e2f67a001")

// New builds the worker for p: the VMBus server on the partition's ports
// and one storage device per controller the disks use. p must not have
// started.
func New(p *hv.Partition, cfg Config) (*Worker, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("partition", p.Name)
	w := &Worker{p: p, log: log}
	h := &host{p: p}
	w.srv = server.New(h, server.Config{
		MaxVersion: cfg.MaxVersion,
		Log:        log,
		OnPanic:    func(err error) { p.Fail(fmt.Errorf("vmbus: %w", err)) },
	})
	h.srv = w.srv
	for _, conn := range []uint32{proto.MessageConnectionID, proto.MessageConnectionID4} {
		if err := p.Ports().AddMessagePort(conn, messagePort{w.srv}); err != nil {
			w.unbind()
			return nil, fmt.Errorf("worker: partition %s: VMBus message connection %d: %w", p.Name, conn, err)
		}
		w.ports = append(w.ports, conn)
	}
	err := w.addStorage(cfg.Disks)
	if err == nil {
		err = w.addNICs(cfg.NICs)
	}
	if err == nil {
		err = w.addIntegrationServices()
	}
	if err != nil {
		w.srv.Close()
		w.unbind()
		return nil, fmt.Errorf("worker: partition %s: %w", p.Name, err)
	}
	return w, nil
}

// addStorage offers one SCSI controller per controller number the disks
// use, in ascending order.
func (w *Worker) addStorage(disks []Disk) error {
	byController := map[int]map[storvsp.Address]*scsi.LogicalUnit{}
	for _, d := range disks {
		u, err := scsi.NewLogicalUnit(d.Image, scsi.Options{})
		if err != nil {
			return fmt.Errorf("disk %s: %w", d.Name, err)
		}
		if byController[d.Controller] == nil {
			byController[d.Controller] = map[storvsp.Address]*scsi.LogicalUnit{}
		}
		a := storvsp.Address{LUN: uint8(d.LUN)}
		if byController[d.Controller][a] != nil {
			return fmt.Errorf("disk %s: controller %d LUN %d is taken", d.Name, d.Controller, d.LUN)
		}
		byController[d.Controller][a] = u
	}
	controllers := make([]int, 0, len(byController))
	for c := range byController {
		controllers = append(controllers, c)
	}
	slices.Sort(controllers)
	for _, c := range controllers {
		dev := &storageDevice{
			instance: proto.GUIDFromUUID(uuid.NewSHA1(instanceNamespace, fmt.Appendf(nil, "%s/scsi/%d", w.p.Name, c))),
			luns:     byController[c],
			mem:      w.p.Mem,
			log:      w.log.With("controller", c),
			maxXfer:  storvsp.DefaultMaxTransferBytes,
		}
		relid, err := w.srv.AddDevice(dev)
		if err != nil {
			return fmt.Errorf("SCSI controller %d: %w", c, err)
		}
		w.log.Debug("vmbus: SCSI controller offered", "controller", c, "relid", relid, "luns", len(dev.luns))
	}
	return nil
}

// Start runs the VMBus server.
func (w *Worker) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.ran = make(chan struct{})
	go func() {
		defer close(w.ran)
		w.srv.Run(ctx)
	}()
}

// Close stops every channel and unbinds the partition's ports; afterwards
// nothing of the worker touches the partition's memory.
func (w *Worker) Close() {
	if w.cancel != nil {
		w.cancel()
		<-w.ran
	}
	w.srv.Close()
	w.unbind()
}

// Server is the partition's VMBus server.
func (w *Worker) Server() *server.Server { return w.srv }

func (w *Worker) unbind() {
	for _, conn := range w.ports {
		w.p.Ports().Remove(conn)
	}
	w.ports = nil
}

// host is the server's view of the partition.
type host struct {
	p   *hv.Partition
	srv *server.Server
}

func (h *host) vp(i uint32) (*hv.VP, error) {
	if i >= uint32(h.p.VPCount()) {
		return nil, fmt.Errorf("no VP %d", i)
	}
	return h.p.VP(int(i)), nil
}

func (h *host) PostMessage(vp uint32, payload []byte) error {
	v, err := h.vp(vp)
	if err != nil {
		return err
	}
	err = v.SynIC().Post(proto.MessageSINT, proto.SynICMessageType, 0, payload)
	if errors.Is(err, synic.ErrQueueFull) {
		return fmt.Errorf("%w: %w", server.ErrBusy, err)
	}
	return err
}

func (h *host) Signal(vp, relid uint32) error {
	v, err := h.vp(vp)
	if err != nil {
		return err
	}
	_, err = v.SynIC().Signal(proto.MessageSINT, relid)
	return err
}

func (h *host) Page(pfn uint64) (*[proto.PageSize]byte, error) { return h.p.Mem.Page(pfn) }

func (h *host) VPCount() uint32 { return uint32(h.p.VPCount()) }

func (h *host) BindEvent(conn uint32) error {
	return h.p.Ports().AddEventPort(conn, eventPort{h.srv, conn})
}

func (h *host) UnbindEvent(conn uint32) { h.p.Ports().Remove(conn) }

// messagePort takes HvCallPostMessage on the VMBus message connections.
type messagePort struct{ srv *server.Server }

func (m messagePort) Message(vp uint32, typ tlfs.MessageType, payload []byte) tlfs.Status {
	return m.srv.HandleMessage(vp, typ, payload)
}

// eventPort takes HvCallSignalEvent on one channel's connection. Linux
// signals flag 0; the flag carries nothing for a channel.
type eventPort struct {
	srv  *server.Server
	conn uint32
}

func (e eventPort) Event(vp uint32, flag uint16) tlfs.Status { return e.srv.HandleEvent(e.conn) }
