package checks

import (
	"errors"
	"fmt"
	"time"

	"gohv/hv"
	"gohv/testguests"
)

// checkVPMigrate: a VP moves to a host CPU that runs no VP when its own
// runs another, and its guest goes on there. With u host CPUs that run
// VPs (all but the boot CPU), u+1 spinning partitions put the first and
// the last on one CPU; once the second, alone on its CPU, stops, one of
// the two moves there (hv's migrate.go: at a slice end once it has
// shared its CPU for 50 ms), leaves guest mode there again and again (its slices' host
// interrupts), and every partition stops on request at the end, the
// moved guest still in its loop. Needs three host CPUs or more.
func checkVPMigrate(env *Env) (string, error) {
	n := env.CPUs
	if n < 3 {
		return "", fmt.Errorf("%w: a VP moves only between CPUs besides the boot CPU, and this host has %d CPUs (it needs 3 or more)", errCannotRunHere, n)
	}
	u := n - 1
	var parts []*hv.Partition
	defer func() {
		for _, p := range parts {
			p.Stop("the check is done")
			destroy(p)
		}
	}()
	for i := range u + 1 {
		p, err := env.start(fmt.Sprintf("move%d", i), 4<<20, testguests.Spin, testguests.Options{}, nil)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	first, last, alone := parts[0].VP(0), parts[u].VP(0), parts[1].VP(0)
	if err := waitFor(2*time.Second, func() bool { return first.HostCPU() >= 0 && last.HostCPU() >= 0 && alone.HostCPU() >= 0 }); err != nil {
		return "", fmtErr("the VPs did not all start: %v", err)
	}
	shared, freed := first.HostCPU(), alone.HostCPU()
	if last.HostCPU() != shared || freed == shared {
		return "", fmtErr("placement put the VPs of move0, move1 and move%d on host CPUs %d, %d and %d; want the first and last together",
			u, shared, freed, last.HostCPU())
	}
	t0 := time.Now()
	parts[1].Stop("the check frees its host CPU")
	<-parts[1].Done()
	if err := waitFor(5*time.Second, func() bool { return first.Migrations()+last.Migrations() > 0 }); err != nil {
		return "", fmtErr("neither VP sharing host CPU %d moved to host CPU %d, which runs none now: %v; placed %v",
			shared, freed, err, placedOn(env.hv, n))
	}
	took := time.Since(t0)
	moved, stayed, name := first, last, parts[0].Name
	if last.Migrations() > 0 {
		moved, stayed, name = last, first, parts[u].Name
	}
	if moved.HostCPU() != freed || stayed.HostCPU() != shared {
		return "", fmtErr("%s's VP moved to host CPU %d and the other stayed on %d; want %d and %d",
			name, moved.HostCPU(), stayed.HostCPU(), freed, shared)
	}
	exits := moved.GuestExits()
	time.Sleep(200 * time.Millisecond)
	there := moved.GuestExits() - exits
	detail := fmt.Sprintf("%s's VP moved from host CPU %d to %d %v after the partition there was told to stop; %d exits there in 200 ms; %d moves in all",
		name, shared, freed, took.Round(time.Millisecond), there, first.Migrations()+last.Migrations())
	if there == 0 {
		return "", fmtErr("%s: it did not run its guest on the new CPU", detail)
	}
	var errs []error
	for _, p := range parts {
		if p == parts[1] {
			continue
		}
		p.Stop("the check is done")
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			return "", fmtErr("%s: partition %s still running 5 s after Stop", detail, p.Name)
		}
		if r := p.Result(); r.State != hv.StateStopped || !errors.Is(r.Err, hv.ErrStopRequested) {
			errs = append(errs, fmt.Errorf("%s: %v, want stopped on request", p.Name, r))
		}
	}
	if rip := moved.Regs().RIP; rip < testguests.CodeBase || rip >= testguests.CodeBase+0x100 {
		errs = append(errs, fmt.Errorf("the moved guest ended at RIP %#x, outside its loop at %#x", rip, testguests.CodeBase))
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmtErr("%s: %v", detail, err)
	}
	return detail, nil
}

// waitFor polls cond every millisecond until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %v", d)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// placedOn is how many VPs each of the first n host CPUs runs.
func placedOn(h *hv.Hypervisor, n int) []int {
	p := h.PlacedVPs()
	return p[:n]
}
