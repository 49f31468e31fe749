package main

import (
	"fmt"
	"time"

	"gohv/hv"
	"gohv/root/loader"
	"gohv/testguests"
	"gohv/x86"
)

// runDefault is the embedded default configuration until partitions come
// from a user's configuration file: two child partitions, a Multiboot
// kernel and a 64-bit guest, each printing through its emulated COM1 and
// stopping through the debug-exit port. The hypervisor then powers off:
// PASS when both stopped the way they should.
func runDefault() error {
	h, err := openHypervisor()
	if err != nil {
		return err
	}
	const mbRAM = 32 << 20
	mb, err := h.NewPartition(hv.Config{Name: "mb0", RAMBytes: mbRAM, Console: serial})
	if err != nil {
		return err
	}
	defer mb.Destroy()
	if err := loader.LoadMultiboot(mb, testguests.MultibootKernel(), "default"); err != nil {
		return err
	}
	const msg = "hello from a 64-bit child partition\n\x00"
	hello, err := testguests.Start(h, hv.Config{Name: "hello1", RAMBytes: 8 << 20, Console: serial}, testguests.Hello, testguests.Options{},
		func(p *hv.Partition) error {
			p.VP(0).Regs().GPR[x86.RSI] = testguests.DataBase
			return p.Mem.WriteRAM(testguests.DataBase, []byte(msg))
		})
	if err != nil {
		mb.Start()
		mb.Stop("the other partition failed")
		return err
	}
	defer hello.Destroy()
	stop := make(chan struct{})
	defer close(stop)
	for _, p := range []*hv.Partition{mb, hello} {
		consoleInput.Add(p.Name, p.COM1().Receive)
	}
	startConsoleInput(stop)
	mb.Start()
	for _, c := range []struct {
		p    *hv.Partition
		want uint32
	}{{mb, mbRAM>>20 - 1}, {hello, 0}} {
		r := c.p.WaitOrStop(30 * time.Second) // the core logs how it ended
		if !r.PoweredOffWith(c.want) {
			return fmt.Errorf("partition %s: %v, want a power-off with status %#x", c.p.Name, r, c.want)
		}
	}
	return nil
}
