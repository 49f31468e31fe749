package checks

import (
	"time"

	"gohv/hv"
	"gohv/testguests"
)

// start runs a test guest in a new partition on the suite's hypervisor.
func (env *Env) start(name string, ram uint64, prog testguests.Program, o testguests.Options,
	setup func(p *hv.Partition) error) (*hv.Partition, error) {
	return testguests.Start(env.hv, hv.Config{Name: name, RAMBytes: ram, Console: env.Out}, prog, o, setup)
}

// run runs a test guest and waits for it to end (stopping it after
// timeout).
func (env *Env) run(name string, ram uint64, prog testguests.Program, o testguests.Options,
	setup func(p *hv.Partition) error, timeout time.Duration) (*hv.Partition, hv.Result, error) {
	p, err := env.start(name, ram, prog, o, setup)
	if err != nil {
		return nil, hv.Result{}, err
	}
	return p, p.WaitOrStop(timeout), nil
}

// destroy frees a partition that may be nil (its setup failed).
func destroy(p *hv.Partition) {
	if p != nil {
		p.Destroy()
	}
}

// poweredOff is the usual verdict of a test guest: it stopped itself
// through the debug-exit port with status want.
func poweredOff(r hv.Result, want uint32, what string) error {
	if !r.PoweredOffWith(want) {
		return fmtErr("%s: %v, want a power-off with status %#x", what, r, want)
	}
	return nil
}
