package metal

import (
	"testing"

	"github.com/usbarmory/tamago/amd64/lapic"
	"github.com/usbarmory/tamago/soc/intel/uart"

	"gohv/metal/acpi"
)

// TestDeviceNumbersMatchTheDatasheets pins each device register and field
// metal programs, its own names and the tamago names it relies on, to the
// value in the manual, written independently of the constant.
func TestDeviceNumbersMatchTheDatasheets(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		// Local APIC, SDM Vol. 3A Table 11-1, Figures 11-8, 11-10, 11-23.
		{"LAPIC EOI register", lapic.LAPIC_EOI, 0xb0},
		{"LAPIC spurious-interrupt vector register", lapic.LAPIC_SVR, 0xf0},
		{"SVR APIC software enable bit", lapic.SVR_ENABLE, 8},
		{"LAPIC LVT timer register", lapic.LAPIC_LVT_TIMER, 0x320},
		{"LVT timer mode field", lapic.TIMER_MODE, 17},
		{"LAPIC task priority register", lapicTPR, 0x80},
		{"LVT timer mode one-shot", lapic.TIMER_MODE_ONE_SHOT, 0b00},
		{"LVT timer mode periodic", lapic.TIMER_MODE_PERIODIC, 0b01},
		{"LVT timer mode TSC-deadline", lapic.TIMER_MODE_TSC_DEADLINE, 0b10},
		// 8259A, PC wiring.
		{"master PIC command port", picMasterCmd, 0x20},
		{"master PIC data port", picMasterData, 0x21},
		{"slave PIC command port", picSlaveCmd, 0xa0},
		{"slave PIC data port", picSlaveData, 0xa1},
		{"ICW1 with ICW4", picICW1Init | picICW1ICW4, 0x11},
		{"master ICW3", picICW3SlaveIR2, 0x04},
		{"slave ICW3", picICW3SlaveID, 0x02},
		{"ICW4 8086 mode", picICW48086, 0x01},
		// 8254 PIT, PC port B.
		{"PIT input clock", pitHz, 1193182},
		{"PIT channel 2 port", pitChannel2, 0x42},
		{"PIT command port", pitCommand, 0x43},
		{"PIT command: channel 2, lobyte/hibyte, mode 0", pitCmdChannel2Mode0, 0xb0},
		{"port B", pcPortB, 0x61},
		{"port B timer 2 gate", portBGate2, 0x01},
		{"port B speaker data", portBSpeaker, 0x02},
		{"port B timer 2 output", portBOut2Status, 0x20},
		// 16550, PC16550D Table 2.
		{"UART IER", uart.IER, 1},
		{"UART FCR", uart.FCR, 2},
		{"UART LCR", uart.LCR, 3},
		{"UART LSR", uart.LSR, 5},
		{"UART DLL", uartDLL, 0},
		{"UART DLM", uartDLM, 1},
		{"LCR DLAB", lcrDLAB, 0x80},
		{"LCR 8N1", lcrWordLen8, 0x03},
		{"FCR enable, clear both FIFOs, trigger 14", fcrEnable | fcrClearRx | fcrClearTx | fcrTrigger14, 0xc7},
		{"LSR TEMT", lsrTEMT, 0x40},
		{"115200 baud divisor", uartDivisor, 1},
		// ACPI 6.5 Table 4.13.
		{"PM1 SLP_TYP shift", acpi.PM1CntSlpTypShift, 10},
		{"PM1 SLP_EN", acpi.PM1CntSlpEn, 0x2000},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the datasheet says %#x", c.name, c.got, c.want)
		}
	}
}
