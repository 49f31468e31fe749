package checks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"gohv/hv"
	"gohv/metal"
	"gohv/testguests"
	"gohv/x86"
)

// isolation runs two partitions that fill their RAM with different patterns
// at the same time, then two that probe outside their RAM: one at a
// guest-physical address beyond it, one at the host-physical address of a
// root page holding a canary. The probes must end their partitions; the
// patterns and the canary must be intact.
func checkIsolation(env *Env) (string, error) {
	const ram = 8 << 20
	pat := [2]uint64{0xa5a5_0001_5a5a_0001, 0xa5a5_0002_5a5a_0002}
	var ps [2]*hv.Partition
	for i := range ps {
		var err error
		ps[i], err = env.start(fmt.Sprintf("fill%d", i), ram, testguests.Pattern, testguests.Options{}, func(p *hv.Partition) error {
			r := p.VP(0).Regs()
			r.GPR[x86.RBX], r.GPR[x86.RSI], r.GPR[x86.RDI] = pat[i], testguests.DataBase, ram
			return nil
		})
		if err != nil {
			return "", err
		}
		defer ps[i].Destroy()
	}
	for i, p := range ps {
		if r := p.WaitOrStop(20 * time.Second); !r.PoweredOffWith(0) {
			return "", fmt.Errorf("fill%d: %v", i, r)
		}
		buf := make([]byte, ram-testguests.DataBase)
		if err := p.Mem.ReadRAM(testguests.DataBase, buf); err != nil {
			return "", err
		}
		for off := 0; off < len(buf); off += 8 {
			if v := binary.LittleEndian.Uint64(buf[off:]); v != pat[i] {
				return "", fmt.Errorf("fill%d: RAM at %#x holds %#x, want %#x", i, testguests.DataBase+off, v, pat[i])
			}
		}
	}
	// The canary must sit above the probing guest's RAM, or the probe would
	// read the guest's own page at that address and show nothing.
	var canary uint64
	var err error
	var below []uint64
	for canary < ram && err == nil {
		var pa uint64
		if pa, err = metal.AllocPage(); err == nil && pa < ram {
			below = append(below, pa)
		} else if err == nil {
			canary = pa
		}
	}
	for _, pa := range below {
		metal.FreePage(pa)
	}
	if err != nil {
		return "", err
	}
	defer metal.FreePage(canary)
	cp := metal.PhysPage(canary)
	for i := range cp {
		cp[i] = 0xc3
	}
	for _, probe := range []uint64{ram + 16<<20, canary} {
		p, err := env.start("probe", ram, testguests.Pattern, testguests.Options{}, func(p *hv.Partition) error {
			r := p.VP(0).Regs()
			r.GPR[x86.RBX], r.GPR[x86.RSI], r.GPR[x86.RDI], r.GPR[x86.R8] = 1, testguests.DataBase, testguests.DataBase+4096, probe
			return nil
		})
		if err != nil {
			return "", err
		}
		r := p.WaitOrStop(10 * time.Second)
		p.Destroy()
		if r.State != hv.StateCrashed || !errors.Is(r.Err, hv.ErrOutsideMemory) {
			return "", fmt.Errorf("probe of %#x: %v, want the partition ended for an access outside its memory map", probe, r)
		}
		fmt.Fprintf(env.Out, "gohv: isolation probe of gpa %#x ended its partition: %v\n", probe, r.Err)
	}
	for i := range cp {
		if cp[i] != 0xc3 {
			return "", errors.New("the root's canary page changed")
		}
	}
	return "two partitions kept their patterns; probes outside RAM and at the root's canary page ended their partitions", nil
}
