package devices

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gohv/root/acpitables"
)

// TestLinuxTakesThePlatform boots a real Linux kernel on the tables ACPI()
// describes and checks that it accepts them and powers off through the
// sleep registers. Opt-in, because it needs a distribution kernel and a
// static busybox (Debian's linux-image-amd64 and busybox-static, from
// apt-get download) and half a minute of QEMU TCG:
//
//	GOHV_TEST_VMLINUZ=/path/vmlinuz GOHV_TEST_BUSYBOX=/path/busybox go test -run Linux ./root/devices
//
// QEMU's own machine stands in for gohv's: machine pc with its ACPI
// tables off, the kernel pointed at ours with acpi_rsdp=, its devices
// (PIIX, 16550, MC146818) where gohv's are, and two isa-debugcon ports
// recording what the guest writes to the sleep registers. QEMU TCG has no
// Hyper-V frequency MSRs, so tsc_early_khz= gives the hardware-reduced
// kernel the TSC frequency it would read from them under gohv.
func TestLinuxTakesThePlatform(t *testing.T) {
	kernel, busybox := os.Getenv("GOHV_TEST_VMLINUZ"), os.Getenv("GOHV_TEST_BUSYBOX")
	if kernel == "" || busybox == "" {
		t.Skip("set GOHV_TEST_VMLINUZ and GOHV_TEST_BUSYBOX to boot a real kernel on these tables")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("no qemu-system-x86_64")
	}
	const base = 0x700_0000 // in RAM, reserved with memmap= below
	tb, err := acpitables.Build(New(Config{}).ACPI(2), base)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tables, initrd := filepath.Join(dir, "tables.bin"), filepath.Join(dir, "initrd.cpio")
	serial, ctl, sts := filepath.Join(dir, "serial.log"), filepath.Join(dir, "sleep-control"), filepath.Join(dir, "sleep-status")
	if err := os.WriteFile(tables, tb.Bytes, 0o644); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	init := "#!/bin/busybox sh\n/bin/busybox mount -t sysfs sys /sys\n" +
		"/bin/busybox echo acpi-devices: $(/bin/busybox cat /sys/bus/acpi/devices/*/hid)\n/bin/busybox poweroff -f\n"
	if err := os.WriteFile(initrd, newc([]cpioFile{{"bin", nil, 0o40755}, {"sys", nil, 0o40755},
		{"bin/busybox", bb, 0o100755}, {"init", []byte(init), 0o100755}}), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-machine", "pc,acpi=off", "-cpu", "max", "-smp", "2", "-m", "256",
		"-display", "none", "-no-reboot", "-serial", "file:"+serial, "-kernel", kernel, "-initrd", initrd,
		"-append", fmt.Sprintf("console=ttyS0 acpi_rsdp=%#x memmap=0x10000$%#x nokaslr panic=-1 tsc_early_khz=1000000 lpj=4000000", base, base),
		"-device", fmt.Sprintf("loader,file=%s,addr=%#x,force-raw=on", tables, base),
		"-chardev", "file,id=ctl,path="+ctl, "-device", fmt.Sprintf("isa-debugcon,iobase=%#x,chardev=ctl", SleepControlPort),
		"-chardev", "file,id=sts,path="+sts, "-device", fmt.Sprintf("isa-debugcon,iobase=%#x,chardev=sts", SleepStatusPort))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// QEMU does not power off at our port: stop it once the guest has
	// written the sleep control register.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for wait := true; wait; {
		select {
		case <-done:
			wait = false
		case <-time.After(200 * time.Millisecond):
			if b, _ := os.ReadFile(ctl); len(b) > 0 {
				time.Sleep(200 * time.Millisecond)
				cancel()
				<-done
				wait = false
			}
		}
	}
	log, _ := os.ReadFile(serial)
	gotCtl, _ := os.ReadFile(ctl)
	gotSts, _ := os.ReadFile(sts)
	for _, want := range []string{
		"ACPI: PM: (supports S0 S5)",
		"ACPI: Using ACPI (MADT) for SMP configuration information",
		"smp: Brought up 1 node, 2 CPUs",
		"ttyS0 at I/O 0x3f8",
		"rtc_cmos 00:01: registered as rtc0",
		"acpi-devices: LNXSYBUS LNXSYBUS LNXSYSTM PNP0501 PNP0B00 VMBUS", // the root, \_SB and our three
		"reboot: Power down",
	} {
		if !bytes.Contains(log, []byte(want)) {
			t.Errorf("serial log lacks %q", want)
		}
	}
	for _, bad := range []string{"ACPI Error", "ACPI BIOS Error", "ACPI Warning", "Attempted table install failed"} {
		if bytes.Contains(log, []byte(bad)) {
			t.Errorf("serial log has %q", bad)
		}
	}
	if !bytes.Equal(gotSts, []byte{wakSts}) || !bytes.Equal(gotCtl, []byte{S5SleepType<<slpTypShift | slpEn}) {
		t.Errorf("sleep status got % x, control % x; want 80, 34", gotSts, gotCtl)
	}
	if t.Failed() {
		t.Logf("serial log:\n%s", strings.TrimSpace(string(log)))
	}
}

type cpioFile struct {
	name string
	data []byte
	mode uint32
}

// newc writes an initramfs archive in the "newc" cpio format the kernel
// unpacks: a 110-byte ASCII header per file, name and data each padded to
// four bytes, and a TRAILER!!! entry.
func newc(files []cpioFile) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for i, f := range append(files, cpioFile{name: "TRAILER!!!"}) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			i+1, f.mode, 0, 0, 1, 0, len(f.data), 0, 0, 0, 0, len(f.name)+1, 0)
		b.WriteString(f.name)
		b.WriteByte(0)
		pad()
		b.Write(f.data)
		pad()
	}
	return b.Bytes()
}
