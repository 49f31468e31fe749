package vswitch

import "time"

// Learning-table bounds.
const (
	// AgingTime is how long a learned address stays without a frame from
	// it: IEEE 802.1Q-2018 8.8.3's recommended default ageing time, 300 s.
	// An aged entry is treated as unknown (its frames flood) and replaced
	// by the next frame from the address. Configured addresses never age.
	AgingTime = 300 * time.Second
	// MaxLearned bounds the learned (not configured) entries, so a port
	// with AllowSpoofing that sends from ever-new addresses cannot grow
	// the table without limit. When the table is full the switch drops the
	// aged entries (at most once per sweepInterval) and, if it is still
	// full, forwards the frame without learning its source.
	MaxLearned = 4096

	sweepInterval = time.Second
)

// entry is where frames to one address go.
type entry struct {
	port *Port
	// static: the port's configured MAC, learned at Connect. It never
	// ages and never moves: no other port may send from it.
	static bool
	seen   time.Duration // the switch clock at the last frame from it
}

// table is the learning table: address → port. It belongs to the Switch
// and is guarded by Switch.mu (the forwarder holds it for a whole round;
// Connect and Port.Close take it). Sized at creation so that learning
// does not grow the map in steady state.
type table struct {
	entries   map[MAC]entry
	learned   int // entries with static false
	lastSweep time.Duration
}

func newTable() table {
	return table{entries: make(map[MAC]entry, MaxLearned)}
}

// lookup returns the port a unicast address was learned on, nil when it is
// unknown or aged.
func (t *table) lookup(m MAC, now time.Duration) *Port {
	e, ok := t.entries[m]
	if !ok || (!e.static && now-e.seen >= AgingTime) {
		return nil
	}
	return e.port
}

// learn records that a frame from m came in on p. It returns false when m
// is another port's configured address (a spoofed source: the frame must be
// dropped). A learned entry on another port moves to p.
func (t *table) learn(m MAC, p *Port, now time.Duration) bool {
	e, ok := t.entries[m]
	switch {
	case ok && e.static:
		return e.port == p
	case ok:
		t.entries[m] = entry{port: p, seen: now}
		return true
	}
	if t.learned >= MaxLearned {
		t.sweep(now)
		if t.learned >= MaxLearned {
			return true // forwarded, not learned
		}
	}
	t.entries[m] = entry{port: p, seen: now}
	t.learned++
	return true
}

// sweep drops the aged entries, at most once per sweepInterval.
func (t *table) sweep(now time.Duration) {
	if now-t.lastSweep < sweepInterval && t.lastSweep != 0 {
		return
	}
	t.lastSweep = now
	for m, e := range t.entries {
		if !e.static && now-e.seen >= AgingTime {
			delete(t.entries, m)
			t.learned--
		}
	}
}

// setStatic records p's configured address, replacing a learned entry for
// it. The caller has checked that no other port has m configured.
func (t *table) setStatic(m MAC, p *Port) {
	if e, ok := t.entries[m]; ok && !e.static {
		t.learned--
	}
	t.entries[m] = entry{port: p, static: true}
}

// isStatic reports whether m is a connected port's configured address.
func (t *table) isStatic(m MAC) bool {
	e, ok := t.entries[m]
	return ok && e.static
}

// forget drops every entry of p, configured and learned.
func (t *table) forget(p *Port) {
	for m, e := range t.entries {
		if e.port == p {
			delete(t.entries, m)
			if !e.static {
				t.learned--
			}
		}
	}
}
