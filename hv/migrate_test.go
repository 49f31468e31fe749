package hv

import (
	"slices"
	"testing"
)

// migrationPartition starts a partition's VPs as far as their threads
// would before the first entry (placed in VP order, bound), on a host of
// cpus CPUs, without running them.
func migrationPartition(t *testing.T, host *testHost, b *fakeBackend, c Config) (*Hypervisor, *Partition) {
	t.Helper()
	h := New(b, host, NewCPUModel(), nil)
	c.Name, c.RAMBytes, c.Console = "m", 1<<20, &recorder{}
	p, err := h.NewPartition(c)
	if err != nil {
		t.Fatal(err)
	}
	p.placeVPs()
	for i := range p.VPCount() {
		if err := p.VP(i).bind(); err != nil {
			t.Fatal(err)
		}
	}
	return h, p
}

func (h *Hypervisor) busyCounts(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = h.busy[i].Load()
	}
	return out
}

// TestVPMovesOffASharedCPU: of a 4-VP partition on a host of four CPUs
// (VPs on host CPUs 3, 2, 1, 3), VP 3 shares CPU 3 with VP 0; once VP 1
// halts, CPU 2 runs no VP and VP 3 moves there at its next slice end:
// the backend lets go on CPU 3 and binds on CPU 2, and the counts follow.
// It moves only once it has shared its CPU for migrateShared, and not
// again within migrateHold; VP 1, woken and sharing CPU 2 when VP 0
// halts, moves to CPU 3 once it has shared as long.
func TestVPMovesOffASharedCPU(t *testing.T) {
	host := newTestHost()
	host.cpus = 4
	b := &fakeBackend{}
	h, p := migrationPartition(t, host, b, Config{VPs: 4})
	if got := h.busyCounts(4); !slices.Equal(got, []int32{0, 1, 1, 2}) {
		t.Fatalf("busy VPs per host CPU %v, want [0 1 1 2]", got)
	}
	vp0, vp1, vp3 := p.VP(0), p.VP(1), p.VP(3)
	host.now.Store(int64(migrateHold))
	vp3.maybeMigrate()
	if vp3.Migrations() != 0 {
		t.Fatal("VP 3 moved although every usable CPU runs a VP")
	}

	vp1.setBusy(false) // halted
	vp3.maybeMigrate()
	if vp3.Migrations() != 0 {
		t.Fatal("VP 3 moved before it had shared its CPU for migrateShared")
	}
	host.now.Add(int64(migrateShared))
	vp3.maybeMigrate()
	if vp3.hostCPU.Load() != 2 || vp3.ranOn.Load() != 2 || vp3.Migrations() != 1 {
		t.Fatalf("VP 3 on host CPU %d (ran on %d), %d moves; want CPU 2, 1 move", vp3.hostCPU.Load(), vp3.ranOn.Load(), vp3.Migrations())
	}
	if got := b.vcpus[3].binds; !slices.Equal(got, []int{3, 2}) || b.vcpus[3].bound != 2 {
		t.Errorf("VP 3's backend bound on %v (now %d), want [3 2]", got, b.vcpus[3].bound)
	}
	if got := h.busyCounts(4); !slices.Equal(got, []int32{0, 1, 1, 1}) {
		t.Errorf("busy VPs per host CPU %v, want [0 1 1 1]", got)
	}
	if got := h.PlacedVPs(); got[1] != 1 || got[2] != 2 || got[3] != 1 {
		t.Errorf("placed %v, want 1, 2, 1 on CPUs 1 to 3", got[:4])
	}

	vp1.setBusy(true) // woken: CPU 2 runs two
	vp0.setBusy(false)
	host.now.Add(int64(migrateHold) / 2)
	vp3.maybeMigrate()
	if vp3.Migrations() != 1 {
		t.Error("VP 3 moved again within migrateHold")
	}
	vp1.maybeMigrate() // VP 1 finds VP 3 on its CPU: it shares from now
	host.now.Add(int64(migrateShared))
	vp1.maybeMigrate()
	if vp1.hostCPU.Load() != 3 || vp1.Migrations() != 1 {
		t.Errorf("VP 1 on host CPU %d after %d moves, want CPU 3", vp1.hostCPU.Load(), vp1.Migrations())
	}
	if p.state != StateCreated {
		t.Errorf("partition %v", p.state)
	}
}

// TestMigrationTarget: the target is a usable CPU other than the VP's
// that runs no VP, the one with the fewest VPs placed (halted there), the
// highest of equals; never the boot CPU while others are online.
func TestMigrationTarget(t *testing.T) {
	host := newTestHost()
	host.cpus = 5
	h := New(&fakeBackend{}, host, NewCPUModel(), nil)
	h.placed = [len(h.placed)]int{0, 1, 2, 2, 0}
	h.busy[1].Store(0)
	h.busy[2].Store(0)
	h.busy[3].Store(2)
	h.busy[4].Store(0)
	if got := h.migrationTarget(3); got != 4 {
		t.Errorf("target %d, want 4 (no VP placed)", got)
	}
	h.placed[4] = 3
	h.busy[4].Store(1)
	if got := h.migrationTarget(3); got != 1 {
		t.Errorf("target %d, want 1 (fewest placed of the idle CPUs 1 and 2)", got)
	}
	h.busy[1].Store(1)
	h.busy[2].Store(1)
	if got := h.migrationTarget(3); got != -1 {
		t.Errorf("target %d with every other CPU busy, want -1 (CPU 0 is the boot CPU)", got)
	}
}

// TestPinnedVPsStay: a partition whose configuration names its host CPUs
// keeps its VPs there however the others are loaded.
func TestPinnedVPsStay(t *testing.T) {
	host := newTestHost()
	host.cpus = 4
	b := &fakeBackend{}
	_, p := migrationPartition(t, host, b, Config{VPs: 2, HostCPUs: []int{3}})
	host.now.Store(int64(migrateHold))
	for i := range 2 {
		p.VP(i).maybeMigrate()
		if c := p.VP(i).hostCPU.Load(); c != 3 || p.VP(i).Migrations() != 0 {
			t.Errorf("pinned VP %d on host CPU %d after %d moves", i, c, p.VP(i).Migrations())
		}
	}
}

// TestFailedMoveStays: a move whose new CPU refuses the thread leaves the
// VP bound where it was, running, and counts no move.
func TestFailedMoveStays(t *testing.T) {
	host := newTestHost()
	host.cpus = 4
	b := &fakeBackend{}
	h, p := migrationPartition(t, host, b, Config{VPs: 4})
	host.pinFail = 2
	p.VP(1).setBusy(false)
	host.now.Store(int64(migrateHold))
	vp3 := p.VP(3)
	vp3.maybeMigrate()
	host.now.Add(int64(migrateShared))
	vp3.maybeMigrate()
	if got := b.vcpus[3].binds; !slices.Equal(got, []int{3, 3}) {
		t.Errorf("VP 3's backend bound on %v, want [3 3] (back where it was)", got)
	}
	if vp3.hostCPU.Load() != 3 || vp3.Migrations() != 0 || b.vcpus[3].bound != 3 || host.CurrentCPU() != 3 {
		t.Fatalf("VP 3 on host CPU %d (backend %d, thread %d) after %d moves; want it back on 3",
			vp3.hostCPU.Load(), b.vcpus[3].bound, host.CurrentCPU(), vp3.Migrations())
	}
	if got := h.busyCounts(4); !slices.Equal(got, []int32{0, 1, 0, 2}) {
		t.Errorf("busy VPs per host CPU %v, want [0 1 0 2]", got)
	}
	if p.state != StateCreated {
		t.Errorf("partition %v after a failed move", p.state)
	}
}

// TestSharingMustLast: a VP that finds its CPU shared, then not, then
// shared again starts counting migrateShared anew.
func TestSharingMustLast(t *testing.T) {
	host := newTestHost()
	host.cpus = 4
	b := &fakeBackend{}
	_, p := migrationPartition(t, host, b, Config{VPs: 4})
	vp0, vp1, vp3 := p.VP(0), p.VP(1), p.VP(3)
	vp1.setBusy(false) // CPU 2 free
	host.now.Store(int64(migrateHold))
	vp3.maybeMigrate() // shares CPU 3 with VP 0 from now
	vp0.setBusy(false)
	host.now.Add(int64(migrateShared) / 2)
	vp3.maybeMigrate() // alone: not sharing
	vp0.setBusy(true)
	host.now.Add(int64(migrateShared) / 2)
	vp3.maybeMigrate() // sharing again, from now
	if vp3.Migrations() != 0 {
		t.Fatal("VP 3 moved although its CPU had been shared for less than migrateShared at a stretch")
	}
	host.now.Add(int64(migrateShared))
	vp3.maybeMigrate()
	if vp3.Migrations() != 1 || vp3.HostCPU() != 2 {
		t.Errorf("VP 3 on host CPU %d after %d moves, want CPU 2", vp3.HostCPU(), vp3.Migrations())
	}
}
