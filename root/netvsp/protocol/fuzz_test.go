package protocol

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds any bytes to both NVSP parsers and, as a batch, to
// ParseRNDIS: none may panic; every error is a FieldError (ErrMalformed)
// or ErrUnknownType; every message parsed survives Append and a re-parse;
// a batch walk always advances; a parsed packet's PPI chain walks to its
// end.
func FuzzParse(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for dir, parse := range map[string]func([]byte) (Message, error){"guest": ParseFromGuest, "host": ParseFromHost} {
			m, err := parse(b)
			if err != nil {
				checkErr(t, err)
				continue
			}
			again, err := parse(m.Append(nil))
			if err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("nvsp from %s: %#v re-parsed as %#v, %v", dir, m, again, err)
			}
		}
		for rest := b; len(rest) > 0; {
			m, n, err := ParseRNDIS(rest)
			if err != nil {
				checkErr(t, err)
				break
			}
			if n < RNDISHeaderSize || n > len(rest) {
				t.Fatalf("rndis took %d of %d bytes", n, len(rest))
			}
			rest = rest[n:]
			if p, ok := m.(PacketMsg); ok {
				total := 0
				for r := range PPIs(p.PPI) {
					total += PPIHeaderSize + len(r.Data) // ppi_offset may leave a gap: at least this
				}
				if total > len(p.PPI) {
					t.Fatalf("PPI walk covers %d of %d bytes", total, len(p.PPI))
				}
				if p.OOBDataLength != 0 {
					continue // Append keeps OOB offsets that the new layout may not honour
				}
			}
			again, n2, err := ParseRNDIS(m.Append(nil))
			if err != nil || !reflect.DeepEqual(again, m) || n2 != len(m.Append(nil)) {
				t.Fatalf("rndis %#v re-parsed as %#v, %v", m, again, err)
			}
		}
	})
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if errors.As(err, &fe) {
		if fe.Field == "" || !errors.Is(err, ErrMalformed) {
			t.Fatalf("field error %v", err)
		}
		return
	}
	if !errors.Is(err, ErrUnknownType) {
		t.Fatalf("error %v is neither malformed nor unknown", err)
	}
}

// fuzzSeeds are FuzzParse's seeds and committed corpus: the NVSP messages
// of both directions, each RNDIS message, Linux's TX frame, a batch.
func fuzzSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	for _, c := range linuxGuestMessages() {
		seeds["nvsp_"+c.name] = c.b
	}
	for i, m := range []Message{
		InitComplete{VersionInvalid, 34, StatusSuccess},
		SendRecvBufComplete{StatusSuccess, 1, RecvBufSection{0, 1806, 9289, 1806 * 9289}},
		SendSendBufComplete{StatusSuccess, 6144},
		SubchannelComplete{StatusSuccess, 2},
		SendVFAssociation{1, 7},
		SendIndirectionTable{make([]uint32, IndirectionTableSize)},
	} {
		seeds[fmt.Sprintf("nvsp_host_%d_%v", i, m.Type())] = m.Append(nil)
	}
	var batch []byte
	for i, m := range rndisSamples() {
		seeds[fmt.Sprintf("rndis_%02d_%v", i, m.RNDISType())] = m.Append(nil)
		batch = m.Append(batch)
	}
	seeds["rndis_batch"] = batch
	tx, _ := linuxTxFrame()
	seeds["rndis_linux_tx_frame"] = tx
	seeds["short"] = []byte{1, 0, 0}
	return seeds
}

// TestWriteFuzzCorpus writes the seeds under testdata/fuzz when
// GOHV_WRITE_CORPUS is set (the committed corpus comes from here).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GOHV_WRITE_CORPUS") == "" {
		t.Skip("set GOHV_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzParse")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range fuzzSeeds() {
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
