// Package hypercall is the TLFS hypercall ABI (TLFS 3, "Hypercall
// Interface"): it decodes and checks the hypercall input value, copies a
// call's input out of the calling partition's memory or its registers,
// decodes it, hands it to the one small handler interface of that call, and
// builds the result value. What a call does (deliver a message, set an event
// flag, flush TLBs) belongs to the handler; everything about how a guest
// asks, and every status the asking alone can earn, belongs here.
//
// # The ABI (x64)
//
// RCX is the hypercall input value: call code (15:0), fast (16), variable
// header size in 8-byte units (26:17), rep count (43:32), rep start index
// (59:48); bits 30:27, 31 (nested), 47:44 and 63:60 must be zero. A slow
// (memory) call passes the input parameter GPA in RDX and the output GPA in
// R8; a fast call passes its input in RDX (and R8). RAX returns the
// result: the HV_STATUS in 15:0 and, for a rep call, the reps completed in
// 43:32. Dispatch takes these registers as a 64-bit caller holds them; a
// caller in 32-bit mode passes EDX:EAX, EBX:ECX and EDI:ESI joined, and
// splits RAX into EDX:EAX. The conditions under which the TLFS makes the
// hypercall instruction itself fault (#UD at CPL > 0, in real mode, or
// before the guest has set HV_X64_MSR_GUEST_OS_ID) are the caller's to
// check before it calls Dispatch.
//
// The calls served, by code:
//
//	0x0002 HvCallFlushVirtualAddressSpace    slow, simple  AddressSpaceFlusher
//	0x0003 HvCallFlushVirtualAddressList     slow, rep     AddressSpaceFlusher
//	0x0008 HvCallNotifyLongSpinWait          fast or slow  LongSpinWaitNotifier
//	0x000B HvCallSendSyntheticClusterIpi     fast or slow  SyntheticIPISender (fast: RDX and R8)
//	0x0013 HvCallFlushVirtualAddressSpaceEx  slow, simple, variable header (HV_VP_SET banks)
//	0x0014 HvCallFlushVirtualAddressListEx   slow, rep, variable header
//	0x0015 HvCallSendSyntheticClusterIpiEx   slow, simple, variable header (HV_VP_SET banks)
//	0x005C HvCallPostMessage                 slow          PostMessager
//	0x005D HvCallSignalEvent                 fast or slow  EventSignaler
//
// None of these has output parameters, so the output GPA is ignored, as
// TLFS 3 "Alignment Requirements" says of a call without outputs; Memory's
// WriteRAM is for calls with outputs that later work adds.
//
// XMM fast input (CPUID 0x40000003.EDX bit 4) is not advertised and not
// implemented: a fast call whose input does not fit RDX and R8 (16 bytes:
// HvCallSendSyntheticClusterIpi's) — the flush calls' 24 bytes and more,
// the Ex forms' VP sets — is refused as a call without a fast form. (The TLFS
// says using the XMM convention where it is not advertised raises #UD; the
// two cannot be told apart here, and a status keeps the guest running.)
//
// # Failure
//
// Everything in the registers and in the input page is guest-controlled.
// A guest's mistake is a status in RAX, never a panic and never an end of
// its partition. The checks, in the order they run (TLFS 3 leaves the order
// open and asks that ACCESS_DENIED come before statuses that reveal more):
//
//   - an unknown code, a call the handler does not implement, or one its
//     Allower refuses: HV_STATUS_INVALID_HYPERCALL_CODE; a refused call
//     the TLFS gates by a partition privilege (HvCallPostMessage:
//     PostMessages; HvCallSignalEvent: SignalEvents) gets
//     HV_STATUS_ACCESS_DENIED, as those calls' TLFS pages list;
//   - a reserved bit of the input value, a rep count on a simple call or
//     none on a rep call, a rep start index not below the rep count (or
//     non-zero on a simple call), a variable header size the call does
//     not take, the fast flag on a call without a fast form:
//     HV_STATUS_INVALID_HYPERCALL_INPUT (TLFS 3, "Hypercall Status Codes");
//   - an input GPA not 8-byte aligned, an input list (the fixed header, the
//     variable header and every rep element) crossing a page boundary, or
//     one Memory refuses (outside the partition's RAM, MMIO):
//     HV_STATUS_INVALID_ALIGNMENT, the TLFS 3 common status for "the input
//     or output GPA pointer is not within the bounds of the GPA space"
//     (KVM answers the same for an unreadable HvCallSignalEvent input);
//   - then each call's own input checks (see the interfaces), then the
//     handler's status.
//
// # Rep calls
//
// A rep call processes its elements from the rep start index, at most
// MaxRepsPerExit per Dispatch. When elements remain after a successful
// chunk, Dispatch returns done=false and a newRCX whose rep start index is
// the next element: the caller leaves RIP and RAX alone and re-enters the
// guest, which executes the hypercall instruction again (TLFS 3,
// "Hypercall Continuation"), letting interrupts in between. When done, RAX
// holds the status and the reps completed, counted from element 0; an
// error ends the call with the reps completed before the chunk it struck.
// Since the whole list must lie in its input page, a flush list holds at
// most 509 ranges; a rep count of 0xfff is refused with
// HV_STATUS_INVALID_ALIGNMENT before any work.
//
// # Invariants
//
// Dispatch allocates nothing (tests prove it for a null call, a message, an
// event and a flush chunk). The input is read once per exit into the
// Caller's buffer — only the bytes the call needs: a message's header and
// then its PayloadSize bytes, a rep call's header and the current chunk —
// and decoded from that copy, so a guest changing its page from another VP
// meanwhile changes nothing already checked. Views handed to a handler
// (a message's Payload, a set's BankContents, the GVA ranges) point into
// the Caller and are valid only during the handler's call.
//
// # Concurrency
//
// A Caller belongs to one VP and is used only on that VP's thread. Handlers
// are called on that thread too; a handler shared by the partition's VPs
// synchronizes itself.
package hypercall
