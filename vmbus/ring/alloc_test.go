package ring

import (
	"testing"

	"gohv/vmbus/proto"
)

// The ring is on every VSP's data path: writing, reading, draining,
// asking for space and the signal decisions allocate nothing, across
// wrap-around and full rings.
func TestRingDoesNotAllocate(t *testing.T) {
	tr := newTestRing(t, 2*PageSize)
	hdr := make([]byte, 0, proto.DescriptorSize)
	payload := make([]byte, 3000)
	buf := make([]byte, 4096)
	sizes := []int{0, 13, 64, 1000, 3000, 7}
	i := 0
	handle := func(p []byte) error { return nil }
	allocs := testing.AllocsPerRun(1000, func() {
		n := sizes[i%len(sizes)]
		i++
		h, err := proto.AppendInbandHeader(hdr[:0], 0, uint64(i), n)
		if err != nil {
			t.Fatal(err)
		}
		for {
			err := tr.s.Write(h, payload[:n])
			if err == nil {
				break
			}
			if err != ErrFull {
				t.Fatal(err)
			}
			if ok, err := tr.s.RequestSpace(len(h) + n); err != nil {
				t.Fatal(err)
			} else if !ok {
				if _, err := tr.r.Read(buf); err != nil {
					t.Fatal(err)
				}
			}
		}
		if i%3 == 0 {
			if _, err := tr.r.Peek(); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.r.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		if i%11 == 0 {
			if err := tr.r.Drain(buf, handle); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.r.Read(buf); err != ErrEmpty {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round", allocs)
	}
	if tr.toReader == 0 || tr.toWriter == 0 {
		t.Fatalf("the rounds did not reach both signals (%d, %d)", tr.toReader, tr.toWriter)
	}
}

func TestPageMemoryDoesNotAllocate(t *testing.T) {
	list := [][]byte{make([]byte, PageSize), make([]byte, PageSize), make([]byte, PageSize)}
	m, err := NewPageMemory(list)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 5000)
	allocs := testing.AllocsPerRun(100, func() {
		m.WriteAt(p, PageSize+100)
		m.ReadAt(p, PageSize+50)
		m.StoreU32(0, m.LoadU32(4)+1)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}
