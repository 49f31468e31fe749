package initramfs

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// A one-file archive as the format document lays it out, written by hand:
// header, "hi\0" padded to 4 from the header's start (110+3 -> 116), the
// data "x\n" padded to 4, then the trailer (110+11 -> 124).
func TestNewcLayoutByteForByte(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.WriteHeader(&Header{Name: "hi", Mode: TypeReg | 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "070701" + "00000001" + "000081a4" + "00000000" + "00000000" + "00000001" + "00000000" + "00000002" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000003" + "00000000" + "hi\x00" + "\x00\x00\x00" +
		"x\n\x00\x00" +
		"070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" + "00000000" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "0000000b" + "00000000" + "TRAILER!!!\x00" + "\x00\x00\x00"
	if b.String() != want {
		t.Errorf("archive\n%q\nwant\n%q", b.String(), want)
	}
	if b.Len()%4 != 0 {
		t.Errorf("length %d is not a multiple of 4", b.Len())
	}
}

func TestNewcRoundTrip(t *testing.T) {
	entries := []struct {
		h    Header
		data string
	}{
		{Header{Name: "dev", Mode: TypeDir | 0o755}, ""},
		{Header{Name: "dev/console", Mode: TypeChar | 0o600, RdevMajor: 5, RdevMinor: 1}, ""},
		{Header{Name: "bin/sh", Mode: TypeSymlink | 0o777, Size: 7}, "busybox"},
		{Header{Name: "a-name-of-odd-length", Mode: TypeReg | 0o600, Size: 5, UID: 1000, GID: 100, Mtime: 1700000000}, "12345"},
		{Header{Name: "empty", Mode: TypeReg | 0o644}, ""},
	}
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, e := range entries {
		h := e.h
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&b)
	for i, e := range entries {
		h, err := r.Next()
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := e.h
		want.Ino = uint32(i + 1)
		want.Nlink = 1
		if want.Mode&TypeMask == TypeDir {
			want.Nlink = 2
		}
		if *h != want {
			t.Errorf("entry %d: %+v\nwant %+v", i, *h, want)
		}
		data, err := io.ReadAll(r)
		if err != nil || string(data) != e.data {
			t.Errorf("entry %d: data %q, %v; want %q", i, data, err, e.data)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last entry: %v, want io.EOF", err)
	}
}

func TestNewcWriterRefuses(t *testing.T) {
	for name, h := range map[string]Header{
		"empty name":    {Mode: TypeReg},
		"absolute name": {Name: "/init", Mode: TypeReg},
		"the trailer":   {Name: "TRAILER!!!", Mode: TypeReg},
		"no file type":  {Name: "x", Mode: 0o644},
		"device data":   {Name: "x", Mode: TypeChar, Size: 1},
		"too large":     {Name: "x", Mode: TypeReg, Size: 1 << 32},
	} {
		if err := NewWriter(io.Discard).WriteHeader(&h); err == nil {
			t.Errorf("%s: written", name)
		}
	}
	w := NewWriter(io.Discard)
	w.WriteHeader(&Header{Name: "x", Mode: TypeReg, Size: 2})
	if n, err := w.Write([]byte("abc")); n != 2 || !errors.Is(err, ErrWriteTooLong) {
		t.Errorf("overlong write: %d, %v", n, err)
	}
	w = NewWriter(io.Discard)
	w.WriteHeader(&Header{Name: "x", Mode: TypeReg, Size: 2})
	w.Write([]byte("a"))
	if err := w.WriteHeader(&Header{Name: "y", Mode: TypeReg}); !errors.Is(err, ErrShortEntry) {
		t.Errorf("header after a short entry: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrShortEntry) {
		t.Errorf("close after a short entry: %v", err)
	}
	w = NewWriter(io.Discard)
	w.WriteHeader(&Header{Name: "x", Mode: TypeDir})
	if err := w.WriteHeader(&Header{Name: "x", Mode: TypeDir}); err == nil {
		t.Error("a name written twice")
	}
}

func TestNewcReaderRefusesDamage(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.WriteHeader(&Header{Name: "init", Mode: TypeReg | 0o755, Size: 4})
	w.Write([]byte("#!/x"))
	w.Close()
	good := b.String()
	for name, s := range map[string]string{
		"old binary magic": "\xc7\x71" + good[2:],
		"odc magic":        "070707" + good[6:],
		"not hex":          good[:14] + "zzzzzzzz" + good[22:],
		"no trailer":       good[:strings.Index(good, "070701"+"00000000")],
		"cut in a header":  good[:50],
		"name size 0":      good[:94] + "00000000" + good[102:],
	} {
		r := NewReader(strings.NewReader(s))
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if err == io.EOF {
			t.Errorf("%s: read to the end without an error", name)
		}
	}
}

func FuzzNewcReader(f *testing.F) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.WriteHeader(&Header{Name: "init", Mode: TypeReg | 0o755, Size: 4})
	w.Write([]byte("#!/x"))
	w.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for i := 0; i < 1000; i++ {
			if _, err := r.Next(); err != nil {
				return
			}
			io.Copy(io.Discard, r)
		}
	})
}
