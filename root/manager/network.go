package manager

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"gohv/root/config"
	"gohv/root/hostnet"
	"gohv/root/hostnet/diag"
	"gohv/root/vswitch"
	"gohv/root/worker"
)

// DiagPort is the TCP port of the root's diagnostic page on every switch
// it has an address on.
const DiagPort = 80

// network is the root's side of the configuration's networks, made once
// when the manager starts: the switches, the root's own stacks on them,
// and one switch port per NIC. A NIC keeps its port, so its MAC stays
// learned, across its partition's restarts; the port's frames reach
// whichever worker runs the partition now.
type network struct {
	log      *slog.Logger
	switches []*vswitch.Switch
	byName   map[string]*vswitch.Switch
	stacks   []*hostnet.Stack
	nics     map[string][]*nicPort // by partition name, in the NICs' order
}

// nicPort is a NIC's switch port and the worker endpoint its frames go
// to.
type nicPort struct {
	port *vswitch.Port
	to   atomic.Pointer[endpoint]
}

type endpoint struct{ ep interface{ Deliver([]byte) } }

// Deliver is the switch port's: the frame goes to the partition's current
// worker, or nowhere while the partition is not running.
func (n *nicPort) Deliver(frame []byte) {
	if e := n.to.Load(); e != nil {
		e.ep.Deliver(frame)
	}
}

// attach points the port at worker w's NIC i (nil: nowhere).
func (n *nicPort) attach(w *worker.Worker, i int) {
	if w == nil {
		n.to.Store(nil)
		return
	}
	n.to.Store(&endpoint{w.NICEndpoint(i)})
}

// startNetwork builds cfg's switches, the root's stacks on them (serving
// the diagnostic page from status) and every partition's NIC ports.
func startNetwork(cfg *config.Config, log *slog.Logger, status func() diag.Status) (*network, error) {
	n := &network{log: log, byName: map[string]*vswitch.Switch{}, nics: map[string][]*nicPort{}}
	fail := func(err error) (*network, error) {
		n.close()
		return nil, err
	}
	for _, sc := range cfg.Switches {
		sw := vswitch.New(sc.Name, log)
		n.switches = append(n.switches, sw)
		n.byName[sc.Name] = sw
		if sc.RootAddress == "" {
			continue
		}
		if err := n.addRootPort(sw, sc, status); err != nil {
			return fail(fmt.Errorf("switch %s: %w", sc.Name, err))
		}
	}
	for _, pc := range cfg.Partitions {
		for j, nc := range pc.NICs {
			sw := n.byName[nc.Switch]
			mac, err := vswitch.ParseMAC(nc.MAC)
			if sw == nil || err != nil {
				// config.Parse validated both.
				return fail(fmt.Errorf("partition %s NIC %d: switch %q, MAC %q: %v", pc.Name, j, nc.Switch, nc.MAC, err))
			}
			np := &nicPort{}
			np.port, err = sw.Connect(vswitch.PortConfig{Name: fmt.Sprintf("%s/nic%d", pc.Name, j), MAC: mac}, np)
			if err != nil {
				return fail(fmt.Errorf("partition %s NIC %d: %w", pc.Name, j, err))
			}
			n.nics[pc.Name] = append(n.nics[pc.Name], np)
		}
	}
	return n, nil
}

// addRootPort connects the root's own stack to sw and serves the
// diagnostic page on it.
func (n *network) addRootPort(sw *vswitch.Switch, sc config.Switch, status func() diag.Status) error {
	addr, err := netip.ParsePrefix(sc.RootAddress)
	if err != nil {
		return err
	}
	mac, err := vswitch.ParseMAC(sc.RootMAC)
	if err != nil {
		return err
	}
	st, err := hostnet.New(hostnet.Config{MAC: mac, Address: addr, Log: n.log.With("switch", sc.Name)})
	if err != nil {
		return err
	}
	port, err := sw.Connect(vswitch.PortConfig{Name: "root", MAC: mac}, st)
	if err != nil {
		st.Close()
		return err
	}
	st.Attach(port)
	n.stacks = append(n.stacks, st)
	l, err := st.Listen(DiagPort)
	if err != nil {
		return err
	}
	go func() {
		if err := diag.Serve(l, status); err != nil && !errors.Is(err, hostnet.ErrClosed) {
			n.log.Warn("diagnostic page stopped", "switch", sc.Name, "err", err)
		}
	}()
	d, err := st.Listen(diag.DiscardPort)
	if err != nil {
		return err
	}
	go func() {
		if err := diag.ServeDiscard(d); err != nil && !errors.Is(err, hostnet.ErrClosed) {
			n.log.Warn("discard service stopped", "switch", sc.Name, "err", err)
		}
	}()
	n.log.Info("root network endpoint up", "switch", sc.Name, "address", addr.String(), "mac", vswitch.MAC(mac).String(),
		"diagnostics", fmt.Sprintf("http://%s:%d/", addr.Addr(), DiagPort), "discard", fmt.Sprintf("tcp port %d", diag.DiscardPort))
	return nil
}

// workerNICs are partition name's NICs as its worker takes them.
func (n *network) workerNICs(name string) []worker.NIC {
	if n == nil {
		return nil
	}
	var out []worker.NIC
	for _, np := range n.nics[name] {
		out = append(out, worker.NIC{MAC: np.port.MAC(), Port: np.port})
	}
	return out
}

// attach points partition name's NIC ports at worker w (nil: nowhere).
func (n *network) attach(name string, w *worker.Worker) {
	if n == nil {
		return
	}
	for i, np := range n.nics[name] {
		np.attach(w, i)
	}
}

// switchStatus is the diagnostic page's view of the switches.
func (n *network) switchStatus() []diag.Switch {
	if n == nil {
		return nil
	}
	var out []diag.Switch
	for _, sw := range n.switches {
		s := diag.Switch{Name: sw.Name()}
		for _, p := range sw.Ports() {
			s.Ports = append(s.Ports, diag.Port{
				Name: p.Name, MAC: diag.MAC(p.MAC),
				FramesIn: p.Stats.TxFrames, BytesIn: p.Stats.TxBytes,
				DroppedIn: p.Stats.TxDropped + p.Stats.SpoofDropped + p.Stats.MalformedDropped,
				FramesOut: p.Stats.RxFrames, BytesOut: p.Stats.RxBytes, DroppedOut: p.Stats.RxDropped,
			})
		}
		out = append(out, s)
	}
	return out
}

func (n *network) close() {
	if n == nil {
		return
	}
	for _, st := range n.stacks {
		st.Close()
	}
	for _, sw := range n.switches {
		sw.Close()
	}
}

func (m *Manager) setState(name, state string) {
	m.mu.Lock()
	m.states[name] = state
	m.mu.Unlock()
}

// status is what the diagnostic page shows: every configured partition
// with its state and NICs, and the switches with their ports' counters.
func (m *Manager) status() diag.Status {
	m.mu.Lock()
	var s diag.Status
	if m.cfg != nil {
		for _, pc := range m.cfg.Partitions {
			dp := diag.Partition{Name: pc.Name, State: m.states[pc.Name], VPs: pc.VPs, MemoryMiB: pc.MemoryMiB}
			for _, nc := range pc.NICs {
				mac, _ := vswitch.ParseMAC(nc.MAC)
				dp.NICs = append(dp.NICs, diag.NIC{MAC: diag.MAC(mac), Switch: nc.Switch})
			}
			s.Partitions = append(s.Partitions, dp)
		}
	}
	m.mu.Unlock()
	s.Switches = m.net.switchStatus()
	return s
}
