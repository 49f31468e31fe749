// Package checks is the image's registry of named in-image checks: the
// suites a kernel command-line word runs ("selftest" for metal and the Go
// runtime, "hvtest" for child partitions on the CPU's virtualization
// extension, "iommutest" for the IOMMU against a real device's DMA) and the
// benchmark ("bench"). Each check prints one line in the serial protocol,
//
//	gohv: check <name> PASS|FAIL <detail>
//
// and the host-side image tests (tools/imagetest, tools/bochstest) take the
// names from here, so a name is written once. Adding a check is one
// function and one line in its suite.
package checks

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/iommu"
	"gohv/metal/pci"
)

// Check is one named check. Run returns a detail line on success or an
// error saying what failed; a panic inside Run is the check's failure.
type Check struct {
	Name string
	Run  func(*Env) (detail string, err error)
}

// errCannotRunHere is what a check returns (wrapped, with the reason) when
// this machine cannot run it: a check that needs several host CPUs on a
// host with one. A run of the whole suite says so and goes on; a run that
// names the check fails it.
var errCannotRunHere = errors.New("cannot run on this machine")

// Suite is an ordered list of checks run by one command-line word.
type Suite struct {
	// Word is the kernel command-line word that runs the suite;
	// "word=a,b" runs only checks a and b.
	Word string
	// Setup, if set, runs before the checks; an error fails the suite
	// (reported as the check "<word>-setup").
	Setup  func(*Env) error
	Checks []Check
	// After, if set, runs when the checks are done (a report line).
	After func(*Env)
}

// Names lists the suite's check names in order.
func (s *Suite) Names() []string {
	n := make([]string, len(s.Checks))
	for i, c := range s.Checks {
		n[i] = c.Name
	}
	return n
}

// Suites are the suites the image knows, by command-line word.
var Suites = []*Suite{&Selftest, &HVTest, &IOMMUTest}

// Env is what checks get from the image: how to reach the machine and the
// hypervisor. cmd/gohv fills it.
type Env struct {
	// Out is the serial console (shared, a line at a time).
	Out io.Writer
	// Log is the root's structured log.
	Log *slog.Logger
	// Host is the hypervisor's physical memory.
	Host vcpu.HostMemory
	// OpenHypervisor enables the CPU's extension (and reports it).
	OpenHypervisor func() (*hv.Hypervisor, error)
	// MainTSC is the TSC read first thing in main (for Bench).
	MainTSC uint64
	// CPUs is how many host CPUs are online.
	CPUs int
	// IOMMUs are the remapping units the boot turned on (every device
	// blocked); PCI and PCIFunctions the host's configuration space and
	// the functions the boot report enumerated.
	IOMMUs       []iommu.Unit
	PCI          pci.Config
	PCIFunctions []pci.Function

	hv          *hv.Hypervisor // set by HVTest's setup
	pagesBefore uint64
	stall       *stallMeter // runs while a check does (runOne)
}

// Find returns the suite args ask for (its word, or "word=names"), and the
// selected check names (nil for all).
func Find(args []string) (*Suite, []string) {
	for _, a := range args {
		word, list, hasList := strings.Cut(a, "=")
		for _, s := range Suites {
			if s.Word != word {
				continue
			}
			if hasList {
				return s, strings.Split(list, ",")
			}
			return s, nil
		}
	}
	return nil, nil
}

// Run runs the suite's checks (only those named in only, when not nil)
// and prints one check line each; the result is true when all passed and
// every name in only exists.
func (s *Suite) Run(env *Env, only []string) bool {
	ok := true
	for _, name := range only {
		if !slices.Contains(s.Names(), name) {
			fmt.Fprintf(env.Out, "gohv: check %s FAIL no such check in %s (have %s)\n", name, s.Word, strings.Join(s.Names(), ", "))
			ok = false
		}
	}
	if s.Setup != nil {
		if err := s.Setup(env); err != nil {
			fmt.Fprintf(env.Out, "gohv: check %s-setup FAIL %v\n", s.Word, err)
			return false
		}
	}
	for _, c := range s.Checks {
		if only != nil && !slices.Contains(only, c.Name) {
			continue
		}
		detail, err := runOne(c, env)
		if only == nil && errors.Is(err, errCannotRunHere) {
			fmt.Fprintf(env.Out, "gohv: check %s not run: %v\n", c.Name, err)
			continue
		}
		if err != nil {
			ok = false
			fmt.Fprintf(env.Out, "gohv: check %s FAIL %v\n", c.Name, err)
			continue
		}
		fmt.Fprintf(env.Out, "gohv: check %s PASS %s\n", c.Name, detail)
	}
	if s.After != nil {
		s.After(env)
	}
	return ok
}

// runOne turns a panic inside a check into its failure, and measures the
// root's own timer lateness while the check runs (stallMeter).
func runOne(c Check, env *Env) (detail string, err error) {
	env.stall = startStallMeter()
	defer func() {
		env.stall.Stop()
		env.stall = nil
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Run(env)
}
