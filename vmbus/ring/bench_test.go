package ring

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"gohv/vmbus/proto"
)

// benchRing is the data area of the benchmarks' rings: storvsc's 128 KiB
// per direction.
const benchRing = 128 << 10

var benchSizes = []int{64, 1024, 4096}

func sizeName(n int) string {
	if n >= 1024 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkRing moves b.N packets of 64 B, 1 KiB and 4 KiB payload from a
// producer goroutine to a consumer goroutine through one 128 KiB ring.
// "signal": both ends wait on each other's signals when the ring is
// full or empty (Pair.Send, Pair.Receive), as a channel does; "pages":
// the same over a PageMemory of separate 4 KiB pages, as the host maps a
// GPADL; "poll": both spin (runtime.Gosched) instead of waiting. MB/s
// counts payload bytes; packets/s is reported beside it.
func BenchmarkRing(b *testing.B) {
	for _, mode := range []string{"signal", "pages", "poll"} {
		for _, size := range benchSizes {
			b.Run(mode+"/"+sizeName(size), func(b *testing.B) { benchRingMode(b, size, mode) })
		}
	}
}

func benchRingMode(b *testing.B, size int, mode string) {
	poll := mode == "poll"
	var m Memory
	if mode == "pages" {
		list := make([][]byte, 1+benchRing/PageSize)
		for i := range list {
			list[i] = make([]byte, PageSize)
		}
		pm, err := NewPageMemory(list)
		if err != nil {
			b.Fatal(err)
		}
		m = pm
	} else {
		fm, err := NewFlatMemory(make([]byte, PageSize+benchRing))
		if err != nil {
			b.Fatal(err)
		}
		m = fm
	}
	p, err := NewPairOn(m)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, size)
	hdr, err := proto.AppendInbandHeader(nil, 0, 1, size)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, proto.DescriptorSize+size+8)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range b.N {
			if !poll {
				if err := p.Send(hdr, payload); err != nil {
					panic(err)
				}
				continue
			}
			for {
				err := p.Sender.Write(hdr, payload)
				if err == nil {
					break
				}
				if err != ErrFull {
					panic(err)
				}
				runtime.Gosched()
			}
		}
	})
	for range b.N {
		if !poll {
			if _, err := p.Receive(buf); err != nil {
				b.Fatal(err)
			}
			continue
		}
		for {
			_, err := p.Receiver.Read(buf)
			if err == nil {
				break
			}
			if err != ErrEmpty {
				b.Fatal(err)
			}
			runtime.Gosched()
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkCopy is the memory-bandwidth reference for BenchmarkRing: one
// copy() of each packet's payload into a 128 KiB buffer at a wrapping
// offset, on one goroutine. A packet through the ring is two such copies
// (the producer's in, the consumer's out) on two CPUs, plus its
// descriptor and trailer and the index traffic between the CPUs.
func BenchmarkCopy(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			src := make([]byte, size)
			dst := make([]byte, benchRing)
			off := 0
			b.SetBytes(int64(size))
			for range b.N {
				if off+size > len(dst) {
					off = 0
				}
				copy(dst[off:], src)
				off += size
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}
