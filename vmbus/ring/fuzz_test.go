package ring

import (
	"encoding/binary"
	"errors"
	"testing"

	"gohv/vmbus/proto"
)

// FuzzReceiver gives a Receiver and a Sender a ring whose control page
// and data area a hostile peer wrote (the first 20 bytes: write index,
// read index, mask, pending size, feature bits; then the data area), and
// runs operations read from the rest of the input, some of which are the
// peer rewriting a control word between calls. Nothing may panic or
// touch memory outside the ring (FlatMemory's slicing would panic); every
// packet returned must be framed as the ring promises; every error must
// be one of the ring's; the indices the ring stores must stay valid.
func FuzzReceiver(f *testing.F) {
	// Seeds: an empty ring, a ring with two good packets, one that wraps.
	f.Add(make([]byte, 20), []byte{0, 1, 2, 3})
	good := make([]byte, 20+PageSize)
	binary.LittleEndian.PutUint32(good[0:], 40+24)
	binary.LittleEndian.PutUint32(good[16:], 1)
	proto.PacketDescriptor{Type: proto.PktDataInband, DataOffset8: 2, Length8: 4}.Append(good[20:20])
	proto.PacketDescriptor{Type: proto.PktComp, DataOffset8: 2, Length8: 2}.Append(good[60:60])
	f.Add(good, []byte{0, 0, 0, 4, 5, 9, 3})
	wrap := make([]byte, 20+PageSize)
	binary.LittleEndian.PutUint32(wrap[0:], 32)
	binary.LittleEndian.PutUint32(wrap[4:], PageSize-32)
	proto.PacketDescriptor{Type: proto.PktDataInband, DataOffset8: 2, Length8: 7}.Append(wrap[20+PageSize-32 : 20+PageSize-32])
	f.Add(wrap, []byte{1, 0, 2, 6, 0})
	f.Fuzz(func(t *testing.T, ring, ops []byte) {
		if len(ops) > 256 {
			ops = ops[:256]
		}
		raw := make([]byte, 2*PageSize)
		ctl := make([]byte, 20)
		copy(ctl, ring)
		copy(raw[0:16], ctl[0:16])
		copy(raw[FeatureBitsOffset:], ctl[16:20])
		if len(ring) > 20 {
			copy(raw[DataOffset:], ring[20:])
		}
		m, err := NewFlatMemory(raw)
		if err != nil {
			t.Fatal(err)
		}
		r, errR := NewReceiver(m, nil)
		s, errS := NewSender(m, nil)
		for _, err := range []error{errR, errS} {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("attach: %v", err)
			}
		}
		if errR != nil || errS != nil {
			return
		}
		buf := make([]byte, PageSize)
		hdr := make([]byte, 0, 16)
		arg := func(i int) byte {
			if i < len(ops) {
				return ops[i]
			}
			return 0
		}
		for i := 0; i < len(ops); i++ {
			var err error
			switch ops[i] % 10 {
			case 0, 1:
				var n int
				n, err = r.Read(buf)
				if err == nil {
					if n < proto.DescriptorSize || n%8 != 0 || n > PageSize-8 {
						t.Fatalf("Read returned %d bytes", n)
					}
					proto.ParsePacket(buf[:n])
				}
			case 2:
				_, err = r.Read(buf[:24])
			case 3:
				err = r.Skip()
			case 4:
				var n int
				if n, err = r.Peek(); err == nil && (n < 16 || n%8 != 0) {
					t.Fatalf("Peek %d", n)
				}
			case 5:
				err = r.Drain(buf, func([]byte) error { return nil })
			case 6: // the peer rewrites a control word
				i++
				word := int(arg(i)%4) * 4
				v := uint32(arg(i+1)) | uint32(arg(i+2))<<8
				i += 2
				m.StoreU32(word, v)
			case 7:
				n := int(arg(i+1)) * 16
				i++
				h, _ := proto.AppendInbandHeader(hdr[:0], 0, 0, n)
				err = s.Write(h, buf[:n])
			case 8:
				i++
				_, err = s.RequestSpace(16 + int(arg(i))*16)
			case 9:
				if ops[i]&0x10 != 0 {
					r.MaskInterrupts()
				} else {
					r.UnmaskInterrupts()
				}
			}
			if err != nil && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrCorrupt) &&
				!errors.Is(err, ErrShortBuffer) && !errors.Is(err, ErrFull) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("op %d: unexpected error %v", ops[i]%10, err)
			}
			if !r.valid(r.read) || !s.valid(s.write) {
				t.Fatalf("own index invalid: read %#x write %#x", r.read, s.write)
			}
		}
	})
}
