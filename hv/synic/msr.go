package synic

import (
	"errors"
	"math/bits"

	"gohv/hv/tlfs"
)

// This file: the SynIC's and the synthetic timers' MSRs (TLFS 11, "SynIC
// MSRs"; TLFS 12, "Synthetic Timer MSRs"). Reserved bits the TLFS marks RsvdP
// (SCONTROL 63:1, SIMP and SIEFP 11:1, SINTx 15:8 and 63:19) are stored and
// read back and do nothing; RsvdZ bits (EOM, STIMERx_CONFIG 15:13 and 63:20)
// raise #GP.

// ErrGP is wrapped by every error that the guest must see as #GP(0).
var ErrGP = errors.New("synic: #GP(0)")

// gpFault is a #GP reason; it wraps ErrGP.
type gpFault struct{ reason string }

func (e *gpFault) Error() string { return "synic: #GP(0): " + e.reason }
func (e *gpFault) Unwrap() error { return ErrGP }

// The #GP reasons. Each wraps ErrGP and is preallocated, so returning
// one allocates nothing.
var (
	ErrNotSynICMSR    error = &gpFault{"not a SynIC or synthetic-timer MSR"}
	ErrReadOnly       error = &gpFault{"HV_X64_MSR_SVERSION is read-only"}
	ErrEOMReserved    error = &gpFault{"HV_X64_MSR_EOM written with a non-zero value (RsvdZ)"}
	ErrSINTVector     error = &gpFault{"SINTx unmasked with a vector below 16"}
	ErrTimerReserved  error = &gpFault{"STIMERx_CONFIG RsvdZ bit set"}
	ErrNoDirectTimers error = &gpFault{"STIMERx_CONFIG direct mode, which is not advertised"}
	ErrTimerVector    error = &gpFault{"STIMERx_CONFIG direct mode with a vector below 16"}
)

// HandlesMSR reports whether ReadMSR and WriteMSR serve msr: SCONTROL,
// SVERSION, SIEFP, SIMP, EOM, SINT0-15 and STIMER0-3 CONFIG and COUNT.
func HandlesMSR(msr uint32) bool {
	return msr >= tlfs.MsrSControl && msr <= tlfs.MsrEOM ||
		msr >= tlfs.MsrSINT0 && msr <= tlfs.MsrSINT15 ||
		msr >= tlfs.MsrSTimer0Config && msr <= tlfs.MsrSTimer3Count
}

// HandlesMSR is the package function, for callers holding a SynIC.
func (s *SynIC) HandlesMSR(msr uint32) bool { return HandlesMSR(msr) }

// ReadMSR is RDMSR of a SynIC MSR. EOM reads 0 and SVERSION 1 (TLFS
// 11.8.5, 11.8.2); the others read back what was stored. An error wraps
// ErrGP: the caller raises #GP(0). VP thread; does not allocate.
func (s *SynIC) ReadMSR(msr uint32) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case msr == tlfs.MsrSControl:
		return s.scontrol, nil
	case msr == tlfs.MsrSVersion:
		return tlfs.SVersion, nil
	case msr == tlfs.MsrSIEFP:
		return s.siefp, nil
	case msr == tlfs.MsrSIMP:
		return s.simp, nil
	case msr == tlfs.MsrEOM:
		return 0, nil
	case msr >= tlfs.MsrSINT0 && msr <= tlfs.MsrSINT15:
		return s.sint[msr-tlfs.MsrSINT0], nil
	case msr >= tlfs.MsrSTimer0Config && msr <= tlfs.MsrSTimer3Count:
		t := &s.timers[(msr-tlfs.MsrSTimer0Config)/2]
		if (msr-tlfs.MsrSTimer0Config)%2 == 0 {
			return t.config, nil
		}
		return t.count, nil
	}
	return 0, ErrNotSynICMSR
}

// WriteMSR is WRMSR of a SynIC MSR. An error wraps ErrGP: the caller
// raises #GP(0), and nothing changed. What each write does:
//
//   - SCONTROL: stored; turning Enable on retries every waiting message.
//   - SVERSION: #GP (TLFS "SVERSION Register").
//   - SIEFP, SIMP: stored whatever the GPFN. Enabling a page, or moving an
//     enabled one, clears it to zero, as KVM and OpenVMM do for the TLFS's
//     overlay that starts out zero. A page outside RAM or in MMIO is accepted
//     too (TLFS "SIMP Register": the page "will not be accessible to the
//     guest"), counted in Stats.BadPages; messages and events for it are then
//     dropped and counted. Enabling SIMP retries every waiting message.
//   - EOM: 0 retries the next waiting message of every SINT (TLFS
//     11.8.5); any other value is RsvdZ: #GP.
//   - SINTx: #GP when unmasked with a vector below 16 (TLFS "SINTx
//     Registers"; a masked SINT may hold any vector, as its reset value
//     0x10000 does). AutoEOI on an unmasked, non-polling SINT marks its
//     vector auto-EOI at the local APIC.
//   - STIMERx_CONFIG, STIMERx_COUNT: see writeConfigLocked and
//     writeCountLocked in timer.go.
//
// VP thread; does not allocate.
func (s *SynIC) WriteMSR(msr uint32, v uint64) error {
	var r raises
	s.mu.Lock()
	oldAutoEOI := s.autoEOI
	err := s.writeMSRLocked(msr, v, &r)
	newAutoEOI := s.autoEOI
	s.mu.Unlock()
	s.applyAutoEOI(oldAutoEOI, newAutoEOI)
	s.fire(&r)
	return err
}

func (s *SynIC) writeMSRLocked(msr uint32, v uint64, r *raises) error {
	switch {
	case msr == tlfs.MsrSControl:
		s.scontrol = v
		s.flushAllLocked(r)
	case msr == tlfs.MsrSVersion:
		return ErrReadOnly
	case msr == tlfs.MsrSIEFP:
		s.writeOverlayLocked(&s.siefp, v)
	case msr == tlfs.MsrSIMP:
		s.writeOverlayLocked(&s.simp, v)
		s.flushAllLocked(r)
	case msr == tlfs.MsrEOM:
		if v != 0 {
			return ErrEOMReserved
		}
		s.eomLocked(r)
	case msr >= tlfs.MsrSINT0 && msr <= tlfs.MsrSINT15:
		if v&tlfs.SINTMasked == 0 && v&tlfs.SINTVectorMask < tlfs.SINTMinVector {
			return ErrSINTVector
		}
		s.sint[msr-tlfs.MsrSINT0] = v
		s.autoEOI = s.autoEOIVectorsLocked()
	case msr >= tlfs.MsrSTimer0Config && msr <= tlfs.MsrSTimer3Count:
		i := int(msr-tlfs.MsrSTimer0Config) / 2
		if (msr-tlfs.MsrSTimer0Config)%2 == 0 {
			return s.writeConfigLocked(i, v, r)
		}
		s.writeCountLocked(i, v, r)
	default:
		return ErrNotSynICMSR
	}
	return nil
}

// writeOverlayLocked stores a SIMP or SIEFP value, clearing the page when
// it is enabled or moves while enabled.
func (s *SynIC) writeOverlayLocked(reg *uint64, v uint64) {
	old := *reg
	*reg = v
	if v&tlfs.OverlayEnable == 0 {
		return
	}
	if old&tlfs.OverlayEnable != 0 && pageBase(old) == pageBase(v) {
		return
	}
	if err := s.mem.WriteRAM(pageBase(v), zeroPage[:]); err != nil {
		s.stats.badPages.Add(1)
	}
}

// autoEOIVectorsLocked is the set of vectors of unmasked, non-polling SINTs
// with AutoEOI set: the vectors the local APIC retires on acknowledge (TLFS
// "SINTx Registers"). A vector shared with a SINT without AutoEOI is auto-EOI
// all the same, as in KVM: the APIC cannot tell which SINT raised it.
func (s *SynIC) autoEOIVectorsLocked() [4]uint64 {
	var set [4]uint64
	for _, v := range s.sint {
		if v&(tlfs.SINTMasked|tlfs.SINTPolling|tlfs.SINTAutoEOI) == tlfs.SINTAutoEOI {
			vec := uint8(v & tlfs.SINTVectorMask)
			set[vec>>6] |= 1 << (vec & 63)
		}
	}
	return set
}

// applyAutoEOI tells the Interrupter about the vectors whose auto-EOI
// mark changed from old to new. Called without the mutex, on the VP
// thread (the only one that changes the set).
func (s *SynIC) applyAutoEOI(old, new [4]uint64) {
	for i := range old {
		for d := old[i] ^ new[i]; d != 0; d &= d - 1 {
			b := bits.TrailingZeros64(d)
			s.intr.SetAutoEOI(uint8(i*64+b), new[i]&(1<<b) != 0)
		}
	}
}
