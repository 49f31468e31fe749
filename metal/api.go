package metal

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usbarmory/tamago/soc/intel/rtc"

	"gohv/x86"
)

// The Go side of metal: what the hypervisor's ordinary Go code (running on
// the runtime that metal hosts) may ask of it. These run on Go threads with
// interrupts enabled; they read kernel state that is fixed after boot, or
// single aligned words, and change it through metal's own system calls
// (kernel code, under the kernel lock) or with single atomic stores.

// Info describes the machine as metal found it.
type Info struct {
	CPUVendor, CPUBrand string
	TSCHz, LAPICTimerHz uint64
	Timer               string // how the one-shot timer is armed: "TSC-deadline" or "one-shot" (a LAPIC count)
	MemoryBytes         uint64 // usable RAM from the boot loader's map
	MemoryRanges        int
	FreeBytes           uint64 // physical pages not yet used
	Cmdline             string
	BootLoader          string
	EntryPoint          uintptr
	ImageBytes          uint64 // loaded size, text through bss
	HasNX, Has1GPages   bool
	HasRDRAND           bool
}

func GetInfo() Info {
	b32, _ := bootSymbols()
	return Info{
		CPUVendor:    string(cpuVendor[:]),
		CPUBrand:     string(trimNUL(cpuBrand[:])),
		TSCHz:        tscHz,
		LAPICTimerHz: lapicHz,
		Timer:        timerModeName(),
		MemoryBytes:  boot.ram.Total(),
		MemoryRanges: boot.ram.Len(),
		FreeBytes:    pages.FreePages() * pageSize,
		Cmdline:      string(boot.cmdlineBytes()),
		BootLoader:   string(boot.loader[:boot.loaderLen]),
		EntryPoint:   b32,
		ImageBytes:   imageEnd - imageStart,
		HasNX:        hasNX,
		Has1GPages:   has1GPages,
		HasRDRAND:    hasRDRAND,
	}
}

// Stats are kernel counters, for reports and benchmarks.
type Stats struct {
	PagesBacked, PagesFreed uint64 // demand paging
	FreeBytes               uint64
	ContextSwitches         uint64
	PageFaults              uint64
	Signals                 uint64
	Threads                 int
	Syscalls                uint64

	// The one-shot timer: its interrupts (each a deadline or slice end
	// that came due; there is no periodic tick), those of them that found
	// nothing due (a piece of a wait longer than a LAPIC count reaches, a
	// deadline that moved after the timer fired), how often it was armed,
	// re-armed or disarmed, and the interrupts of any kind that woke an
	// idle CPU.
	TimerInterrupts, TimerEarly, TimerPrograms uint64
	IdleWakeups                                uint64
	// The advance: how far ahead of a deadline the timer is armed now
	// (the interrupt's measured latency), and the time spun in all in
	// the interrupt waiting out what was left, in nanoseconds.
	TimerAdvanceNanos, TimerSpinNanos int64
	// Several CPUs: the IPIs sent between them (reschedule, shootdown)
	// and the TLB shootdowns.
	IPIs, Shootdowns uint64
	// Starvations: threads that waited two seconds or more in the run
	// queue (starve.go reports each on the console); 0 unless metal is
	// broken.
	Starvations uint64
}

func GetStats() Stats {
	s := Stats{
		PagesBacked: pagesBacked,
		PagesFreed:  pagesFreed,
		FreeBytes:   pages.FreePages() * pageSize,
		PageFaults:  pageFaults,
		Signals:     signalsDelivered,
		Threads:     threadCount,
		IPIs:        ipisSent,
		Shootdowns:  shootdowns,
		Starvations: starvations,
	}
	for _, c := range syscallCounts {
		s.Syscalls += c
	}
	for i := range cpus {
		c := &cpus[i]
		s.ContextSwitches += c.contextSwitches
		s.TimerInterrupts += c.timerInterrupts
		s.TimerEarly += c.timerEarly
		s.TimerPrograms += c.timerPrograms
		s.IdleWakeups += c.idleWakeups
		s.TimerAdvanceNanos = max(s.TimerAdvanceNanos, c.timerAdvance)
		s.TimerSpinNanos += int64(c.timerSpinNS)
	}
	return s
}

// TSC reads the time-stamp counter.
func TSC() uint64 { return x86.RDTSC() }

// EntryTSC is the TSC when kmain started (first Go code after the boot stub).
func EntryTSC() uint64 { return entryTSC }

// BootTSC is the TSC when the Go runtime's entry point was entered.
func BootTSC() uint64 { return bootTSC }

// Nanotime is the kernel's monotonic clock.
func Nanotime() int64 { return nanotime() }

// SetAlarm asks for a timer interrupt at deadline (Nanotime's clock) on the
// CPU that runs the calling thread, while it runs: a thread in guest mode
// then takes a VM exit, within the timer's accuracy of the deadline. It is
// how a VP thread gets back from its guest when a guest timer comes due,
// without another thread to wake or the Go runtime's timers (whose waits
// are whole milliseconds). One alarm per thread; a call replaces it and 0
// cancels it. Once due it repeats every AlarmRepeat while the thread runs,
// until the thread replaces or cancels it: a thread that enters its guest
// just after its alarm fired (or was off the CPU when it came due) is still
// brought back. Meaningful for a goroutine locked to its thread
// (runtime.LockOSThread), which cancels it before it unlocks. Must not
// allocate.
// AlarmRepeat is how often a due alarm interrupts its thread again.
const AlarmRepeat = 50 * time.Microsecond

func SetAlarm(deadline int64) {
	syscall.RawSyscall(sysMetalSetAlarm, uintptr(max(deadline, 0)), 0, 0)
}

// sysMetalSetAlarm sets the calling thread's alarm (SetAlarm).
const sysMetalSetAlarm = 0x6d74_0004

// sysSetAlarmImpl serves SetAlarm; deadline is the caller's, any value.
// Kernel stack, interrupts off; must not allocate.
func sysSetAlarmImpl(deadline uint64) uint64 {
	c := thisCPU()
	threads[c.current].alarm = max(int64(deadline), 0)
	c.timerDirty = true
	return 0
}

// Physical memory access for firmware tables.
type PhysMemory struct{}

// ReadAt copies physical memory at pa into p.
func (PhysMemory) ReadAt(p []byte, pa uint64) error {
	top := max(boot.ram.Highest(), identityEnd)
	if pa+uint64(len(p)) < pa || pa+uint64(len(p)) > top {
		return fmt.Errorf("metal: physical range %#x+%d outside the physical map", pa, len(p))
	}
	copy(p, physBytes(pa, len(p)))
	return nil
}

// SetACPIPowerOff records how to enter S5, found in the FADT and DSDT.
func SetACPIPowerOff(pm1a, pm1b uint16, slpTypA, slpTypB uint8) {
	acpiPM1aCnt, acpiPM1bCnt = pm1a, pm1b // read only by powerOff, after this
	acpiSLPTypA, acpiSLPTypB = uint16(slpTypA), uint16(slpTypB)
	acpiS5Known = pm1a != 0
}

// SetWallClockFromRTC reads the CMOS real-time clock and sets CLOCK_REALTIME.
func SetWallClockFromRTC() (time.Time, error) {
	var r rtc.RTC
	t, err := r.Now()
	if err != nil {
		return time.Time{}, fmt.Errorf("metal: rtc: %w", err)
	}
	atomic.StoreInt64(&wallOffset, t.UnixNano()-nanotime())
	return t, nil
}

// Verdict prints the final verdict line and powers off: status 0 after PASS,
// 1 after FAIL.
func Verdict(pass bool, reason string) {
	if !verdictGiven.CompareAndSwap(false, true) {
		return
	}
	if pass {
		fmt.Fprintln(os.Stdout, "gohv: verdict PASS")
		powerOff(0)
	}
	fmt.Fprintf(os.Stdout, "gohv: verdict FAIL %s\n", reason)
	powerOff(1)
}

// BootRSDP returns the ACPI RSDP the boot loader handed over (Multiboot2
// tags 14/15, the only way to find ACPI under UEFI), or nil.
func BootRSDP() []byte {
	if boot.rsdpLen == 0 {
		return nil
	}
	return append([]byte(nil), boot.rsdp[:boot.rsdpLen]...)
}

// BootModules returns the files the boot loader loaded beside the image, in
// the order it listed them, each named by the last word of its string (see
// modules.go). Their pages are never handed out, so Data stays valid.
func BootModules() []Module { return bootModules(&boot, physBytes) }

// MemoryMapSource names the boot structure the memory map came from.
func MemoryMapSource() string { return boot.mmapSource.String() }
