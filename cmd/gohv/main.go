// Command gohv is the bare-metal hypervisor image. metal boots the machine
// and hosts the Go runtime; main reports what metal found, wires the
// hypervisor core to metal's memory and the serial console, and runs a
// suite of in-image checks (package checks: kernel command-line words
// "selftest", "hvtest", "iommutest"), the benchmark ("bench") or the default
// configuration.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"gohv/checks"
	"gohv/metal"
	"gohv/x86"
)

func main() {
	info := metal.GetInfo()
	fmt.Printf("gohv: banner gohv hypervisor (%s, %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("gohv: cpu %s %q, tsc %d MHz, nx=%v 1g-pages=%v rdrand=%v\n",
		info.CPUVendor, info.CPUBrand, info.TSCHz/1e6, info.HasNX, info.Has1GPages, info.HasRDRAND)
	fmt.Printf("gohv: memory %d MiB usable in %d ranges, %d MiB free\n",
		info.MemoryBytes>>20, info.MemoryRanges, info.FreeBytes>>20)
	if t, err := metal.SetWallClockFromRTC(); err != nil {
		fmt.Printf("gohv: warning: %v; wall clock starts at the epoch\n", err)
	} else {
		fmt.Printf("gohv: wall clock %s (CMOS RTC)\n", t.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	faults := metal.FaultInjection() // inject= words, for the image tests only
	if faults.SyscallUnknown {
		const nr = 999
		r := metal.UnknownSyscall(nr)
		metal.Verdict(false, fmt.Sprintf("unsupported system call %d returned %d (injected)", nr, r))
	}
	if faults.Exception {
		injectGP()
	}
	if err := setupACPI(); err != nil {
		metal.Verdict(false, err.Error())
	}

	args := os.Args[1:]
	env := &checks.Env{Out: serial, Log: rootLog, Host: host, OpenHypervisor: openHypervisor, MainTSC: mainTSC, CPUs: metal.CPUCount(),
		IOMMUs: iommus, PCI: pciConfig, PCIFunctions: pciFunctions}
	if suite, only := checks.Find(args); suite != nil {
		if suite.Run(env, only) {
			metal.Verdict(true, "")
		}
		metal.Verdict(false, suite.Word+" checks failed")
	}
	if hasArg(args, "bench") {
		if err := checks.Bench(env, args); err != nil {
			metal.Verdict(false, err.Error())
		}
		metal.Verdict(true, "")
	}
	ok, reason, demo := runConfigured()
	if !demo {
		metal.Verdict(ok, reason)
	}
	fmt.Println("gohv: default configuration: two child partitions")
	if err := runDefault(); err != nil {
		metal.Verdict(false, err.Error())
	}
	metal.Verdict(true, "")
}

// mainTSC is read as the program starts (package initialisation, just
// before main): the bench's boot figures end here.
var mainTSC = metal.TSC()

// injectGP dereferences a non-canonical address in a goroutine: the CPU
// raises #GP, metal prints the machine state and delivers SIGSEGV, and the Go
// runtime prints the goroutine trace and exits — a FAIL verdict.
func injectGP() {
	done := make(chan int)
	go func() {
		p := (*int)(x86.Ptr(uintptr(0x8000_0000_0000_0000)))
		done <- *p
	}()
	<-done
}

func hasArg(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
