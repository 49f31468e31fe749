package storvsc_test

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"

	"gohv/root/storvsp"
	"gohv/root/storvsp/protocol"
	"gohv/root/storvsp/scsi"
	"gohv/root/storvsp/storvsc"
	"gohv/vmbus/server"
)

// The host is untrusted too: these tests put a host between the real VSP
// and the client that spoils the VSP's completions, and check that the
// client fails the one request and goes on.

// spoiler is a controller whose EXECUTE_SRB completions pass through
// spoil once mode is set.
type spoiler struct {
	controller
	mode atomic.Int32
}

const (
	spoilNone = iota
	spoilInband
	spoilLong
	spoilShort
	spoilOperation
	spoilOverrun
	spoilStrayID
)

func (d *spoiler) Open(ch *server.Channel) (server.Handler, error) {
	h := &spoiledChannel{vspChannel: vspChannel{d: &d.controller, ch: ch}, mode: &d.mode}
	v, err := storvsp.New(h, storvsp.Config{LUNs: d.luns})
	if err != nil {
		return nil, err
	}
	h.vsp = v
	return h, nil
}

type spoiledChannel struct {
	vspChannel
	mode *atomic.Int32
}

func (h *spoiledChannel) Send(packet []byte, tid uint64) error {
	p := append([]byte(nil), packet...)
	switch h.mode.Load() {
	case spoilInband:
		return h.ch.SendInband(0, tid, p)
	case spoilLong:
		return h.ch.SendCompletion(tid, append(p, make([]byte, 8)...))
	case spoilShort:
		return h.ch.SendCompletion(tid, p[:56])
	case spoilOperation:
		binary.LittleEndian.PutUint32(p, uint32(protocol.OpExecuteSRB))
	case spoilOverrun:
		binary.LittleEndian.PutUint32(p[24:], 1<<20) // data_transfer_length
	case spoilStrayID:
		if err := h.ch.SendCompletion(tid+1000, p); err != nil {
			return err
		}
	}
	return h.ch.SendCompletion(tid, p)
}

func TestBadCompletions(t *testing.T) {
	d := &spoiler{controller: controller{instance: instance(0)}}
	d.luns = map[storvsp.Address]*scsi.LogicalUnit{{}: unit(t, patternedDisk(t, 64, false), scsi.Options{})}
	p := newPartition(t, 2048)
	d.mem = p.l.RAM
	if _, err := p.l.Server.AddDevice(d); err != nil {
		t.Fatal(err)
	}
	c := p.open(t, 0, storvsc.Config{})
	ctx := testContext(t)
	buf := buffer(t, c, 4096)
	for _, tc := range []struct {
		name string
		mode int32
	}{
		{"in-band instead of a completion", spoilInband},
		{"72-byte vstor_packet (Linux would lose its ring)", spoilLong},
		{"56-byte vstor_packet (Linux drops it)", spoilShort},
		{"operation other than COMPLETE_IO", spoilOperation},
		{"more data than the buffer", spoilOverrun},
	} {
		d.mode.Store(tc.mode)
		before := c.Stats().BadCompletions
		if err := c.Read(ctx, lun0, 0, 8, buf); !errors.Is(err, storvsc.ErrBadCompletion) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if got := c.Stats().BadCompletions; got != before+1 {
			t.Errorf("%s: %d bad completions counted", tc.name, got-before)
		}
		d.mode.Store(spoilNone)
		if err := c.Read(ctx, lun0, 0, 8, buf); err != nil {
			t.Fatalf("after %s: %v", tc.name, err)
		}
	}
	// A completion for no request in flight is dropped; the real one
	// still completes its request.
	d.mode.Store(spoilStrayID)
	dropped := c.Stats().Dropped
	if err := c.Read(ctx, lun0, 0, 8, buf); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Dropped != dropped+1 {
		t.Fatalf("stray completion: dropped %d → %d", dropped, c.Stats().Dropped)
	}
}
