package ring

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"gohv/vmbus/proto"
)

// stressPackets is how many packets each stress run moves.
func stressPackets(t *testing.T) int {
	switch {
	case testing.Short():
		return 100_000
	case raceEnabled:
		return 2_000_000
	}
	return 3_000_000
}

// fillPayload makes packet seq's payload: a CRC-32 of the rest, then
// bytes that depend on seq and position.
func fillPayload(p []byte, seq uint64) {
	if len(p) < 4 {
		return
	}
	for i := 4; i < len(p); i++ {
		p[i] = byte(seq*31 + uint64(i)*7)
	}
	binary.LittleEndian.PutUint32(p, crc32.ChecksumIEEE(p[4:]))
}

// checkPayload checks a received payload (with its padding) against
// packet seq of length n.
func checkPayload(p []byte, seq uint64, n int) bool {
	if len(p) < n || len(p)-n >= 8 {
		return false
	}
	for _, b := range p[n:] {
		if b != 0 {
			return false
		}
	}
	if n < 4 {
		return true
	}
	if binary.LittleEndian.Uint32(p) != crc32.ChecksumIEEE(p[4:n]) {
		return false
	}
	return n == 4 || p[n-1] == byte(seq*31+uint64(n-1)*7)
}

// payloadSize picks a packet's payload size: mostly small, some up to
// the largest the ring takes, so that the ring fills and wraps often.
func payloadSize(rng *rand.Rand, max int) int {
	switch rng.IntN(16) {
	case 0:
		return rng.IntN(max + 1)
	case 1, 2, 3:
		return rng.IntN(min(max, 4096) + 1)
	}
	return rng.IntN(min(max, 256) + 1)
}

// stress moves count packets of random sizes through p from one
// goroutine to another. The producer waits only for the consumer's
// pending-send-size signal, the consumer only for the producer's data
// signal, each with a timeout: a lost wakeup fails the test. Every packet
// arrives once, in order, with its length, transaction ID and checksum.
func stress(t *testing.T, p *Pair, count int, drain bool) {
	max := p.Sender.MaxPacketSize() - proto.DescriptorSize
	p.Timeout = 20 * time.Second
	var wg sync.WaitGroup
	var sendErr error
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		hdr := make([]byte, 0, proto.DescriptorSize)
		payload := make([]byte, max)
		for seq := range uint64(count) {
			n := payloadSize(rng, max)
			fillPayload(payload[:n], seq)
			h, err := proto.AppendInbandHeader(hdr[:0], 0, seq, n)
			if err == nil {
				err = p.Send(h, payload[:n])
			}
			if err != nil {
				sendErr = err
				return
			}
		}
	})
	rng := rand.New(rand.NewPCG(1, 2)) // the producer's sizes, in step
	buf := make([]byte, max+proto.DescriptorSize+8)
	seq := uint64(0)
	check := func(pkt []byte) error {
		n := payloadSize(rng, max)
		pk, err := proto.ParsePacket(pkt)
		if err != nil {
			t.Fatalf("packet %d: %v", seq, err)
		}
		if pk.TransactionID != seq || !checkPayload(pk.Payload, seq, n) {
			t.Fatalf("packet %d (%d bytes): got transaction %d, %d bytes, payload ok %v",
				seq, n, pk.TransactionID, len(pk.Payload), checkPayload(pk.Payload, seq, n))
		}
		seq++
		return nil
	}
	timer := time.NewTimer(time.Hour)
	for int(seq) < count {
		if drain {
			if err := p.Receiver.Drain(buf, check); err != nil {
				t.Fatalf("packet %d: %v", seq, err)
			}
			if int(seq) == count {
				break
			}
			timer.Reset(p.Timeout)
			select {
			case <-p.Readable:
			case <-timer.C:
				t.Fatalf("packet %d: no data signal in %v (lost wakeup)", seq, p.Timeout)
			}
			timer.Stop()
			continue
		}
		n, err := p.Receive(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", seq, err)
		}
		check(buf[:n])
	}
	wg.Wait()
	if sendErr != nil {
		t.Fatalf("producer: %v", sendErr)
	}
	if _, err := p.Receiver.Peek(); err != ErrEmpty {
		t.Fatalf("after the last packet: %v", err)
	}
}

func TestStressFlat(t *testing.T) {
	for _, drain := range []bool{false, true} {
		p, err := NewPair(4 * PageSize)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		n := stressPackets(t) / 2
		stress(t, p, n, drain)
		t.Logf("drain %v: %d packets in %v", drain, n, time.Since(start))
	}
}

// TestStressPages runs the stress over separately allocated pages in
// shuffled order, as a GPADL maps them.
func TestStressPages(t *testing.T) {
	const pages = 1 + 8
	backing := make([]byte, pages*PageSize)
	list := make([][]byte, pages)
	order := rand.New(rand.NewPCG(3, 4)).Perm(pages)
	for i, j := range order {
		list[i] = backing[j*PageSize : (j+1)*PageSize]
	}
	m, err := NewPageMemory(list)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPairOn(m)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n := stressPackets(t) / 2
	stress(t, p, n, false)
	t.Logf("%d packets in %v", n, time.Since(start))
}
