package main

import (
	"fmt"
	"time"

	"gohv/guests"
	"gohv/hv"
	"gohv/x86"
)

// runDefault is the embedded default configuration: two child partitions,
// a Multiboot kernel and a 64-bit guest, each printing through its emulated
// COM1 and stopping through the debug-exit port. The hypervisor then powers
// off: PASS when both stopped the way they should.
func runDefault() error {
	h, err := startHypervisor()
	if err != nil {
		return err
	}
	const mbRAM = 32 << 20
	mb, err := h.NewPartition(hv.Config{Name: "mb0", RAMBytes: mbRAM, Console: partitionConsole})
	if err != nil {
		return err
	}
	defer mb.Destroy()
	if err := hv.LoadMultiboot(mb, guests.MultibootKernel(), "default"); err != nil {
		return err
	}
	const msg = "hello from a 64-bit child partition\n\x00"
	hello, err := startGuest(h, "hello1", 8<<20, guests.Hello, guests.Options{}, func(p *hv.Partition) error {
		p.VP(0).Regs().GPR[x86.RSI] = guests.DataBase
		return p.Mem.WriteRAM(guests.DataBase, []byte(msg))
	})
	if err != nil {
		return err
	}
	defer hello.Destroy()
	mb.Start()
	for _, c := range []struct {
		p    *hv.Partition
		want uint32
	}{{mb, mbRAM>>20 - 1}, {hello, 0}} {
		r := waitFor(c.p, 30*time.Second) // the core logs how it ended
		if !stoppedWith(r, c.want) {
			return fmt.Errorf("partition %s: %v, want a debug-exit stop with status %#x", c.p.Name, r, c.want)
		}
	}
	return nil
}
