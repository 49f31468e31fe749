package client_test

import (
	"context"
	"testing"

	"gohv/vmbus/client"
	"gohv/vmbus/proto"
)

// FuzzDeliverMessage feeds host messages to a connected client with an
// open channel: it must never panic, and whatever it accepts or drops,
// the channel it has open still works.
func FuzzDeliverMessage(f *testing.F) {
	for _, m := range []proto.Message{
		testOffer(9), proto.RescindChannelOffer{ChildRelID: 9},
		proto.AllOffersDelivered{}, proto.OpenChannelResult{ChildRelID: 2, OpenID: 2},
		proto.GPADLCreated{ChildRelID: 2, GPADL: 0xe1e10}, proto.GPADLTorndown{GPADL: 0xe1e10},
		proto.VersionResponse{VersionSupported: true, MessageConnectionID: 1}, proto.UnloadResponse{},
		proto.ModifyChannelResponse{ChildRelID: 1}, proto.TLConnectResult{},
	} {
		f.Add(must(proto.Marshal(m)))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 241))

	h := newFakeHost(f)
	c := client.New(h, h.ram, client.Config{})
	connect(f, h, c, testOffer(1))
	ch, hc := open(f, h, c, c.Offers()[0], 2, 2, nil)
	defer hc.close(h)
	// Whatever the client posts in reaction (RELID_RELEASED) is taken.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case <-h.msgs:
			case <-ctx.Done():
				return
			}
		}
	}()
	buf := make([]byte, 4096)
	f.Fuzz(func(t *testing.T, payload []byte) {
		err := c.DeliverMessage(payload)
		if _, perr := proto.ParseChannelMessage(payload); perr != nil && err == nil {
			t.Fatalf("accepted a message proto refuses: %v", perr)
		}
		select {
		case <-ch.Rescinded():
			return // the fuzzer found relid 1's rescind
		default:
		}
		if err := ch.SendInband(ctx, 0, 1, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if p, err := ch.Receive(ctx, buf); err != nil || p.TransactionID != 1 {
			t.Fatalf("echo after %x: %v", payload, err)
		}
	})
}
