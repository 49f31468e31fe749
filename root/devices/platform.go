package devices

import (
	"time"

	"gohv/hv"
	"gohv/root/acpitables"
)

// COM1Port is where the core's emulated UART sits (hv registers it with
// every partition, on I/O APIC pin hv.COM1IRQ).
const COM1Port = 0x3f8

// Config is what the device models need from the root.
type Config struct {
	// Clock is the host's wall clock, for the RTC; nil is time.Now.
	Clock func() time.Time
	// Reboot is called when the guest resets the machine (the 8042's
	// reset line, the reset control register): pass Partition.Reboot.
	// PowerOff is called when it enters S5: pass Partition.PowerOff. Both
	// run on the VP's thread, inside the OUT that asked, without any
	// device lock held, and may be called again if the guest repeats
	// itself; nil ignores the request.
	Reboot   func(why string)
	PowerOff func(why string)
}

// Platform is the set of legacy devices a partition's guest finds beside
// the core's COM1 and debug-exit port. Register puts them on the port
// bus; ACPI describes them for acpitables.Build.
type Platform struct {
	RTC   *RTC
	PCI   *PCIConfig
	I8042 *I8042
	POST  *POST
	PortB *PortB
	Sleep *Sleep
}

// New makes the devices.
func New(c Config) *Platform {
	return &Platform{
		RTC:   NewRTC(c.Clock),
		PCI:   NewPCIConfig(c.Reboot),
		I8042: NewI8042(c.Reboot),
		POST:  &POST{},
		PortB: &PortB{},
		Sleep: NewSleep(c.PowerOff),
	}
}

// Bus is where devices are registered: *hv.Partition is one.
type Bus interface {
	AddPort(base, n uint16, dev hv.PortDevice)
}

// Register routes each device's ports on b. Call before the partition
// starts.
func (p *Platform) Register(b Bus) {
	b.AddPort(I8042DataPort, 1, p.I8042)
	b.AddPort(PortBPort, 1, p.PortB)
	b.AddPort(I8042CommandPort, 1, p.I8042)
	b.AddPort(RTCPort, RTCPorts, p.RTC)
	b.AddPort(POSTPort, 1, p.POST)
	b.AddPort(SleepControlPort, SleepPorts, p.Sleep)
	b.AddPort(PCIConfigAddress, PCIConfigPorts, p.PCI)
}

// ACPI describes these devices, the core's interrupt controllers and
// COM1 for a partition of vps VPs, with the VMBus device in the DSDT.
//
// With functions behind the PCI ports (PCIConfig.AddFunction), the DSDT
// gets a host bridge for bus 0 whose memory window is [PCIWindowBase,
// PCIWindowTop): Linux on ACPI finds PCI devices only behind one.
func (p *Platform) ACPI(vps int) acpitables.Platform {
	var host *acpitables.PCIHost
	if p.PCI.Functions() > 0 {
		host = &acpitables.PCIHost{MMIOBase: PCIWindowBase, MMIOLength: PCIWindowTop - PCIWindowBase}
	}
	return acpitables.Platform{
		PCI:    host,
		VPs:    vps,
		IOAPIC: acpitables.IOAPIC{ID: hv.IOAPICID, Base: hv.IOAPICBase, GSIBase: 0},
		Serial: []acpitables.Serial{{Port: COM1Port, IRQ: hv.COM1IRQ}},
		RTC:    &acpitables.RTC{Port: RTCPort, Century: CMOSCentury},
		Sleep:  &acpitables.Sleep{ControlPort: SleepControlPort, StatusPort: SleepStatusPort, S5Type: S5SleepType},
		Reset:  &acpitables.Reset{Port: ResetControlPort, Value: ResetValue},
		VMBus:  true,
	}
}
