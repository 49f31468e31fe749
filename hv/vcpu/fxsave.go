package vcpu

import (
	"encoding/binary"

	"gohv/x86"
)

// ResetFXSave writes the FPU/SSE state of a VP after RESET/INIT into a
// 512-byte FXSAVE area: FCW 037Fh, MXCSR 1F80h, everything else zero (SDM
// Vol. 1 10.5.1, Vol. 3A Table 10-1).
func ResetFXSave(area []byte) {
	a := area[:x86.FXSaveAreaSize]
	clear(a)
	binary.LittleEndian.PutUint16(a[x86.FXSaveFCWOffset:], x86.FCWReset)
	binary.LittleEndian.PutUint32(a[x86.FXSaveMXCSROffset:], x86.MXCSRReset)
}
