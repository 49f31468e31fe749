// Command acpidump captures the ACPI tables QEMU's firmware builds, for the
// golden testdata of gohv/metal/acpi.
//
// It starts QEMU with no OS and no devices, paused, with a QMP socket; lets
// the firmware run; and every -poll interval stops the guest, saves all of
// guest RAM with the QMP command pmemsave into a temporary file, and looks
// for the tables with the acpi package itself (FindRSDP, else — for UEFI
// firmware, which keeps the RSDP outside the BIOS area — a scan of all RAM
// for a valid RSDP; then Load). Once two looks -settle apart find the same
// tables, it writes each table's raw bytes to -out, plus a manifest
// tables.txt (signature, physical address, length, file; and the EBDA
// segment word at 0x40E) from which tests rebuild a sparse memory image.
//
// The testdata under metal/acpi/testdata was captured with QEMU 7.2.22
// (Debian 1:7.2+dfsg-7+deb12u18), SeaBIOS 1.16.2 and OVMF (Debian ovmf
// 2022.11-6+deb12u2), from the repository root:
//
//	go run ./tools/acpidump -machine pc  -smp 2 -out metal/acpi/testdata/qemu-pc
//	go run ./tools/acpidump -machine q35 -smp 4 -out metal/acpi/testdata/qemu-q35
//	go run ./tools/acpidump -machine q35 -smp 2,maxcpus=4 -out metal/acpi/testdata/qemu-q35-hotplug
//	go run ./tools/acpidump -machine q35 -smp 2 -bios /usr/share/qemu/OVMF.fd -out metal/acpi/testdata/qemu-q35-ovmf
//	go run ./tools/acpidump -machine q35 -smp 2 -device intel-iommu,intremap=on -out metal/acpi/testdata/qemu-q35-intel-iommu
//	go run ./tools/acpidump -machine q35 -smp 2 -device amd-iommu -out metal/acpi/testdata/qemu-q35-amd-iommu
//
// Each runs, for -machine M -smp S -m 128 (the default size), what the
// manifest's header records (with -bios and each -device D after -smp):
//
//	qemu-system-x86_64 -accel tcg -display none -nodefaults -no-user-config \
//	    -M M -m 128 -smp S -S -qmp unix:TMP/qmp.sock,server=on,wait=off
//
// then over QMP: qmp_capabilities; cont; and at each look stop, pmemsave
// (val 0, size 128 MiB), cont; finally quit.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gohv/metal/acpi"
)

func main() {
	var (
		qemu    = flag.String("qemu", "qemu-system-x86_64", "QEMU binary")
		machine = flag.String("machine", "pc", "QEMU -M machine type")
		smp     = flag.String("smp", "2", "QEMU -smp value")
		memMiB  = flag.Uint64("m", 128, "guest RAM in MiB (all of it is dumped at each look; keep it below 2816 so it is all under 4 GiB)")
		bios    = flag.String("bios", "", "firmware image for QEMU -bios (default: QEMU's SeaBIOS)")
		devices deviceFlags
		out     = flag.String("out", "", "directory to write the tables and tables.txt into (required)")
		poll    = flag.Duration("poll", 500*time.Millisecond, "interval between looks")
		settle  = flag.Duration("settle", 2*time.Second, "how long the tables must stay the same")
		timeout = flag.Duration("timeout", 120*time.Second, "give up after this long")
	)
	flag.Var(&devices, "device", "a QEMU -device value, e.g. intel-iommu,intremap=on (repeatable)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	c := capture{
		qemu: *qemu, machine: *machine, smp: *smp, memBytes: *memMiB << 20, bios: *bios, devices: devices,
		poll: *poll, settle: *settle, timeout: *timeout,
	}
	if err := c.run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "acpidump:", err)
		os.Exit(1)
	}
}

type capture struct {
	qemu, machine, smp, bios string
	devices                  []string
	memBytes                 uint64
	poll, settle, timeout    time.Duration
}

func (c *capture) args(sock string) []string {
	a := []string{
		"-accel", "tcg", "-display", "none", "-nodefaults", "-no-user-config",
		"-M", c.machine, "-m", fmt.Sprint(c.memBytes >> 20), "-smp", c.smp,
	}
	if c.bios != "" {
		a = append(a, "-bios", c.bios)
	}
	for _, d := range c.devices {
		a = append(a, "-device", d)
	}
	return append(a, "-S", "-qmp", "unix:"+sock+",server=on,wait=off")
}

func (c *capture) run(outDir string) (err error) {
	tmp, err := os.MkdirTemp("", "acpidump-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sock := filepath.Join(tmp, "qmp.sock")
	dump := filepath.Join(tmp, "ram.bin")

	args := c.args(sock)
	cmd := exec.Command(c.qemu, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill() // QEMU ignored quit; it is ours to end
			<-exited
		}
	}()

	q, err := dialQMP(sock, exited)
	if err != nil {
		cmd.Process.Kill()
		return err
	}
	defer q.close()
	defer q.do("quit", nil) // ends QEMU; its reply may not come

	if _, err := q.do("cont", nil); err != nil {
		return err
	}
	deadline := time.Now().Add(c.timeout)
	var (
		last     *found
		stableAt time.Time
	)
	for {
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("tables still changing after %v", c.timeout)
			}
			return fmt.Errorf("no ACPI tables after %v", c.timeout)
		}
		select {
		case werr := <-exited:
			exited <- werr // for the deferred wait
			return fmt.Errorf("qemu exited early: %v", werr)
		case <-time.After(c.poll):
		}
		f, err := c.look(q, dump)
		if err != nil {
			last, stableAt = nil, time.Time{}
			continue // firmware not done yet
		}
		if last == nil || last.digest != f.digest {
			last, stableAt = f, time.Now()
			continue
		}
		if time.Since(stableAt) >= c.settle {
			break
		}
	}

	version, _ := exec.Command(c.qemu, "--version").Output()
	firstLine, _, _ := strings.Cut(string(version), "\n")
	header := []string{
		"Captured by tools/acpidump from " + firstLine,
		"  " + strings.Join(append([]string{filepath.Base(c.qemu)}, c.args("TMP/qmp.sock")...), " "),
		"  then QMP: qmp_capabilities; cont; looks (stop; pmemsave 0 " + fmt.Sprint(c.memBytes) + "; cont) until stable; quit",
		last.summary,
	}
	header = append(header, last.notes...)
	return last.write(outDir, header)
}

// found is one look's result.
type found struct {
	files   []tableFile
	ebda    uint16
	digest  [32]byte
	summary string
	notes   []string
}

type tableFile struct {
	sig  string
	pa   uint64
	data []byte
}

// look stops the guest, saves its RAM, resumes it and finds the tables in
// the saved copy.
func (c *capture) look(q *qmp, dump string) (*found, error) {
	if _, err := q.do("stop", nil); err != nil {
		return nil, err
	}
	_, err := q.do("pmemsave", map[string]any{"val": 0, "size": c.memBytes, "filename": dump})
	if _, err2 := q.do("cont", nil); err == nil {
		err = err2
	}
	if err != nil {
		return nil, err
	}
	f, err := os.Open(dump)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mem := fileMemory{f: f, size: c.memBytes}

	var notes []string
	rsdp, err := acpi.FindRSDP(mem)
	if err != nil {
		// UEFI firmware: the RSDP is wherever the firmware allocated it.
		var n int
		rsdp, n, err = scanRSDP(mem)
		if err != nil {
			return nil, err
		}
		notes = append(notes, fmt.Sprintf("RSDP not in the EBDA or BIOS area; found by a scan of all RAM (%d valid RSDPs)", n))
	}
	if n, bad := countCandidates(mem); n > 1 || bad > 0 {
		notes = append(notes, fmt.Sprintf("the BIOS area 0xE0000-0xFFFFF holds %d 16-byte-aligned \"RSD PTR \" signatures, %d of them invalid", n, bad))
	}
	t, err := acpi.Load(mem, rsdp)
	if err != nil {
		return nil, err
	}
	if len(t.Invalid) > 0 {
		return nil, fmt.Errorf("invalid tables: %v", errors.Join(t.Invalid...))
	}
	if _, err := t.FADT(); err != nil {
		return nil, err // firmware still building
	}

	rsdpLen := 20
	if rsdp.Revision >= 2 {
		rsdpLen = int(rsdp.Length)
	}
	rb := make([]byte, rsdpLen)
	if err := mem.ReadAt(rb, rsdp.Address); err != nil {
		return nil, err
	}
	out := &found{summary: t.Summary(), notes: notes}
	out.files = append(out.files, tableFile{"RSDP", rsdp.Address, rb})
	out.files = append(out.files, tableFile{t.Root.Signature, t.Root.Address, t.Root.Data})
	for _, tab := range t.List {
		out.files = append(out.files, tableFile{tab.Signature, tab.Address, tab.Data})
	}
	if fadt, err := t.FADT(); err == nil && fadt.FirmwareCtrl != 0 {
		// The FACS has a signature and length but no checksum, 5.2.10.
		var h [8]byte
		if mem.ReadAt(h[:], fadt.FirmwareCtrl) == nil && string(h[:4]) == acpi.SigFACS {
			n := binary.LittleEndian.Uint32(h[4:])
			if n >= 64 && n <= 4096 {
				b := make([]byte, n)
				if mem.ReadAt(b, fadt.FirmwareCtrl) == nil {
					out.files = append(out.files, tableFile{acpi.SigFACS, fadt.FirmwareCtrl, b})
				}
			}
		}
	}
	var seg [2]byte
	if mem.ReadAt(seg[:], 0x40e) == nil {
		out.ebda = binary.LittleEndian.Uint16(seg[:])
	}
	h := sha256.New()
	for _, tf := range out.files {
		fmt.Fprintf(h, "%s %#x %d\n", tf.sig, tf.pa, len(tf.data))
		h.Write(tf.data)
	}
	copy(out.digest[:], h.Sum(nil))
	return out, nil
}

// write stores the tables and the manifest.
func (f *found) write(dir string, header []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var m bytes.Buffer
	for _, l := range header {
		fmt.Fprintf(&m, "# %s\n", l)
	}
	fmt.Fprintf(&m, "#\n# ebda <segment word at 0x40E>\n# <signature> <physical address> <length> <file>\n")
	fmt.Fprintf(&m, "ebda %#x\n", f.ebda)
	used := map[string]int{}
	for _, tf := range f.files {
		name := fileName(tf.sig)
		if n := used[name]; n > 0 {
			used[name]++
			name = fmt.Sprintf("%s-%d", name, n)
		} else {
			used[name] = 1
		}
		name += ".bin"
		if err := os.WriteFile(filepath.Join(dir, name), tf.data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&m, "%s %#x %d %s\n", fileName(tf.sig), tf.pa, len(tf.data), name)
	}
	if err := os.WriteFile(filepath.Join(dir, "tables.txt"), m.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Print(m.String())
	return nil
}

// deviceFlags collects repeated -device values.
type deviceFlags []string

func (d *deviceFlags) String() string     { return strings.Join(*d, " ") }
func (d *deviceFlags) Set(v string) error { *d = append(*d, v); return nil }

// fileName makes a signature safe for a file name.
func fileName(sig string) string {
	b := []byte(sig)
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// scanRSDP looks for a valid RSDP anywhere in RAM, on 16-byte boundaries,
// and returns the first whose tables load cleanly.
func scanRSDP(mem fileMemory) (acpi.RSDP, int, error) {
	var (
		chunk [1 << 20]byte
		valid []acpi.RSDP
	)
	for base := uint64(0); base < mem.size; base += uint64(len(chunk)) {
		b := chunk[:min(uint64(len(chunk)), mem.size-base)]
		if err := mem.ReadAt(b, base); err != nil {
			return acpi.RSDP{}, 0, err
		}
		for off := 0; off+8 <= len(b); off += 16 {
			if string(b[off:off+8]) != "RSD PTR " {
				continue
			}
			var r [36]byte
			n := min(len(r), int(mem.size-(base+uint64(off))))
			if mem.ReadAt(r[:n], base+uint64(off)) != nil {
				continue
			}
			if rsdp, err := acpi.ParseRSDP(r[:n]); err == nil {
				rsdp.Address = base + uint64(off)
				valid = append(valid, rsdp)
			}
		}
	}
	for _, r := range valid {
		if t, err := acpi.Load(mem, r); err == nil && len(t.Invalid) == 0 {
			return r, len(valid), nil
		}
	}
	return acpi.RSDP{}, len(valid), acpi.ErrNoRSDP
}

// countCandidates counts RSDP signatures in the BIOS area and how many of
// them fail validation.
func countCandidates(mem fileMemory) (n, bad int) {
	b := make([]byte, 0x20000)
	if mem.ReadAt(b, 0xe0000) != nil {
		return 0, 0
	}
	for off := 0; off+36 <= len(b); off += 16 {
		if string(b[off:off+8]) == "RSD PTR " {
			n++
			if _, err := acpi.ParseRSDP(b[off:]); err != nil {
				bad++
			}
		}
	}
	return n, bad
}

// fileMemory is an acpi.Memory over a RAM dump starting at physical 0.
type fileMemory struct {
	f    *os.File
	size uint64
}

func (m fileMemory) ReadAt(p []byte, pa uint64) error {
	if pa >= m.size || uint64(len(p)) > m.size-pa {
		return fmt.Errorf("dump: [%#x, %#x) outside [0, %#x)", pa, pa+uint64(len(p)), m.size)
	}
	_, err := m.f.ReadAt(p, int64(pa))
	return err
}

// qmp is a minimal QEMU Machine Protocol client: one JSON object per
// message; events are read and dropped.
type qmp struct {
	conn net.Conn
	dec  *json.Decoder
}

func dialQMP(sock string, exited <-chan error) (*qmp, error) {
	var (
		conn net.Conn
		err  error
	)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		select {
		case werr := <-exited:
			return nil, fmt.Errorf("qemu exited before QMP was up: %v", werr)
		default:
		}
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	q := &qmp{conn: conn, dec: json.NewDecoder(bufio.NewReader(conn))}
	var greeting map[string]json.RawMessage
	if err := q.dec.Decode(&greeting); err != nil {
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if _, ok := greeting["QMP"]; !ok {
		return nil, fmt.Errorf("qmp: unexpected greeting")
	}
	if _, err := q.do("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *qmp) do(command string, args map[string]any) (json.RawMessage, error) {
	msg := map[string]any{"execute": command}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	q.conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		var r struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class, Desc string
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := q.dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		switch {
		case r.Event != "":
			continue
		case r.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", command, r.Error.Class, r.Error.Desc)
		default:
			return r.Return, nil
		}
	}
}

func (q *qmp) close() { q.conn.Close() }
