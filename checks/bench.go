package checks

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/metal"
	"gohv/testguests"
	"gohv/x86"
)

// Bench measures metal's costs and the hypervisor's exit round trips in
// TSC cycles and prints them as "gohv: measure <name> <value> <unit> ..."
// lines (kernel command-line word "bench"; "bench=exits,peer" runs only
// the groups named, see BenchGroups). Under QEMU with -icount shift=0 the
// TSC counts guest instructions, so the figures repeat exactly from run
// to run. An error is a failure to measure.
func Bench(env *Env, args []string) error {
	only := benchSelection(args)
	for _, g := range BenchGroups {
		if only == nil && g.OnlyWhenNamed || only != nil && !slices.Contains(only, g.Name) {
			continue
		}
		if err := g.Run(env); err != nil {
			return fmt.Errorf("%s benchmarks: %w", g.Name, err)
		}
	}
	for _, name := range only {
		if !slices.ContainsFunc(BenchGroups, func(g BenchGroup) bool { return g.Name == name }) {
			return fmt.Errorf("no benchmark group %q", name)
		}
	}
	return nil
}

// BenchGroup is a part of the benchmark a "bench=" word can name.
type BenchGroup struct {
	Name string
	// OnlyWhenNamed leaves the group out of a plain "bench": it has a
	// benchmark of its own on the host with its own emulator flags.
	OnlyWhenNamed bool
	Run           func(*Env) error
}

// BenchGroups are the benchmark's parts in the order "bench" runs them.
var BenchGroups = []BenchGroup{
	{"boot", false, benchBoot},
	{"metal", false, benchMetal},
	{"timers", false, benchTimers},
	{"exits", false, benchExits},
	{"apic", false, benchAPIC},
	{"hyperv", false, benchHyperV},
	{"pauses", false, benchPauses},
	{"peer", true, benchPeer},
}

// benchSelection is the group list of a "bench=a,b" word, nil for all.
func benchSelection(args []string) []string {
	for _, a := range args {
		if list, ok := strings.CutPrefix(a, "bench="); ok {
			return strings.Split(list, ",")
		}
	}
	return nil
}

// benchBoot reports the image's size and the boot's phases.
func benchBoot(env *Env) error {
	info := metal.GetInfo()
	fmt.Fprintf(env.Out, "gohv: measure image-in-memory %d bytes text through bss, as loaded\n", info.ImageBytes)
	fmt.Fprintf(env.Out, "gohv: measure boot-kernel %d tsc-cycles kmain entry to the Go runtime's entry point\n", metal.BootTSC()-metal.EntryTSC())
	fmt.Fprintf(env.Out, "gohv: measure boot-runtime %d tsc-cycles Go runtime entry point to main.main\n", env.MainTSC-metal.BootTSC())
	fmt.Fprintf(env.Out, "gohv: measure boot-total %d tsc-cycles kmain entry to main.main\n", env.MainTSC-metal.EntryTSC())
	return nil
}

// benchMetal measures a trapped system call, a clock read and a futex
// hand-off between two threads.
func benchMetal(env *Env) error {
	getpid := medianPerOp(10000, 100, func() {
		syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
	})
	fmt.Fprintf(env.Out, "gohv: measure syscall-getpid %d tsc-cycles median per call over 100 batches of 100\n", getpid)
	clock := medianPerOp(10000, 100, func() { metal.Nanotime() })
	fmt.Fprintf(env.Out, "gohv: measure tsc-clock-read %d tsc-cycles median per read, no trap (baseline)\n", clock)
	fmt.Fprintf(env.Out, "gohv: measure futex-handoff %d tsc-cycles median wake-to-run between two threads\n", futexHandoff(env, 2000))
	return nil
}

// benchExits runs the guest loop of each exit kind for 10,000 iterations
// and reports the median round trip as the guest's TSC sees it.
func benchExits(env *Env) error {
	if env.hv == nil {
		if err := openHypervisor(env); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Out, "gohv: bench exits measured on %s\n", env.hv.Backend.Name())
	const n = 10000
	for _, k := range []struct {
		mode int
		name string
	}{{0, "guest-loop-native"}, {1, "exit-cpuid"}, {2, "exit-hypercall"}, {3, "exit-out-port"}} {
		p, r, err := env.run("bench", 4<<20, testguests.Loop, testguests.Options{}, func(p *hv.Partition) error {
			g := &p.VP(0).Regs().GPR
			g[x86.RCX], g[x86.R11], g[x86.RDI] = n, uint64(k.mode), testguests.DataBase
			return nil
		}, time.Minute)
		if err != nil {
			return err
		}
		if !r.PoweredOffWith(0) {
			p.Destroy()
			return fmt.Errorf("%s: %v", k.name, r)
		}
		buf := make([]byte, 8*n)
		err = p.Mem.ReadRAM(testguests.DataBase, buf)
		exits := p.VP(0).Exits
		p.Destroy()
		if err != nil {
			return err
		}
		d := make([]uint64, n)
		for i := range d {
			d[i] = binary.LittleEndian.Uint64(buf[8*i:])
		}
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		fmt.Fprintf(env.Out, "gohv: measure %s %d tsc-cycles median round trip over %d iterations (p10 %d, p90 %d; %d cpuid, %d hypercall, %d io exits)\n",
			k.name, d[n/2], n, d[n/10], d[n*9/10], exits[vcpu.ExitCPUID], exits[vcpu.ExitHypercall], exits[vcpu.ExitIO])
	}
	return nil
}

// medianPerOp runs op n times in batches and returns the median batch cost
// per operation.
func medianPerOp(n, batch int, op func()) uint64 {
	var costs []uint64
	for i := 0; i < n/batch; i++ {
		t0 := metal.TSC()
		for j := 0; j < batch; j++ {
			op()
		}
		costs = append(costs, (metal.TSC()-t0)/uint64(batch))
	}
	sort.Slice(costs, func(i, j int) bool { return costs[i] < costs[j] })
	return costs[len(costs)/2]
}
