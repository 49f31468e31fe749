package metal

import "unsafe"

// initialFX is the clean FPU/SSE image new contexts start from, at the first
// 16-byte boundary in initialFXBuf (FXSAVE and FXRSTOR need that alignment).
func initialFX() *[fxAreaSize]byte {
	return (*[fxAreaSize]byte)(unsafe.Pointer((uintptr(unsafe.Pointer(&initialFXBuf[0])) + 15) &^ 15))
}
