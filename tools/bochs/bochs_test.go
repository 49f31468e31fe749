package bochs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gohv/tools/media/bootmedia"
	"gohv/tools/verdict"
)

func TestBochsrcDefaults(t *testing.T) {
	rc, err := Config{ISO: "x.iso"}.Bochsrc()
	if err != nil {
		t.Fatal(err)
	}
	s := string(rc)
	for _, want := range []string{
		"cpu: model=corei7_skylake_x, count=1, ips=1000000000, reset_on_triple_fault=0\n",
		"clock: sync=none, time0=local\n",
		"memory: guest=512, host=512\n",
		"romimage: file=/usr/share/bochs/BIOS-bochs-latest, options=fastboot\n",
		"vgaromimage: file=/usr/share/vgabios/vgabios.bin\n",
		"ata0-master: type=cdrom, path=boot.iso, status=inserted\n",
		"boot: cdrom\n",
		"com1: enabled=1, mode=file, dev=serial.log\n",
		"display_library: rfb, options=\"timeout=0\"\n",
		"log: bochs.log\n",
		"panic: action=fatal\n",
		"error: action=report\n",
		"info: action=ignore\n",
		"speaker: enabled=0\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("bochsrc lacks %q:\n%s", want, s)
		}
	}
	// Every option line is "name: value": nothing else would parse.
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(l, "#") && !strings.Contains(l, ": ") {
			t.Errorf("line %q is not an option", l)
		}
	}
}

func TestBochsrcOptions(t *testing.T) {
	rc, err := Config{MemMiB: 2048, CPUModel: "corei7_icelake_u", IPS: 50_000_000,
		BIOS: "/b/bios.bin", VGABIOS: "/b/vga.bin", Extra: []string{"port_e9_hack: enabled=1"}}.Bochsrc()
	if err != nil {
		t.Fatal(err)
	}
	s := string(rc)
	for _, want := range []string{"model=corei7_icelake_u,", "ips=50000000,", "memory: guest=2048, host=2048",
		"romimage: file=/b/bios.bin,", "vgaromimage: file=/b/vga.bin", "\nport_e9_hack: enabled=1\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("bochsrc lacks %q:\n%s", want, s)
		}
	}
	for _, bad := range []Config{
		{CPUModel: "skylake, count=2"},
		{CPUs: -1},
		{CPUs: 17},
		{MemMiB: 8},
		{IPS: 1000},
		{BIOS: "/path with space/bios"},
		{VGABIOS: "/a,b"},
		{Extra: []string{"a: b\nc: d"}},
		{Timeout: -time.Second},
	} {
		if _, err := bad.Bochsrc(); err == nil {
			t.Errorf("no error for %+v", bad)
		}
	}
}

// With Input, COM1 is a socket-client connection to the address Run
// listens on; Input without one cannot be written.
func TestBochsrcInput(t *testing.T) {
	c := Config{ISO: "x.iso", Input: strings.NewReader(""), serialAddr: "127.0.0.1:4321"}
	rc, err := c.Bochsrc()
	if err != nil {
		t.Fatal(err)
	}
	if s := string(rc); !strings.Contains(s, "\ncom1: enabled=1, mode=socket-client, dev=127.0.0.1:4321\n") || strings.Contains(s, FileSerial) {
		t.Errorf("bochsrc:\n%s", s)
	}
	for _, addr := range []string{"", "127.0.0.1:1, mode=file", "localhost:80", "127.0.0.1"} {
		c.serialAddr = addr
		if _, err := c.Bochsrc(); err == nil {
			t.Errorf("no error for input at %q", addr)
		}
	}
}

func TestMediaConfig(t *testing.T) {
	for _, tc := range []struct {
		cmdline, entry string
		args           []string
	}{
		{"", bootmedia.EntryRun, nil},
		{"selftest", bootmedia.EntrySelftest, nil},
		{"hvtest", bootmedia.EntryRun, []string{"hvtest"}},
		{" bench  x=1 ", bootmedia.EntryRun, []string{"bench", "x=1"}},
		{"selftest inject=exception", bootmedia.EntrySelftest, []string{"inject=exception"}},
	} {
		c, err := MediaConfig(tc.cmdline)
		if err != nil {
			t.Fatalf("%q: %v", tc.cmdline, err)
		}
		if c.Default != tc.entry || !slices.Equal(c.Args, tc.args) || c.Timeout != 0 || c.SerialUnit != 0 || c.Baud != 115200 {
			t.Errorf("%q: got %+v", tc.cmdline, c)
		}
	}
	if _, err := MediaConfig("a;reboot"); err == nil {
		t.Error("no error for a word GRUB would interpret")
	}
}

// fakeBochs installs a shell script as the emulator, and ROM images that
// exist, so Run's file handling, verdict, exit and timeout handling are
// tested without booting anything. The script runs in the work directory:
// it writes serial.log and bochs.log there as Bochs would.
func fakeBochs(t *testing.T, script string) Config {
	t.Helper()
	return fakeBochsIn(t, "/bin/sh", script)
}

// fakeBochsIn is fakeBochs with the script run by shell.
func fakeBochsIn(t *testing.T, shell, script string) Config {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "bochs")
	// Bochs's own lines on exiting after the guest's ACPI power-off.
	const prelude = `poweroff() {
	echo '01234567890p[ACPI  ] >>PANIC<< ACPI control: soft power off' >> bochs.log
	echo 'Bochs is exiting with the following message:'
	echo '[ACPI  ] ACPI control: soft power off'
	exit 1
}
`
	if err := os.WriteFile(p, []byte("#!"+shell+"\n"+prelude+script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := Binary
	Binary = p
	t.Cleanup(func() { Binary = old })
	c := Config{ISO: filepath.Join(dir, "gohv.iso"), BIOS: filepath.Join(dir, "bios"), VGABIOS: filepath.Join(dir, "vgabios"),
		Timeout: 20 * time.Second, Grace: 300 * time.Millisecond}
	for _, f := range []string{c.ISO, c.BIOS, c.VGABIOS} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestRunEndings(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		passed       bool
		poweredOff   bool
		killed       bool
		describe     string
	}{
		{"pass", "echo 'gohv: verdict PASS' > serial.log; poweroff", true, true, false, "powered off (ACPI S5)"},
		// Under Bochs the power-off can overtake the verdict line's newline.
		{"pass-no-newline", "printf 'GRUB noise\\r\\ngohv: verdict PASS' > serial.log; poweroff", true, true, false, "verdict PASS"},
		{"fail", "echo 'gohv: verdict FAIL broken' > serial.log; poweroff", false, true, false, "FAIL broken"},
		{"failed-check", "printf 'gohv: check x FAIL bad\\ngohv: verdict PASS\\n' > serial.log; poweroff", false, true, false, "check x failed"},
		{"rebooted", "printf 'gohv: verdict PASS\\ngohv: verdict PASS\\n' > serial.log; poweroff", false, true, false, "2 verdict lines"},
		{"halted", "echo 'gohv: verdict PASS' > serial.log; exec sleep 30", false, false, true, "no power-off within the grace period after the verdict; killed"},
		{"crashed", "echo 'gohv: banner' > serial.log; echo '00000000000p[CPU0  ] >>PANIC<< exception(): 3rd (13) exception with no resolution' >> bochs.log; " +
			"echo 'Bochs is exiting with the following message:'; echo '[CPU0  ] exception(): 3rd (13) exception with no resolution'; exit 1",
			false, false, false, "bochs exited (status 1) after 0s: exception(): 3rd (13) exception with no resolution; verdict: no verdict"},
		{"bad-config", "echo 'Bochs is exiting with the following message:'; echo \"[      ] bochsrc:9: display library 'nogui' not available\"; exit 1",
			false, false, false, "display library 'nogui' not available; verdict: no verdict line"},
		{"no-output", "exit 0", false, false, false, "bochs exited with status 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeBochs(t, tc.script)
			start := time.Now()
			r, err := Run(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if r.Passed() != tc.passed || r.PoweredOff != tc.poweredOff || r.Killed != tc.killed || r.TimedOut ||
				!strings.Contains(r.Describe(), tc.describe) {
				t.Fatalf("passed %v powered-off %v killed %v timed-out %v describe %q", r.Passed(), r.PoweredOff, r.Killed, r.TimedOut, r.Describe())
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if tc.killed && r.ExitCode != -1 {
				t.Errorf("exit code %d after a kill", r.ExitCode)
			}
		})
	}
}

func TestRunFilesAndArgs(t *testing.T) {
	c := fakeBochs(t, `
[ "$*" = "-q -f bochsrc -rc bochsrc.rc" ] || { echo "args: $*" > serial.log; exit 2; }
grep -q '^ata0-master: type=cdrom, path=boot.iso, status=inserted$' bochsrc || { echo "bochsrc" > serial.log; exit 2; }
[ "$(cat bochsrc.rc)" = c ] || { echo "rc" > serial.log; exit 2; }
[ "$(cat boot.iso)" = x ] || { echo "iso" > serial.log; exit 2; }
echo 'gohv: verdict PASS' > serial.log
poweroff
`)
	keep := filepath.Join(t.TempDir(), "work")
	c.WorkDir = keep
	r, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Passed() {
		t.Fatalf("%s\n%s", r.Describe(), r.Log)
	}
	for _, f := range []string{FileConfig, FileRC, FileISO, FileSerial, FileLog} {
		if _, err := os.Stat(filepath.Join(keep, f)); err != nil {
			t.Errorf("work directory: %v", err)
		}
	}
	// A second run in the same directory starts from fresh logs.
	r, err = Run(context.Background(), c)
	if err != nil || r.Verdict.Verdicts != 1 || bytes.Count(r.BochsLog, []byte("soft power off")) != 1 {
		t.Fatalf("second run: %v %s", err, r.Describe())
	}
}

func TestRunTemporaryDirectoryRemoved(t *testing.T) {
	c := fakeBochs(t, "pwd > \"$FAKE_PWD_FILE\"; echo 'gohv: verdict PASS' > serial.log; poweroff")
	pwdFile := filepath.Join(t.TempDir(), "pwd")
	t.Setenv("FAKE_PWD_FILE", pwdFile)
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pwdFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(strings.TrimSpace(string(b))); !os.IsNotExist(err) {
		t.Errorf("work directory %s left behind: %v", b, err)
	}
}

func TestRunStreamsConsole(t *testing.T) {
	c := fakeBochs(t, `
printf 'gohv: banner' > serial.log
sleep 0.3
printf ' x\r\ngohv: check a PASS\r\n' >> serial.log
sleep 0.3
printf 'gohv: verdict PASS\r\n' >> serial.log
poweroff
`)
	var console bytes.Buffer
	c.Console = &console
	r, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	const want = "gohv: banner x\r\ngohv: check a PASS\r\ngohv: verdict PASS\r\n"
	if console.String() != want || string(r.Log) != want || !r.Passed() {
		t.Fatalf("console %q log %q: %s", console.String(), r.Log, r.Describe())
	}
}

func TestRunTimeout(t *testing.T) {
	c := fakeBochs(t, "echo 'gohv: banner' > serial.log; exec sleep 30")
	c.Timeout = 300 * time.Millisecond
	r, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Passed() || r.ExitCode != -1 || !strings.Contains(string(r.Log), "gohv: banner") ||
		!strings.Contains(r.Describe(), "timed out") || r.Elapsed > 5*time.Second {
		t.Fatalf("%+v %s", r, r.Describe())
	}
}

// TestRunKillsProcessGroup: Bochs is killed with everything it started.
func TestRunKillsProcessGroup(t *testing.T) {
	c := fakeBochs(t, `
sleep 30 &
echo $! > "$FAKE_CHILD_FILE"
echo 'gohv: verdict PASS' > serial.log
exec sleep 30
`)
	childFile := filepath.Join(t.TempDir(), "child")
	t.Setenv("FAKE_CHILD_FILE", childFile)
	r, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Killed {
		t.Fatalf("not killed: %s", r.Describe())
	}
	b, err := os.ReadFile(childFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The child is killed; once reaped (it was reparented) it is gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) || zombie(pid) {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d of the fake bochs still running", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// zombie reports whether pid has exited but not been reaped yet.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func TestRunCancelled(t *testing.T) {
	c := fakeBochs(t, "exec sleep 30")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r, err := Run(ctx, c)
	if !errors.Is(err, context.DeadlineExceeded) || r == nil || r.TimedOut {
		t.Fatalf("err %v result %+v", err, r)
	}
}

func TestRunMissing(t *testing.T) {
	c := fakeBochs(t, "exit 0")
	bad := c
	bad.ISO = "/nonexistent/gohv.iso"
	if _, err := Run(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "iso") {
		t.Errorf("missing ISO: %v", err)
	}
	bad = c
	bad.BIOS = "/nonexistent/BIOS-bochs-latest"
	if _, err := Run(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "apt-get install bochsbios") {
		t.Errorf("missing BIOS: %v", err)
	}
	bad = c
	bad.VGABIOS = "/nonexistent/vgabios.bin"
	if _, err := Run(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "apt-get install vgabios") {
		t.Errorf("missing VGA BIOS: %v", err)
	}
	Binary = filepath.Join(t.TempDir(), "no-bochs-here")
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrNoBochs) || !strings.Contains(err.Error(), "apt-get install bochs") {
		t.Errorf("missing bochs: %v", err)
	}
}

func TestExitMessage(t *testing.T) {
	out := []byte("00000000000i[      ] reading configuration from bochsrc\n" +
		"========================================================================\n" +
		"Bochs is exiting with the following message:\n" +
		"[ACPI  ] ACPI control: soft power off\n" +
		"========================================================================\n")
	if m := exitMessage(out, nil); m != PowerOffMessage {
		t.Errorf("from output: %q", m)
	}
	log := []byte("01019052750p[CPU0  ] >>PANIC<< something broke\n")
	if m := exitMessage(nil, log); m != "something broke" {
		t.Errorf("from log: %q", m)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("0123456789"))
	b.Write([]byte("ab"))
	if got := string(b.Bytes()); got != "[... 4 bytes cut ...]\n456789ab" {
		t.Errorf("%q", got)
	}
}

// TestBuildISO builds a real ISO from a stand-in kernel (a file with a
// Multiboot2 header is all bootmedia checks) when GRUB is installed.
func TestBuildISO(t *testing.T) {
	dir := t.TempDir()
	k := make([]byte, 4096)
	le := binary.LittleEndian
	le.PutUint32(k[64:], 0xe85250d6) // magic
	le.PutUint32(k[68:], 0)          // architecture: i386
	le.PutUint32(k[72:], 16)         // header length
	const magic, length = 0xe85250d6, 16
	le.PutUint32(k[76:], uint32(-(magic+length)&0xffffffff))
	kernel := filepath.Join(dir, "gohv")
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sub", "hvtest.iso")
	err := BuildISO(kernel, "hvtest", out)
	var miss *bootmedia.MissingError
	if errors.As(err, &miss) {
		if !strings.Contains(err.Error(), "apt-get install") {
			t.Errorf("missing tools without packages: %v", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Size() < 1<<20 {
		t.Fatalf("iso: %v %v", fi, err)
	}
	if err := BuildISO(filepath.Join(dir, "nonexistent"), "", out); err == nil {
		t.Error("no error for a missing kernel")
	}
}

func TestComplaints(t *testing.T) {
	r := &Result{ExitMessage: "last one", BochsLog: []byte(
		"01089836590e[CPU0  ] VMEXIT: EPT violation for guest paddr 0x0000c0000010 laddr 0x00000000c0000010\n" +
			"01089836591p[HPET  ] >>PANIC<< first one\n" +
			"01089836592p[ACPI  ] >>PANIC<< ACPI control: soft power off\n" +
			"01089836593p[CPU0  ] >>PANIC<< last one\n")}
	if got := r.Complaints(); got != "first one" {
		t.Errorf("complaints %q", got)
	}
	r.Verdict = verdict.Parse(nil)
	if d := r.Describe(); !strings.Contains(d, ": last one;") || !strings.Contains(d, "bochs panicked: first one") || strings.Contains(d, "EPT") {
		t.Errorf("describe %q", d)
	}
}

// Modules reach the ISO's boot configuration by name; names the media
// refuse are refused before anything is built.
func TestBuildISOModulesRefusesBadNames(t *testing.T) {
	err := BuildISOModules(context.Background(), "/nonexistent/gohv", "", filepath.Join(t.TempDir(), "x.iso"),
		[]*bootmedia.Module{{Name: "initrd"}, {Name: "Initrd"}})
	if err == nil || !strings.Contains(err.Error(), "differ in more than case") {
		t.Errorf("BuildISOModules = %v", err)
	}
}

// socketBochs is a fake Bochs in socket-client mode: it connects to the
// port its bochsrc names (bash's /dev/tcp), as Bochs does when it starts,
// and runs script with the connection on descriptor 3.
func socketBochs(t *testing.T, script string) Config {
	t.Helper()
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("the fake Bochs needs bash's /dev/tcp:", err)
	}
	return fakeBochsIn(t, "/bin/bash", `
port=$(sed -n 's/^com1: enabled=1, mode=socket-client, dev=127\.0\.0\.1:\([0-9]*\)$/\1/p' bochsrc)
exec 3<>/dev/tcp/127.0.0.1/$port || exit 2
`+script)
}

// With Input the guest's output arrives through the socket into the log,
// the console and the verdict, and Input reaches the guest; Input's end
// leaves the connection open (Bochs would read its end as NUL bytes).
func TestRunInput(t *testing.T) {
	c := socketBochs(t, `
printf 'gohv: banner\r\n' >&3
IFS= read -r line <&3
printf 'got %s\r\n' "$line" >&3
read -r -t 1 more <&3
printf 'after the input: %d\r\n' $? >&3
printf 'gohv: verdict PASS\r\n' >&3
poweroff
`)
	c.Input = strings.NewReader("echo hi\n")
	var console bytes.Buffer
	c.Console = &console
	keep := filepath.Join(t.TempDir(), "work")
	c.WorkDir = keep
	r, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	// read's status is 1 at the end of its input, 128 and more on its
	// timeout.
	const want = "gohv: banner\r\ngot echo hi\r\nafter the input: 142\r\ngohv: verdict PASS\r\n"
	if string(r.Log) != want || console.String() != want || !r.Passed() {
		t.Fatalf("log %q console %q: %s", r.Log, console.String(), r.Describe())
	}
	if _, err := os.Stat(filepath.Join(keep, FileSerial)); !os.IsNotExist(err) {
		t.Errorf("%s written with console input: %v", FileSerial, err)
	}
}

// An Input that never ends does not keep Run once Bochs has exited, nor
// does a Bochs that exits without connecting.
func TestRunInputDoesNotWait(t *testing.T) {
	for _, tc := range []struct{ name, script, log string }{
		{"never-ends", "IFS= read -r line <&3; printf 'got %s\\n' \"$line\" >&3; printf 'gohv: verdict PASS\\n' >&3; poweroff",
			"got echo hi\ngohv: verdict PASS\n"},
		{"no-connection", "exit 1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			if tc.log == "" {
				c = fakeBochs(t, tc.script)
			} else {
				c = socketBochs(t, tc.script)
			}
			pr, pw := io.Pipe()
			defer pr.Close()
			go pw.Write([]byte("echo hi\n"))
			c.Input = pr
			start := time.Now()
			r, err := Run(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Log) != tc.log {
				t.Errorf("log %q, want %q: %s", r.Log, tc.log, r.Describe())
			}
			if d := time.Since(start); d > finishWait+time.Second {
				t.Errorf("Run took %v", d)
			}
		})
	}
}
