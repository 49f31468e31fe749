// Package bochs boots a gohv boot medium (a GRUB ISO) under Bochs 2.7 from
// Debian and captures its serial console. Bochs emulates Intel VT-x with EPT,
// VPID and unrestricted guest (cpu model corei7_skylake_x), which QEMU's TCG
// does not, so this is where the vmx backend is tested.
//
// Bochs has no -kernel: BuildISO puts the image on a GRUB ISO with the
// command line wanted. Debian's Bochs starts in its debugger, so every run
// passes -rc a file holding "c". The emulated clock is tied to instructions
// (clock: sync=none, ips=10^9: one instruction is one nanosecond of emulated
// time), which keeps the guest's timer interrupts at the rate it asked for
// however slowly the host emulates.
//
// Bochs has no isa-debug-exit device and exits with status 1 whatever the
// guest did, so the verdict is read off the serial log (package verdict) and
// a run passes only when the log holds one PASS verdict and the guest then
// powered the machine off through ACPI S5 (which Bochs reports as the panic
// "ACPI control: soft power off", and with panic: action=fatal exits on).
//
// COM1 goes to a file that Run follows, or, when the run has console input
// (Config.Input), to a TCP connection: Run listens on a free loopback port
// and Bochs, in its socket-client mode, connects to it as it starts; the
// guest's output comes back on the connection and Input goes out on it.
package bochs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gohv/tools/verdict"
)

// Binary is the emulator the package runs; tests may point it elsewhere.
var Binary = "bochs"

// Defaults of Config.
const (
	DefaultCPUModel = "corei7_skylake_x"
	DefaultIPS      = 1_000_000_000
	DefaultMemMiB   = 512
	DefaultTimeout  = 5 * time.Minute
	DefaultGrace    = 10 * time.Second
	DefaultBIOS     = "/usr/share/bochs/BIOS-bochs-latest" // Debian bochsbios
	DefaultVGABIOS  = "/usr/share/vgabios/vgabios.bin"     // Debian vgabios
)

// Names of the files a run keeps in its work directory. Bochs runs in that
// directory and the bochsrc names them relatively, so no path in the bochsrc
// needs quoting.
const (
	FileConfig = "bochsrc"
	FileRC     = "bochsrc.rc" // debugger commands: "c"
	FileISO    = "boot.iso"   // a symbolic link to Config.ISO
	FileSerial = "serial.log" // COM1
	FileLog    = "bochs.log"  // Bochs's own log
)

// PowerOffMessage is what Bochs says when the guest enters ACPI S5.
const PowerOffMessage = "ACPI control: soft power off"

// Config describes one boot.
type Config struct {
	ISO      string // the boot medium, booted as a CD-ROM (BuildISO makes one)
	MemMiB   int    // guest memory, default 512
	CPUModel string // Bochs CPU model, default corei7_skylake_x (VT-x with EPT)
	CPUs     int    // processors (cpu: count=), default 1; Debian's Bochs is built with SMP
	// IPS is the emulated instructions per second: with clock sync=none it
	// fixes how much emulated time one instruction takes (default 10^9, one
	// nanosecond), not how fast Bochs runs.
	IPS     int64
	Timeout time.Duration // default 5 minutes; Bochs is killed after it
	// Grace is how long Bochs may run on after the verdict line appeared
	// before it is killed (default 10 s); a guest that powers off ends the
	// run at once.
	Grace time.Duration
	// Console, if set, receives the serial output as it arrives.
	Console io.Writer
	// Input, if set, is the serial console's input: what it yields is
	// written to COM1 as it comes (see the package comment). Its end does
	// not end the connection, which stays open until Bochs exits (Bochs
	// would read a closed connection as a stream of NUL bytes). Run does
	// not wait for Input: a Read of it under way when Bochs exits is left
	// to return, after which the copying stops; a caller that gives a
	// pipe's read end closes it after Run.
	Input io.Reader
	// BIOS and VGABIOS are the ROM images (Debian's by default).
	BIOS, VGABIOS string
	// WorkDir, if set, holds the run's files (bochsrc, serial.log,
	// bochs.log) and is kept; otherwise a temporary directory is used and
	// removed.
	WorkDir string
	// Extra holds further bochsrc lines, appended after the generated ones.
	Extra []string

	// serialAddr is the loopback address Run listens on for COM1 when
	// Input is set, host:port.
	serialAddr string
}

// Result is what one boot produced.
type Result struct {
	Log      []byte // everything the serial port printed
	BochsLog []byte // the tail of Bochs's log file (panics, errors)
	Output   []byte // the tail of Bochs's own standard output and error
	ExitCode int    // Bochs's exit status (1 even after a clean power-off; -1 if killed)
	// PoweredOff is set when the guest entered ACPI S5.
	PoweredOff bool
	// Killed is set when Bochs was still running Grace after the verdict
	// appeared and was killed (a guest that halted instead of powering off).
	Killed   bool
	TimedOut bool
	Elapsed  time.Duration
	Verdict  *verdict.Result
	// ExitMessage is the message Bochs gave for exiting, if any (its last
	// panic, e.g. the power-off or a bochsrc error).
	ExitMessage string
}

func (c Config) withDefaults() Config {
	if c.MemMiB == 0 {
		c.MemMiB = DefaultMemMiB
	}
	if c.CPUModel == "" {
		c.CPUModel = DefaultCPUModel
	}
	if c.IPS == 0 {
		c.IPS = DefaultIPS
	}
	if c.CPUs == 0 {
		c.CPUs = 1
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.BIOS == "" {
		c.BIOS = DefaultBIOS
	}
	if c.VGABIOS == "" {
		c.VGABIOS = DefaultVGABIOS
	}
	return c
}

// bochsrcWord is what a value written unquoted into the bochsrc may hold:
// Bochs splits option lines at commas and blanks and reads # as a comment.
var bochsrcWord = regexp.MustCompile(`^[A-Za-z0-9_./+-]+$`)

// loopbackAddr is the form of the address Run listens on for COM1.
var loopbackAddr = regexp.MustCompile(`^127\.0\.0\.1:[0-9]{1,5}$`)

// Bochsrc returns the configuration file for c. Files of the run are named
// relative to the work directory Bochs runs in (see FileISO and friends).
func (c Config) Bochsrc() ([]byte, error) {
	c = c.withDefaults()
	switch {
	case !bochsrcWord.MatchString(c.CPUModel):
		return nil, fmt.Errorf("bochs: cpu model %q: not a Bochs model name (bochs --help cpu lists them)", c.CPUModel)
	case c.MemMiB < 16 || c.MemMiB > 65536:
		return nil, fmt.Errorf("bochs: memory %d MiB: want 16..65536", c.MemMiB)
	case c.IPS < 1_000_000:
		return nil, fmt.Errorf("bochs: ips %d: want at least 1000000", c.IPS)
	case c.CPUs < 1 || c.CPUs > 16:
		return nil, fmt.Errorf("bochs: %d processors: want 1..16", c.CPUs)
	case c.Timeout < 0 || c.Grace < 0:
		return nil, fmt.Errorf("bochs: negative timeout or grace period")
	}
	for _, p := range []string{c.BIOS, c.VGABIOS} {
		if !bochsrcWord.MatchString(p) {
			return nil, fmt.Errorf("bochs: ROM image path %q: only letters, digits and _ . / + - can be written into a bochsrc", p)
		}
	}
	for _, l := range c.Extra {
		if strings.ContainsAny(l, "\r\n") {
			return nil, fmt.Errorf("bochs: extra bochsrc line %q holds a line break", l)
		}
	}
	com1 := "mode=file, dev=" + FileSerial
	if c.Input != nil {
		if !loopbackAddr.MatchString(c.serialAddr) {
			return nil, fmt.Errorf("bochs: console input needs the loopback address Run listens on, not %q", c.serialAddr)
		}
		// Bochs connects as it starts and only then: Run listens first.
		com1 = "mode=socket-client, dev=" + c.serialAddr
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# gohv under Bochs 2.7, written by gohv/tools/bochs. Run from the directory\n")
	fmt.Fprintf(&b, "# holding it: bochs -q -f %s -rc %s\n", FileConfig, FileRC)
	// reset_on_triple_fault=0 makes a host triple fault a panic that ends
	// the run (QEMU's -no-reboot) instead of a reboot into GRUB and a second
	// run. A child partition's triple fault is a VM exit and is not affected.
	fmt.Fprintf(&b, "cpu: model=%s, count=%d, ips=%d, reset_on_triple_fault=0\n", c.CPUModel, c.CPUs, c.IPS)
	// Emulated time follows the instruction count: a guest sees its timers at
	// the rate it programmed them, however slow the host.
	fmt.Fprintf(&b, "clock: sync=none, time0=local\n")
	fmt.Fprintf(&b, "memory: guest=%d, host=%d\n", c.MemMiB, c.MemMiB)
	fmt.Fprintf(&b, "romimage: file=%s, options=fastboot\n", c.BIOS)
	fmt.Fprintf(&b, "vgaromimage: file=%s\n", c.VGABIOS)
	fmt.Fprintf(&b, "ata0-master: type=cdrom, path=%s, status=inserted\n", FileISO)
	fmt.Fprintf(&b, "boot: cdrom\n")
	fmt.Fprintf(&b, "com1: enabled=1, %s\n", com1)
	// Debian's Bochs has no nogui library; rfb without waiting for a viewer
	// is the headless choice (it listens on the first free port from 5900).
	fmt.Fprintf(&b, "display_library: rfb, options=\"timeout=0\"\n")
	fmt.Fprintf(&b, "log: %s\n", FileLog)
	// The guest's ACPI power-off is a panic: fatal ends Bochs with it.
	fmt.Fprintf(&b, "panic: action=fatal\n")
	fmt.Fprintf(&b, "error: action=report\n")
	fmt.Fprintf(&b, "info: action=ignore\n")
	fmt.Fprintf(&b, "debug: action=ignore\n")
	// No PC speaker and no host sound: ALSA's complaints about a machine
	// without a sound card would fill the output.
	fmt.Fprintf(&b, "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy\n")
	fmt.Fprintf(&b, "speaker: enabled=0\n")
	for _, l := range c.Extra {
		fmt.Fprintf(&b, "%s\n", l)
	}
	return b.Bytes(), nil
}

// RC is the debugger command file: Debian's Bochs is built with its
// debugger, which would otherwise wait for a command before the first
// instruction.
const RC = "c\n"

// Args is the Bochs command line (without the binary), run in the work
// directory.
func Args() []string {
	return []string{"-q", "-f", FileConfig, "-rc", FileRC}
}

// WriteFiles writes the bochsrc and the debugger command file into dir and
// links the ISO there.
func (c Config) WriteFiles(dir string) error {
	rc, err := c.Bochsrc()
	if err != nil {
		return err
	}
	if c.ISO == "" {
		return errors.New("bochs: no ISO to boot (BuildISO makes one)")
	}
	iso, err := filepath.Abs(c.ISO)
	if err != nil {
		return fmt.Errorf("bochs: iso: %w", err)
	}
	if fi, err := os.Stat(iso); err != nil {
		return fmt.Errorf("bochs: iso: %w", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("bochs: iso %s is not a regular file", iso)
	}
	if err := os.WriteFile(filepath.Join(dir, FileConfig), rc, 0o644); err != nil {
		return fmt.Errorf("bochs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileRC), []byte(RC), 0o644); err != nil {
		return fmt.Errorf("bochs: %w", err)
	}
	for _, f := range []string{FileISO, FileSerial, FileLog} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("bochs: %w", err)
		}
	}
	if err := os.Symlink(iso, filepath.Join(dir, FileISO)); err != nil {
		return fmt.Errorf("bochs: %w", err)
	}
	return nil
}

// ErrNoBochs is returned when the emulator is not installed.
var ErrNoBochs = errors.New("bochs: bochs not found (Debian: apt-get install bochs bochsbios vgabios)")

// Available reports whether the emulator can be run.
func Available() bool {
	_, err := exec.LookPath(Binary)
	return err == nil
}

func checkROMs(c Config) error {
	for _, r := range []struct{ path, pkg string }{{c.BIOS, "bochsbios"}, {c.VGABIOS, "vgabios"}} {
		if _, err := os.Stat(r.path); err != nil {
			return fmt.Errorf("bochs: ROM image %s: %w (Debian: apt-get install %s)", r.path, errors.Unwrap(err), r.pkg)
		}
	}
	return nil
}

// pollInterval is how often Run reads new serial output.
const pollInterval = 50 * time.Millisecond

// verdictMark starts the line that ends every run.
var verdictMark = []byte(verdict.Prefix + " verdict ")

// Run boots c and returns when Bochs has exited, when the verdict has been
// on the serial port for c.Grace, or when c.Timeout has passed; Bochs (its
// whole process group) is killed in the last two cases. An error means Bochs
// could not be run at all or ctx was cancelled; a guest that fails or hangs
// is described by the Result.
func Run(ctx context.Context, c Config) (*Result, error) {
	c = c.withDefaults()
	if !Available() {
		return nil, ErrNoBochs
	}
	if err := checkROMs(c); err != nil {
		return nil, err
	}
	dir := c.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "gohv-bochs-")
		if err != nil {
			return nil, fmt.Errorf("bochs: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bochs: %w", err)
	}
	serial := &tailer{console: c.Console}
	defer serial.close()
	if c.Input != nil {
		sock, err := listenSerial(c.Input)
		if err != nil {
			return nil, err
		}
		defer sock.close()
		c.serialAddr = sock.ln.Addr().String()
		serial.open = func() (io.Reader, error) { return sock, nil }
		serial.finish = sock.finish
	} else {
		path := filepath.Join(dir, FileSerial)
		serial.open = func() (io.Reader, error) { return os.Open(path) }
	}
	if err := c.WriteFiles(dir); err != nil {
		return nil, err
	}

	out := &tailBuffer{max: 64 << 10}
	cmd := exec.Command(Binary, Args()...)
	cmd.Dir = dir
	cmd.Stdin = nil // /dev/null: the debugger reads EOF after the rc file
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that everything it started can be killed at
	// once; and killed with us if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bochs: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

	r := &Result{}
	deadline := time.NewTimer(c.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var (
		graceC   <-chan time.Time
		waitErr  error
		ctxErr   error
		searched int // serial bytes already searched for the verdict
	)
loop:
	for {
		select {
		case waitErr = <-done:
			break loop
		case <-tick.C:
		case <-graceC:
			r.Killed = true
		case <-deadline.C:
			r.TimedOut = true
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
		serial.read()
		if graceC == nil {
			from := max(0, searched-len(verdictMark))
			if bytes.Contains(serial.log[from:], verdictMark) {
				graceC = time.After(c.Grace)
			}
			searched = len(serial.log)
		}
		if r.Killed || r.TimedOut || ctxErr != nil {
			kill()
			waitErr = <-done
			break
		}
	}
	r.Elapsed = time.Since(start)
	if serial.finish != nil {
		serial.finish()
	}
	serial.read()
	r.Log = serial.log
	r.Output = out.Bytes()
	r.BochsLog = readTail(filepath.Join(dir, FileLog), 16<<10)
	r.ExitMessage = exitMessage(r.Output, r.BochsLog)
	r.PoweredOff = strings.Contains(r.ExitMessage, PowerOffMessage) ||
		bytes.Contains(r.BochsLog, []byte(PowerOffMessage))
	r.Verdict = verdict.Parse(r.Log)
	var ee *exec.ExitError
	switch {
	case r.Killed || r.TimedOut || ctxErr != nil:
		r.ExitCode = -1
	case waitErr == nil:
		r.ExitCode = 0
	case errors.As(waitErr, &ee):
		r.ExitCode = ee.ExitCode()
	default:
		return r, fmt.Errorf("bochs: %w", waitErr)
	}
	if ctxErr != nil {
		return r, fmt.Errorf("bochs: %w", ctxErr)
	}
	return r, nil
}

// tailer follows the serial output as Bochs writes it: the file, or what
// the socket has received. Its reads never wait: a source with nothing new
// returns 0 bytes or an error (io.EOF).
type tailer struct {
	open    func() (io.Reader, error) // the source, once it is there
	finish  func()                    // waits for the last output after Bochs exited, if set
	console io.Writer
	r       io.Reader
	buf     []byte
	log     []byte
}

func (t *tailer) close() {
	if c, ok := t.r.(io.Closer); ok {
		c.Close()
	}
}

func (t *tailer) read() {
	if t.r == nil {
		r, err := t.open()
		if err != nil {
			return // not created yet
		}
		t.r = r
	}
	if t.buf == nil {
		t.buf = make([]byte, 32<<10)
	}
	for {
		n, err := t.r.Read(t.buf)
		if n > 0 {
			t.log = append(t.log, t.buf[:n]...)
			if t.console != nil {
				t.console.Write(t.buf[:n])
			}
		}
		if err != nil || n == 0 {
			return
		}
	}
}

// serialSocket is COM1 over TCP: Bochs (com1 mode socket-client) connects
// to its listener as it starts. What the guest sends is kept until the
// tailer reads it; what Input yields is written to the guest.
type serialSocket struct {
	ln    net.Listener
	input io.Reader
	done  chan struct{} // closed when the connection's reading ended

	mu     sync.Mutex
	got    []byte   // received, not yet read
	conn   net.Conn // Bochs's, once accepted
	closed bool
}

func listenSerial(input io.Reader) (*serialSocket, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bochs: console input: %w", err)
	}
	s := &serialSocket{ln: ln, input: input, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// serve takes Bochs's connection (the only one), copies Input to it and
// keeps what it sends until the connection ends.
func (s *serialSocket) serve() {
	defer close(s.done)
	conn, err := s.ln.Accept()
	s.ln.Close()
	if err != nil {
		return // Bochs exited without connecting
	}
	s.mu.Lock()
	s.conn = conn
	closed := s.closed
	s.mu.Unlock()
	if closed {
		conn.Close()
		return
	}
	// Stops at Input's end without closing the connection, or at the
	// first write after close.
	go io.Copy(conn, s.input)
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		s.mu.Lock()
		s.got = append(s.got, buf[:n]...)
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Read hands over what has arrived since the last Read, without waiting:
// 0 bytes and io.EOF when nothing has.
func (s *serialSocket) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.got)
	s.got = s.got[n:]
	return n, nil
}

// finishWait is how long finish waits for the connection to end after
// Bochs exited (its end closes the connection at once).
const finishWait = 2 * time.Second

// finish waits, once Bochs has exited, for the rest of its output: until
// the connection ends or finishWait has passed.
func (s *serialSocket) finish() {
	s.ln.Close()
	select {
	case <-s.done:
	case <-time.After(finishWait):
	}
}

// close ends the connection and the listener.
func (s *serialSocket) close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
	<-s.done
}

// exitMessage finds the reason Bochs gave for exiting: the line after
// "Bochs is exiting with the following message:" on its output, else the
// last panic in its log.
func exitMessage(output, log []byte) string {
	lines := strings.Split(string(output), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "Bochs is exiting with the following message:") && i+1 < len(lines) {
			m := strings.TrimSpace(lines[i+1])
			// "[ACPI  ] ACPI control: soft power off": drop the device tag.
			if strings.HasPrefix(m, "[") {
				if j := strings.Index(m, "]"); j > 0 {
					m = strings.TrimSpace(m[j+1:])
				}
			}
			return m
		}
	}
	lines = strings.Split(string(log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, m, ok := strings.Cut(lines[i], ">>PANIC<<"); ok {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

// Complaints are the panics in Bochs's log other than the power-off and the
// exit message, for failure messages. (Its error lines are mostly VM exits
// it reports at that level — EPT violations of MMIO accesses — and are left
// to the log's tail.)
func (r *Result) Complaints() string {
	var keep []string
	for _, l := range strings.Split(string(r.BochsLog), "\n") {
		_, m, ok := strings.Cut(l, ">>PANIC<<")
		m = strings.TrimSpace(m)
		if !ok || m == "" || strings.Contains(m, PowerOffMessage) || m == r.ExitMessage {
			continue
		}
		keep = append(keep, m)
	}
	if len(keep) > 3 {
		keep = append([]string{fmt.Sprintf("(%d more)", len(keep)-3)}, keep[len(keep)-3:]...)
	}
	return strings.Join(keep, "; ")
}

// Describe is a one-line account of how the boot ended, for test failures.
func (r *Result) Describe() string {
	after := " after " + r.Elapsed.Round(100*time.Millisecond).String()
	var s string
	switch {
	case r.TimedOut:
		s = "timed out" + after
	case r.PoweredOff:
		s = "powered off (ACPI S5)" + after
	case r.Killed:
		s = "no power-off within the grace period after the verdict; killed" + after
	case r.ExitMessage != "":
		s = fmt.Sprintf("bochs exited (status %d)%s: %s", r.ExitCode, after, r.ExitMessage)
	default:
		s = fmt.Sprintf("bochs exited with status %d%s", r.ExitCode, after)
	}
	if err := r.Verdict.Err(); err != nil {
		s += "; " + err.Error()
	} else {
		s += "; verdict PASS"
	}
	if e := r.Complaints(); e != "" {
		s += "; bochs panicked: " + e
	}
	return s
}

// Passed reports a clean pass: the protocol's single PASS verdict, and then
// the guest powered off.
func (r *Result) Passed() bool {
	return !r.TimedOut && r.PoweredOff && r.Verdict.OK()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max  int
	buf  []byte
	lost int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.lost += over
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) Bytes() []byte {
	if b.lost == 0 {
		return b.buf
	}
	return append([]byte("[... "+strconv.Itoa(b.lost)+" bytes cut ...]\n"), b.buf...)
}

// readTail returns up to the last max bytes of a file, from a line start.
func readTail(path string, limit int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	off := max(0, fi.Size()-limit)
	b := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(b, off)
	b = b[:n]
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}
