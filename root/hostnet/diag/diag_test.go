package diag

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var sample = Status{
	Partitions: []Partition{
		{Name: "linux1", State: "running", VPs: 2, MemoryMiB: 512, NICs: []NIC{{MAC: MAC{0, 0x15, 0x5d, 1, 2, 3}, Switch: "sw0"}}},
		{Name: "mb0", State: "stopped", VPs: 1, MemoryMiB: 16},
	},
	Switches: []Switch{{Name: "sw0", Ports: []Port{{Name: "root", MAC: MAC{0, 0x15, 0x5d, 0, 0, 1}, FramesIn: 7, DroppedOut: 3}}}},
}

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestTextPage(t *testing.T) {
	res, body := get(t, Handler(func() Status { return sample }), "GET", "/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%s %s", res.Status, res.Header.Get("Content-Type"))
	}
	for _, s := range []string{"2 partitions, 1 switches", "linux1", "00:15:5d:01:02:03@sw0", "mb0", "stopped", "16 MiB", "SWITCH sw0", "00:15:5d:00:00:01"} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q:\n%s", s, body)
		}
	}
}

func TestJSONRoundTrips(t *testing.T) {
	h := Handler(func() Status { return sample })
	res, body := get(t, h, "GET", "/partitions")
	if res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", res.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, `"mac": "00:15:5d:01:02:03"`) {
		t.Errorf("MAC not written as text:\n%s", body)
	}
	var parts []Partition
	if err := json.Unmarshal([]byte(body), &parts); err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].NICs[0] != sample.Partitions[0].NICs[0] || parts[1].MemoryMiB != 16 {
		t.Errorf("got %+v", parts)
	}
	var st Status
	if _, body := get(t, h, "GET", "/status"); json.Unmarshal([]byte(body), &st) != nil || st.Switches[0].Ports[0] != sample.Switches[0].Ports[0] {
		t.Errorf("/status: %s", body)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	h := Handler(func() Status { return Status{} })
	for _, p := range []string{"/partitions", "/switches"} {
		if _, body := get(t, h, "GET", p); strings.TrimSpace(body) != "[]" {
			t.Errorf("%s: %q", p, body)
		}
	}
}

func TestOnlyGET(t *testing.T) {
	h := Handler(func() Status { return sample })
	if res, _ := get(t, h, "POST", "/partitions"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", res.Status)
	}
	if res, _ := get(t, h, "GET", "/nonesuch"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %s", res.Status)
	}
}

func TestMACText(t *testing.T) {
	var m MAC
	if err := m.UnmarshalText([]byte("00:15:5D:0a:0b:0c")); err != nil || m != (MAC{0, 0x15, 0x5d, 10, 11, 12}) {
		t.Errorf("%v %v", m, err)
	}
	for _, bad := range []string{"", "00:15:5d", "00:15:5d:00:00:00:00:01", "zz:15:5d:00:00:01"} {
		if err := m.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestServeReturnsWhenListenerCloses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(l, func() Status { return sample }) }()
	res, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	l.Close()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "diag: serve on") {
		t.Errorf("Serve: %v", err)
	}
}
