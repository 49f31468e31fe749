package acpitables

import "fmt"

// The DSDT's AML: \_S5 when there are sleep registers, and under \_SB the
// devices a guest cannot find otherwise. Its ASL equivalent, for the
// default platform, is testdata/dsdt.asl.

// Hardware IDs.
const (
	hidUART  = "PNP0501" // 16550A-compatible COM port
	hidRTC   = "PNP0B00" // AT real-time clock
	hidVMBus = "VMBus"   // what Linux's hv_vmbus matches (a string, not an EISA ID)
	hidPCI   = "PNP0A03" // PCI host bridge (conventional PCI: no _OSC, no MCFG)
)

// rtcPorts is how many ports the AT RTC decodes: index and data.
const rtcPorts = 2

// uartPorts is how many ports a 16550 decodes.
const uartPorts = 8

// The DSDT's top level is the namespace root, so \_S5 and \_SB are written
// without the root prefix, as ASL compilers emit them.
func (p Platform) dsdt() []byte {
	var aml []byte
	if p.Sleep != nil {
		// Package(2) {SLP_TYPa, SLP_TYPb} (7.4.2): hardware-reduced OSPM
		// writes SLP_TYPa to the sleep control register; there is no
		// PM1b, so SLP_TYPb is 0.
		aml = append(aml, amlName("_S5", amlPackage(amlInteger(uint64(p.Sleep.S5Type)), amlInteger(0)))...)
	}
	var devices [][]byte
	for i, s := range p.Serial {
		name := fmt.Sprintf("COM%d", i+1)
		devices = append(devices, amlDevice(name,
			amlName("_HID", amlEISAID(hidUART)),
			amlName("_UID", amlInteger(uint64(i))),
			amlName("_DDN", amlString(name)),
			amlName("_CRS", resTemplate(resIO(s.Port, uartPorts), resIRQ(s.IRQ))),
		))
	}
	if p.RTC != nil {
		// No IRQ in _CRS: the clock raises no interrupts, and Linux's
		// rtc_cmos then runs without one.
		devices = append(devices, amlDevice("RTC0",
			amlName("_HID", amlEISAID(hidRTC)),
			amlName("_CRS", resTemplate(resIO(p.RTC.Port, rtcPorts))),
		))
	}
	if p.VMBus {
		// An empty _CRS, which hv_vmbus requires to exist; the VMBus
		// interrupt is the hypervisor callback vector, not an ACPI one.
		devices = append(devices, amlDevice("VMBS",
			amlName("_HID", amlString(hidVMBus)),
			amlName("_UID", amlInteger(0)),
			amlName("_CRS", resTemplate()),
		))
	}
	if p.PCI != nil {
		// The host bridge Linux's ACPI PCI root driver scans bus 0
		// behind, through the configuration ports (there is no MCFG);
		// _CRS gives it the bus and the window its BARs are in, so
		// Linux claims them where they are.
		devices = append(devices, amlDevice("PCI0",
			amlName("_HID", amlEISAID(hidPCI)),
			amlName("_UID", amlInteger(0)),
			amlName("_CRS", resTemplate(resBusNumbers(0, 0), resMemoryWindow(p.PCI.MMIOBase, p.PCI.MMIOLength))),
		))
	}
	return append(aml, amlScope("_SB", devices...)...)
}
