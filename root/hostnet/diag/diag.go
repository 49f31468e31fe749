// Package diag is the root partition's diagnostic HTTP service: what the
// partitions and virtual switches are doing, as a short text page for a
// person (GET /) and as JSON for tools (GET /partitions, /switches,
// /status). It serves on any net.Listener — in the image, one from
// hostnet.Stack.Listen.
//
// It is decoupled from the hypervisor: the caller fills the plain data
// structs of Status (from the partition manager and the switches) in a
// function the service calls on every request; this package imports the
// standard library only.
//
// Invariants: every response is built from one Status snapshot; only GET
// and HEAD are served (405 otherwise); a request's header must arrive
// within ReadHeaderTimeout, so a stalled client holds no more than its
// connection.
package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is what the service reports, filled by the caller.
type Status struct {
	Partitions []Partition `json:"partitions"`
	Switches   []Switch    `json:"switches"`
}

// Partition is one child partition.
type Partition struct {
	Name      string `json:"name"`
	State     string `json:"state"` // e.g. "running", "stopped"
	VPs       int    `json:"vps"`
	MemoryMiB uint64 `json:"memory_mib"`
	NICs      []NIC  `json:"nics"`
}

// NIC is a partition's network adapter and the switch it is plugged into.
type NIC struct {
	MAC    MAC    `json:"mac"`
	Switch string `json:"switch"`
}

// Switch is one virtual switch.
type Switch struct {
	Name  string `json:"name"`
	Ports []Port `json:"ports"`
}

// Port is one switch port and its counters, as the switch sees them
// (In: frames the port's owner sent into the switch).
type Port struct {
	Name       string `json:"name"`
	MAC        MAC    `json:"mac"`
	FramesIn   uint64 `json:"frames_in"`
	FramesOut  uint64 `json:"frames_out"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	DroppedIn  uint64 `json:"dropped_in"`
	DroppedOut uint64 `json:"dropped_out"`
}

// MAC is an Ethernet address; in JSON and text it is written
// "00:15:5d:00:00:01".
type MAC [6]byte

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: six colon-separated
// hex octets.
func (m *MAC) UnmarshalText(b []byte) error {
	hw, err := net.ParseMAC(string(b))
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("diag: MAC %q: want six colon-separated hex octets", b)
	}
	copy(m[:], hw)
	return nil
}

// ReadHeaderTimeout bounds how long a client may take to send a request's
// header.
const ReadHeaderTimeout = 10 * time.Second

// Handler serves the pages, calling status once per request.
func Handler(status func() Status) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeText(w, status())
	})
	mux.HandleFunc("GET /partitions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, nonNil(status().Partitions))
	})
	mux.HandleFunc("GET /switches", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, nonNil(status().Switches))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s := status()
		s.Partitions, s.Switches = nonNil(s.Partitions), nonNil(s.Switches)
		writeJSON(w, s)
	})
	return mux
}

// Serve answers requests on l until l fails (e.g. is closed); it returns
// that error, as http.Server.Serve does.
func Serve(l net.Listener, status func() Status) error {
	srv := &http.Server{Handler: Handler(status), ReadHeaderTimeout: ReadHeaderTimeout}
	if err := srv.Serve(l); err != nil {
		return fmt.Errorf("diag: serve on %s: %w", l.Addr(), err)
	}
	return nil
}

// nonNil makes an empty list "[]" in JSON rather than "null".
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a failed write is the client's going away
}

// writeText is the human-readable page: one block per partition and
// switch, aligned columns.
func writeText(w io.Writer, s Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "gohv: %d partitions, %d switches\n\n", len(s.Partitions), len(s.Switches))
	if len(s.Partitions) > 0 {
		fmt.Fprintln(tw, "PARTITION\tSTATE\tVPS\tMEMORY\tNICS")
		for _, p := range s.Partitions {
			nics := make([]string, len(p.NICs))
			for i, n := range p.NICs {
				nics[i] = n.MAC.String() + "@" + n.Switch
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d MiB\t%s\n", p.Name, p.State, p.VPs, p.MemoryMiB, strings.Join(nics, " "))
		}
		fmt.Fprintln(tw)
	}
	for _, sw := range s.Switches {
		fmt.Fprintf(tw, "SWITCH %s\n", sw.Name)
		fmt.Fprintln(tw, "PORT\tMAC\tFRAMES IN\tFRAMES OUT\tDROPPED IN\tDROPPED OUT")
		for _, p := range sw.Ports {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", p.Name, p.MAC, p.FramesIn, p.FramesOut, p.DroppedIn, p.DroppedOut)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}
