package initramfs

// Prologue is the start every test /init shares: PATH, the mounts of
// proc, sysfs and devtmpfs, and the modules ModulesList names loaded in
// order, one "guest: insmod.<module> ok|failed" line each (<module> as the
// kernel names it: "-" in the file name is "_"). It also defines the
// shell function
//
//	waitfor WHAT CONDITION
//
// which evaluates CONDITION (a shell command line) every 0.2 s until it
// holds, for at most 20 s of guest time; then it reports
// "guest: WHAT-timeout <the block devices there are>" and fails.
const Prologue = `export PATH=/bin
waitfor() {
	n=0
	until eval "$2"; do
		n=$((n + 1))
		if [ $n -gt 100 ]; then
			echo "guest: $1-timeout $(ls /sys/block | tr '\n' ' ')"
			return 1
		fi
		sleep 0.2
	done
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
if [ -r /` + ModulesList + ` ]; then
	while read -r m; do
		[ -n "$m" ] || continue
		name=${m##*/}
		name=$(echo "${name%.ko}" | tr - _)
		if insmod "/$m"; then
			echo "guest: insmod.$name ok"
		else
			echo "guest: insmod.$name failed"
		fi
	done < /` + ModulesList + `
fi
`

// DefaultInit is the test guest's /init. busybox sh runs it as process 1:
// it mounts proc, sysfs and devtmpfs, loads the modules ModulesList names,
// reports one "guest: <key> <value>" line each for
//
//	uname-r       the kernel release
//	hypervisor    what the kernel detected: dmesg's "Hypervisor detected: X"
//	              (or /sys/hypervisor/type), "none" without one
//	hyperv        yes when that is "Microsoft Hyper-V", else no
//	clocksource   /sys/devices/system/clocksource/clocksource0/current_clocksource
//	memtotal-kib  MemTotal from /proc/meminfo
//	cpus          the processors in /proc/cpuinfo
//
// then "guest: poweroff" and powers off at once (poweroff -f: no init
// system to stop). Should poweroff fail, init exits and the kernel panics,
// which panic=-1 on the command line turns into a reboot — an end either
// way. "guest: insmod.<module> ok|failed" lines come first when modules
// are listed (<module> as the kernel names it: "-" in the file name is "_").
const DefaultInit = `#!/bin/sh
# gohv test guest /init (tools/debian/initramfs.DefaultInit): report what the
# kernel found, one "guest: <key> <value>" line each, then power off.
` + Prologue + `echo "guest: uname-r $(uname -r)"
hv=$(dmesg | sed -n 's/.*Hypervisor detected: //p' | head -n 1)
if [ -z "$hv" ] && [ -r /sys/hypervisor/type ]; then
	hv=$(cat /sys/hypervisor/type)
fi
echo "guest: hypervisor ${hv:-none}"
if [ "$hv" = "Microsoft Hyper-V" ]; then
	echo "guest: hyperv yes"
else
	echo "guest: hyperv no"
fi
echo "guest: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "guest: memtotal-kib $(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo)"
echo "guest: cpus $(grep -c '^processor' /proc/cpuinfo)"
echo "guest: poweroff"
poweroff -f
`

// StopTraps makes a shell script running as process 1 do what busybox's
// poweroff and reboot ask of an init, which they signal instead of acting
// themselves: SIGUSR2 powers off, SIGTERM reboots (after a sync, as the
// line it prints says). The kernel runs /sbin/poweroff or /sbin/reboot
// when hv_utils' shutdown service is asked to stop or restart the guest
// (orderly_poweroff, orderly_reboot; StopperFiles). ash runs a trap once
// the foreground command ends, or at once during the wait builtin.
const StopTraps = `trap 'echo "guest: init-signal poweroff"; sync; poweroff -f' USR2
trap 'echo "guest: init-signal reboot"; sync; reboot -f' TERM
`

// stopper is /sbin/poweroff and /sbin/reboot (one script under both
// names): the kernel's user-mode helper starts it with no open files, so
// it says on the console what it runs, then runs busybox's applet, which
// signals process 1 (StopTraps).
const stopper = `#!/bin/sh
# gohv guest /sbin/poweroff and /sbin/reboot (tools/debian/initramfs).
echo "guest: ran $0" > /dev/console
exec /bin/${0##*/} "$@"
`

// StopperFiles are /sbin/poweroff and /sbin/reboot for an initramfs whose
// /init sets StopTraps.
func StopperFiles() []File {
	return []File{
		{Name: "sbin/poweroff", Mode: 0o755, Data: []byte(stopper)},
		{Name: "sbin/reboot", Mode: 0o755, Data: []byte(stopper)},
	}
}

// ShellInit is an /init for a person (make run's): the same mounts and
// modules as the test inits (Prologue); when hv_storvsc is among the
// modules, up to 5 s for the first disk, /dev/sda, which it mounts on /mnt
// as ext4 (make run's disk: gohvctl guest disk); when the kernel command
// line says gohv.ip=ADDRESS/LENGTH (make run's default configuration
// does), up to 5 s for eth0 (hv_netvsc), which it brings up with that
// address, and lo; then an interactive shell
// on the console with job control (cttyhack), and a power-off when it
// exits. With StopTraps and StopperFiles a shutdown or restart the root
// asks for through hv_utils (Ctrl-] s, Ctrl-] r) ends it too, the shell
// running in the background while process 1 waits for it.
const ShellInit = `#!/bin/sh
# gohv guest /init (tools/debian/initramfs.ShellInit): a shell on the console.
` + StopTraps + Prologue + `export HOME=/root
if grep -q hv_storvsc /` + ModulesList + ` 2>/dev/null; then
	i=0
	while [ ! -b /dev/sda ] && [ $i -lt 25 ]; do
		i=$((i + 1))
		sleep 0.2
	done
fi
if [ -b /dev/sda ]; then
	mkdir -p /mnt
	if mount -t ext4 /dev/sda /mnt; then
		echo "guest: mounted /dev/sda on /mnt"
	else
		echo "guest: could not mount /dev/sda on /mnt"
	fi
fi
for w in $(cat /proc/cmdline); do
	case $w in gohv.ip=*) addr=${w#gohv.ip=} ;; esac
done
if [ -n "$addr" ]; then
	i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 25 ]; do
		i=$((i + 1))
		sleep 0.2
	done
	ip link set lo up
	if ip addr add "$addr" dev eth0 && ip link set eth0 up; then
		echo "guest: eth0 is $addr ($(cat /sys/class/net/eth0/address))"
	else
		echo "guest: could not bring eth0 up as $addr"
	fi
fi
echo "guest: shell on $(uname -r); exit powers off"
setsid cttyhack sh -l &
wait $!
umount /mnt 2>/dev/null
poweroff -f
`

// PanicInit is an /init whose kernel panics: it reports "guest: panic"
// and crashes the kernel through the magic SysRq trigger ("c": a NULL
// dereference in the kernel, which panics). A kernel that sees Hyper-V's
// crash MSRs (CPUID 0x40000003 EDX bit 10) reports the panic through
// HV_X64_MSR_CRASH_P0-P4 and CRASH_CTL before panic= takes effect: the
// partition tests use it to see a crashing guest end its own partition
// only.
const PanicInit = `#!/bin/sh
# gohv test guest /init (tools/debian/initramfs.PanicInit): crash the kernel.
export PATH=/bin
mount -t proc proc /proc
echo "guest: uname-r $(uname -r)"
echo "guest: panic"
echo c > /proc/sysrq-trigger
echo "guest: still running after the crash"
`

// KernelCmdline is the test guest's kernel command line: the serial
// console, a reboot at once on a panic (with QEMU's -no-reboot, an exit)
// instead of a hang, and the words given.
func KernelCmdline(extra ...string) []string {
	return append([]string{"console=ttyS0", "panic=-1"}, extra...)
}
