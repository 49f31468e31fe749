package vswitch

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkForward: unicast frames from one port to another through Send,
// the forwarder and the receiver's delivery goroutine. The sender retries
// a frame its full ingress queue refused, so the figure is the switch's
// sustained rate; frames dropped at the receiver's egress are reported.
func BenchmarkForward(b *testing.B) {
	for _, size := range []int{64, 1514} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s := New("bench", nil)
			defer s.Close()
			a, err := s.Connect(PortConfig{Name: "a", MAC: mac(1)}, &counter{})
			if err != nil {
				b.Fatal(err)
			}
			rx := &counter{}
			bp, err := s.Connect(PortConfig{Name: "b", MAC: mac(2)}, rx)
			if err != nil {
				b.Fatal(err)
			}
			f := frame(mac(2), mac(1), 0, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				for !a.Send(f) {
					runtime.Gosched()
				}
			}
			for uint64(rx.n.Load())+bp.Stats().RxDropped < uint64(b.N) {
				runtime.Gosched()
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
			b.ReportMetric(float64(bp.Stats().RxDropped)/float64(b.N), "rxdrops/frame")
		})
	}
}
