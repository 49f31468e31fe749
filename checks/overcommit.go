package checks

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"gohv/hv"
	"gohv/testguests"
	"gohv/x86"
)

// overcommitRun is how long checkOvercommit lets its guests spin.
const overcommitRun = time.Second

// checkOvercommit: a host with more VPs than CPUs still runs every one.
// Twice as many spinning partitions as there are host CPUs that run VPs,
// plus one, run for overcommitRun; each guest's loop counts in RAX, which
// is read once they have all stopped on request. Every one advanced, and
// the least at least a tenth of the most: the VPs sharing a CPU take
// turns in 2 ms slices (three on one CPU get a third each, two a half).
func checkOvercommit(env *Env) (string, error) {
	usable := max(env.CPUs-1, 1) // the boot CPU runs no VP while others are online
	n := 2*usable + 1
	var parts []*hv.Partition
	defer func() {
		for _, p := range parts {
			p.Stop("the check is done")
			destroy(p)
		}
	}()
	for i := range n {
		p, err := env.start(fmt.Sprintf("over%d", i), 4<<20, testguests.Spin, testguests.Options{}, nil)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	time.Sleep(overcommitRun)
	placed := placedOn(env.hv, env.CPUs)
	for _, p := range parts {
		p.Stop("the check is done")
	}
	counts := make([]uint64, n)
	var errs []error
	for i, p := range parts {
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			return "", fmtErr("partition %s still running 5 s after Stop", p.Name)
		}
		if r := p.Result(); r.State != hv.StateStopped || !errors.Is(r.Err, hv.ErrStopRequested) {
			errs = append(errs, fmt.Errorf("%s: %v, want stopped on request", p.Name, r))
		}
		counts[i] = p.VP(0).Regs().GPR[x86.RAX]
	}
	lo, hi := slices.Min(counts), slices.Max(counts)
	detail := fmt.Sprintf("%d spinning VPs on %d host CPUs for %v: loop counts from %d to %d (%v)",
		n, usable, overcommitRun, lo, hi, counts)
	if err := errors.Join(errs...); err != nil {
		return "", fmtErr("%s: %v", detail, err)
	}
	if lo == 0 || lo < hi/10 {
		return "", fmtErr("%s: a VP ran less than a tenth of the most (VPs per host CPU before the stop %v)", detail, placed)
	}
	return detail, nil
}
