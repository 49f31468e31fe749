package metal

import "gohv/x86"

// The legacy 8259A interrupt controllers (Intel 8259A datasheet; the PC
// wiring: the slave cascades into the master's IR2). metal does not use
// them, but their reset vectors (8-15) collide with exceptions, so they are
// reprogrammed above the exceptions and then masked.

const (
	picMasterCmd  = 0x20
	picMasterData = 0x21
	picSlaveCmd   = 0xa0
	picSlaveData  = 0xa1

	picICW1Init     = 0x10   // ICW1: start initialisation
	picICW1ICW4     = 0x01   // ICW1: ICW4 follows
	picICW3SlaveIR2 = 1 << 2 // master's ICW3: a slave on IR2
	picICW3SlaveID  = 2      // slave's ICW3: its cascade identity
	picICW48086     = 0x01   // ICW4: 8086 mode
	picMaskAll      = 0xff   // OCW1: every line masked
)

// initPIC moves the PICs' vectors to vecPICBase, where they cannot be taken
// for exceptions, and masks every line. Runs at boot with interrupts off.
func initPIC() {
	x86.OUTB(picMasterCmd, picICW1Init|picICW1ICW4)
	x86.OUTB(picSlaveCmd, picICW1Init|picICW1ICW4)
	x86.OUTB(picMasterData, vecPICBase)
	x86.OUTB(picSlaveData, vecPICBase+8)
	x86.OUTB(picMasterData, picICW3SlaveIR2)
	x86.OUTB(picSlaveData, picICW3SlaveID)
	x86.OUTB(picMasterData, picICW48086)
	x86.OUTB(picSlaveData, picICW48086)
	x86.OUTB(picMasterData, picMaskAll)
	x86.OUTB(picSlaveData, picMaskAll)
}
