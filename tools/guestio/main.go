// Command guestio measures a block device from inside a Linux guest: the
// storage path's sequential read and write bandwidth and its 4 KiB
// random-read rate, with O_DIRECT so every request reaches the device (the
// guest's page cache would otherwise answer). It is built for
// linux/amd64 at test time and put in a test guest's initramfs; it prints
// "guest: io.<what> <value>" lines for the host to read off the serial
// console. The clock is the guest's own (CLOCK_MONOTONIC): under QEMU's
// -icount, guest time.
//
//	guestio -dev /dev/sda -mib 32 -random 2000
//
// The sequential write test overwrites the device's first -mib MiB: give
// it a scratch disk. -mib 0 runs only the random reads.
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"syscall"
	"time"
)

func main() {
	dev := flag.String("dev", "/dev/sda", "the block device")
	mib := flag.Int("mib", 16, "MiB to read and write sequentially")
	block := flag.Int("block", 1<<20, "bytes per sequential request")
	random := flag.Int("random", 1000, "4 KiB random reads")
	write := flag.Bool("write", true, "run the sequential write test (destroys the data)")
	direct := flag.Bool("direct", true, "open with O_DIRECT (bypass the page cache)")
	flag.Parse()
	if err := run(os.Stdout, *dev, *mib, *block, *random, *write, *direct); err != nil {
		fmt.Fprintf(os.Stderr, "guestio: %v\n", err)
		fmt.Printf("guest: io.error %v\n", err)
		os.Exit(1)
	}
}

func run(out io.Writer, dev string, mib, block, random int, write, direct bool) error {
	flags := os.O_RDWR
	if direct {
		flags |= syscall.O_DIRECT
	}
	f, err := os.OpenFile(dev, flags, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return err
	}
	total := int64(mib) << 20
	if total > size {
		total = size - size%int64(block)
	}
	buf := aligned(block)
	seq := func(what string, op func([]byte, int64) (int, error)) error {
		start := time.Now()
		for off := int64(0); off < total; off += int64(block) {
			if _, err := op(buf, off); err != nil {
				return fmt.Errorf("%s at %d: %w", what, off, err)
			}
		}
		d := time.Since(start)
		fmt.Fprintf(out, "guest: io.%s-mibps %.1f (%d MiB in %v, %d KiB requests)\n", what, float64(total)/float64(1<<20)/d.Seconds(), total>>20, d.Round(time.Millisecond), block>>10)
		return nil
	}
	if total > 0 { // -mib 0: the random reads only
		if err := seq("seq-read", f.ReadAt); err != nil {
			return err
		}
		if write {
			for i := range buf {
				buf[i] = byte(i)
			}
			if err := seq("seq-write", f.WriteAt); err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
		}
	}
	small := aligned(4096)
	blocks := size / 4096
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	for i := 0; i < random; i++ {
		if _, err := f.ReadAt(small, rng.Int64N(blocks)*4096); err != nil {
			return fmt.Errorf("random read %d: %w", i, err)
		}
	}
	d := time.Since(start)
	fmt.Fprintf(out, "guest: io.rand-read-iops %.0f (%d reads of 4 KiB in %v)\n", float64(random)/d.Seconds(), random, d.Round(time.Millisecond))
	return nil
}
