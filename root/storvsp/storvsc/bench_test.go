package storvsc_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gohv/root/storvsp"
	"gohv/root/storvsp/scsi"
	"gohv/root/storvsp/storvsc"
)

// BenchmarkStorage measures the whole storage path in one process: the
// client's EXECUTE_SRB through the 128 KiB ring, the VMBus server's
// channel goroutine, storvsp and the SCSI layer, a 64 MiB RAM disk, and
// the data copied into the guest's pages by PFN, with the completion back
// through the other ring. "rand4k": 4 KiB reads at random 4 KiB-aligned
// offsets; "seq256k": 256 KiB reads one after another, wrapping at the
// end. qd is how many requests are in flight at once (one goroutine each).
// MB/s counts data bytes; IOPS is reported beside it.
func BenchmarkStorage(b *testing.B) {
	for _, tc := range []struct {
		name   string
		size   int
		random bool
		qd     int
	}{
		{"rand4k/qd1", 4 << 10, true, 1},
		{"rand4k/qd32", 4 << 10, true, 32},
		{"seq256k/qd1", 256 << 10, false, 1},
		{"seq256k/qd4", 256 << 10, false, 4},
	} {
		b.Run(tc.name, func(b *testing.B) { benchRead(b, tc.size, tc.random, tc.qd) })
	}
}

func benchRead(b *testing.B, size int, random bool, qd int) {
	const diskBytes = 64 << 20
	disk, err := scsi.NewRAMDisk(make([]byte, diskBytes), blockSize, false)
	if err != nil {
		b.Fatal(err)
	}
	p := newPartition(b, 8192, map[storvsp.Address]*scsi.LogicalUnit{{}: unit(b, disk, scsi.Options{})})
	c := p.open(b, 0, storvsc.Config{})
	ctx := testContext(b)
	blocks := uint32(size / blockSize)
	slots := uint64(diskBytes / size)
	bufs := make([]*storvsc.Buffer, qd)
	for i := range bufs {
		bufs[i] = buffer(b, c, size)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, qd)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for w := range qd {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				slot := uint64(i) % slots
				if random {
					slot = r.Uint64N(slots)
				}
				if err := c.Read(ctx, lun0, slot*uint64(blocks), blocks, bufs[w]); err != nil {
					errs <- fmt.Errorf("read %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "IOPS")
}
