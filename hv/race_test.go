package hv

import (
	"encoding/binary"
	"strings"
	"sync"
	"testing"

	"gohv/apic/ioapic"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// TestVPsRaceOnSharedDevices: two VPs of one partition, each on its own
// goroutine as on its own host CPU, run real exits through the core at
// once against the devices they share: the I/O APIC's index/data pair
// (IOREGSEL, IOWIN) through the MMIO bus and the instruction emulator,
// and COM1's transmitter through the port bus, while a device goroutine
// raises the I/O APIC's pins and reads its state. The race detector
// checks the locking; the invariants check the state: the shared index
// sends a VP's IOWIN write to the other VP's entry at times (what the
// hardware does with an unlocked index register), but every entry
// holds a whole value one of them wrote, no other entry changes, every
// message the I/O APIC sent reached VP 0's LAPIC, and COM1 put out every
// byte exactly once.
func TestVPsRaceOnSharedDevices(t *testing.T) {
	host := newTestHost()
	b := &fakeBackend{}
	h := New(b, host, NewCPUModel(), nil)
	rec := &recorder{}
	p, err := h.NewPartition(Config{Name: "race", RAMBytes: 1 << 20, Console: rec, VPs: 2})
	if err != nil {
		t.Fatal(err)
	}
	// mov [ebx], eax; mov eax, [ebx]; out dx, al: 32-bit protected mode.
	code := []byte{0x89, 0x03, 0x8b, 0x03, 0xee}
	const codeAt = 0x1000
	if err := p.Mem.WriteRAM(codeAt, code); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		b.vcpus[i].regs = vcpu.Regs{PAT: x86.PATReset, CR0: x86.CR0PE, CS: vcpu.Segment{Attrib: x86.SegDB}}
		p.VP(i).waitSIPI = false
	}
	apicWrite(t, p.VP(0), regSVR, 0x1ff) // VP 0's LAPIC takes the I/O APIC's messages

	io := p.IOAPIC()
	ioWrite := func(index, v uint32) {
		var bb [4]byte
		binary.LittleEndian.PutUint32(bb[:], index)
		io.WriteMMIO(ioapic.IOREGSEL, bb[:])
		binary.LittleEndian.PutUint32(bb[:], v)
		io.WriteMMIO(ioapic.IOWIN, bb[:])
	}
	ioRead := func(index uint32) uint32 {
		var bb [4]byte
		binary.LittleEndian.PutUint32(bb[:], index)
		io.WriteMMIO(ioapic.IOREGSEL, bb[:])
		io.ReadMMIO(ioapic.IOWIN, bb[:])
		return binary.LittleEndian.Uint32(bb[:])
	}

	const rounds = 2000
	// entry is what VP i writes to its pin's low word in round k: fixed,
	// physical destination 0 (the high word stays 0), edge, unmasked.
	entry := func(i, k int) uint32 { return uint32(0x20 + 0x10*i + k%16) }
	pin := func(i int) uint32 { return uint32(1 + i) }
	for i := range 2 { // a value of its own in each entry before the race
		ioWrite(ioapic.IOAPICREDTBLn+2*pin(i), entry(i, 0))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 2 {
		wg.Add(1)
		go func() { // VP i's thread
			defer wg.Done()
			vp, r := p.VP(i), &b.vcpus[i].regs
			exit := func(gpa uint64, write bool, at uint64) {
				r.RIP = codeAt + at
				vp.handle(&vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: gpa, Write: write})
			}
			for k := range rounds {
				// IOREGSEL = the low word of its pin's entry, then IOWIN.
				r.GPR[x86.RBX], r.GPR[x86.RAX] = IOAPICBase+ioapic.IOREGSEL, uint64(ioapic.IOAPICREDTBLn+2*pin(i))
				exit(IOAPICBase+ioapic.IOREGSEL, true, 0)
				r.GPR[x86.RBX], r.GPR[x86.RAX] = IOAPICBase+ioapic.IOWIN, uint64(entry(i, k))
				exit(IOAPICBase+ioapic.IOWIN, true, 0)
				// Read the window back: whichever index is selected now,
				// it is one of the two low words, holding a whole value.
				r.GPR[x86.RAX] = 0xdead_beef
				exit(IOAPICBase+ioapic.IOWIN, false, 2)
				if v := uint32(r.GPR[x86.RAX]); !wholeEntry(v) {
					errs <- "vp read a torn or foreign IOWIN value"
					return
				}
				// One byte to COM1's transmitter: the VP's letter, and a
				// line end every 32.
				c := byte('a' + i)
				if k%32 == 31 {
					c = '\n'
				}
				r.GPR[x86.RAX], r.GPR[x86.RDX] = uint64(c), 0x3f8
				r.RIP = codeAt + 4
				vp.handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3f8, Size: 1, InstrLen: 1})
			}
		}()
	}
	stop := make(chan struct{})
	var dev sync.WaitGroup
	dev.Add(1)
	go func() { // a device toggling pins 1 and 2, and a reader of the state
		defer dev.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			p.SetIRQ(1+n%2, n%4 < 2)
			io.Stats()
			p.VP(0).LAPIC().Stats()
		}
	}()
	wg.Wait()
	close(stop)
	dev.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if r := p.Result(); r.Err != nil {
		t.Fatalf("the partition ended: %v", r)
	}

	// The entries: pins 1 and 2 hold a whole value of either VP, every
	// other pin its reset value (masked).
	for q := range uint32(ioapic.Pins) {
		lo, hi := ioRead(ioapic.IOAPICREDTBLn+2*q), ioRead(ioapic.IOAPICREDTBLn+2*q+1)
		switch {
		case q == 1 || q == 2:
			if !wholeEntry(lo) || hi != 0 {
				t.Errorf("pin %d: entry %#x_%08x, want a value a VP wrote", q, hi, lo)
			}
		case lo != 1<<ioapic.REDTBL_MASK || hi != 0:
			t.Errorf("pin %d, which no VP wrote: entry %#x_%08x", q, hi, lo)
		}
	}
	// Every message went to VP 0's LAPIC (destination 0) and was taken.
	st, l0, l1 := io.Stats(), p.VP(0).LAPIC().Stats(), p.VP(1).LAPIC().Stats()
	if st.Sent == 0 || st.NoTarget != 0 || l0.Accepted != st.Sent || l1.Accepted != 0 {
		t.Errorf("the I/O APIC sent %d (%d with no target); VP 0's LAPIC accepted %d, VP 1's %d", st.Sent, st.NoTarget, l0.Accepted, l1.Accepted)
	}
	// COM1: each VP's bytes exactly once, in lines of letters (the last
	// one flushed here: the VPs' line ends and letters interleave).
	p.COM1().Flush()
	var letters strings.Builder
	for _, l := range rec.lines {
		text, ok := strings.CutPrefix(l, "race: ")
		if !ok || strings.Trim(text, "ab\n") != "" || !strings.HasSuffix(text, "\n") {
			t.Fatalf("console line %q", l)
		}
		letters.WriteString(text)
	}
	out := letters.String()
	if got, want := p.COM1().BytesWritten(), uint64(2*rounds); got != want {
		t.Errorf("COM1 counted %d bytes, want %d", got, want)
	}
	for i := range 2 {
		c := string(rune('a' + i))
		if n, want := strings.Count(out, c), rounds-rounds/32; n != want {
			t.Errorf("VP %d's %q: %d on the console, want %d", i, c, n, want)
		}
	}
	if n, want := strings.Count(out, "\n"), 2*(rounds/32); n < want || n > want+1 {
		t.Errorf("%d line ends, want %d and the flush's", n, want)
	}
}

// wholeEntry reports whether v is a low word TestVPsRaceOnSharedDevices's
// VPs write: a vector 0x20-0x3f and nothing else.
func wholeEntry(v uint32) bool { return v >= 0x20 && v <= 0x3f }
