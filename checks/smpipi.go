package checks

import (
	"fmt"
	"slices"
	"time"

	"gohv/testguests"
)

// Issue 14's two-VP test guest for IPIs and remote TLB flushes
// (testguests.SMPPingFlush).
const (
	// smpPingRounds is how many IPI round trips the guest makes of each
	// kind (ICR, HvCallSendSyntheticClusterIpi). Bochs on one CPU took
	// about 0.3 ms a round trip, QEMU's TCG on four CPUs up to a few ms.
	smpPingRounds = 100
	// smpFlushRounds is how many remap-and-flush rounds it makes after
	// the control round: ten of each of the four call variants.
	smpFlushRounds = 40
)

// checkSMPIPIFlush: a two-VP guest brings its AP up by INIT and SIPI,
// then bounces an IPI between its VPs, each halted while it waits (the
// ping through the ICR, then by HvCallSendSyntheticClusterIpi), and
// remaps a page the AP reads in a loop that makes no exits, flushing the
// AP's TLB with HvCallFlushVirtualAddressSpace and List (the AP alone
// or HV_FLUSH_ALL_PROCESSORS) while the AP's loop runs with IF clear
// (half the rounds) and set: once the call returns the AP must read the
// new page. Then the AP, IF clear, reads HV_X64_MSR_GUEST_IDLE (Linux's
// PV spinlock wait): with a vector pending the read returns at once,
// else only after VP 0's IPI, which it takes once it sets IF. The LAPICs
// must have taken every ping, pong and IPI once. The
// detail gives the round trips' and calls' times in guest TSC, the host
// CPUs the VPs ended on, and what the AP read in the control round, a
// remap without a flush: "old page" shows that the emulator's TLB keeps
// a translation until a flush, so a flush call that returned before its
// target left guest mode would have failed a round.
func checkSMPIPIFlush(env *Env) (string, error) {
	p, err := env.startSMP("smpipi", 0, nil, testguests.SMPParams{
		Mode: testguests.SMPPingFlush, Vector: testguests.SMPVector, Rounds: smpPingRounds, Flushes: smpFlushRounds})
	defer stopAndDestroy(p)
	if err != nil {
		return "", err
	}
	// Where the VPs run, read while they run (a VP that ended is on no
	// host CPU); a guest that never gets to step 31 fails below.
	cpu0, cpu1 := -1, -1
	if waitStep(p, 31, 30*time.Second) == nil {
		cpu0, cpu1 = p.VP(0).HostCPU(), p.VP(1).HostCPU()
	}
	r := p.WaitOrStop(time.Minute)
	s, err := testguests.ReadAPICState(p.Mem)
	if err != nil {
		return "", err
	}
	res := &s.Results
	if err := apicPassed(r, s, fmt.Sprintf("ping-pong and flush guest (%d round trips by ICR, %d by hypercall, %d flush rounds done; last hypercall result %#x, AP read %d, VP 0 read %d)",
		res[testguests.SMPPingsByICR], res[testguests.SMPPingsByHypercall], res[testguests.SMPFlushesDone],
		res[testguests.SMPLastHypercall], res[testguests.SMPLastAPRead], res[testguests.SMPLastBSPRead])); err != nil {
		return "", err
	}
	if res[testguests.SMPPingsByICR] != smpPingRounds || res[testguests.SMPPingsByHypercall] != smpPingRounds || res[testguests.SMPFlushesDone] != smpFlushRounds {
		return "", fmtErr("the guest passed after %d and %d round trips and %d flush rounds, want %d, %d and %d",
			res[testguests.SMPPingsByICR], res[testguests.SMPPingsByHypercall], res[testguests.SMPFlushesDone], smpPingRounds, smpPingRounds, smpFlushRounds)
	}
	// VP 0 took 2*smpPingRounds pongs; the AP as many pings and the two
	// interrupts of the GUEST_IDLE step (its self-IPI and VP 0's), and
	// sent a pong for each ping and the self-IPI.
	bsp, ap := p.VP(0).LAPIC().Stats(), p.VP(1).LAPIC().Stats()
	if err := apicStats(bsp, 2*smpPingRounds); err != nil {
		return "", fmtErr("VP 0: %v", err)
	}
	if err := apicStats(ap, 2*smpPingRounds+2); err != nil {
		return "", fmtErr("VP 1: %v", err)
	}
	if ap.IPIsSent != 2*smpPingRounds+1 {
		return "", fmtErr("VP 1's LAPIC sent %d IPIs, want a pong for each of %d pings and a self-IPI", ap.IPIsSent, 2*smpPingRounds)
	}
	if n := p.VP(1).GuestIdles; n != 2 {
		return "", fmtErr("VP 1 read HV_X64_MSR_GUEST_IDLE %d times, want 2", n)
	}
	t, err := testguests.ReadSMPTimings(p.Mem, smpPingRounds, smpFlushRounds)
	if err != nil {
		return "", err
	}
	hz := apicClocks().TSCHz
	icr, hc := tscSpread(t.ByICR, hz), tscSpread(t.ByHypercall, hz)
	flClear, flSet := tscSpread(t.FlushesIFClear, hz), tscSpread(t.FlushesIFSet, hz)
	control := "new page"
	switch res[testguests.SMPControlRead] {
	case 1:
		control = "old page"
	case 2:
	default:
		return "", fmtErr("in the control round the AP read %d, neither page's value", res[testguests.SMPControlRead])
	}
	kick, idle0, idle1 := res[testguests.SMPIdleKick], res[testguests.SMPIdleStart], res[testguests.SMPIdleEnd]
	return fmt.Sprintf("IPI round trip by ICR %s, by hypercall %s; flush call, the AP's IF clear %s, set %s; VPs on host CPUs %d and %d; without a flush the AP read the %s; GUEST_IDLE held the AP %v, until %v after the IPI",
		icr, hc, flClear, flSet, cpu0, cpu1, control, ticksToDuration(int64(idle1-idle0), hz).Round(time.Microsecond),
		ticksToDuration(int64(idle1-kick), hz).Round(100*time.Nanosecond)), nil
}

// tscSpread describes a sample of TSC tick counts at hz as its median
// and range.
func tscSpread(ticks []uint64, hz uint64) string {
	if len(ticks) == 0 {
		return "no samples"
	}
	s := slices.Clone(ticks)
	slices.Sort(s)
	d := func(v uint64) time.Duration { return ticksToDuration(int64(v), hz).Round(100 * time.Nanosecond) }
	return fmt.Sprintf("median %v (%v-%v)", d(s[len(s)/2]), d(s[0]), d(s[len(s)-1]))
}
