// Package synic models a virtual processor's Hyper-V synthetic interrupt
// controller (SynIC), its four synthetic timers, and a partition's ports
// and connections, as the Hypervisor Top-Level Functional Specification
// describes them (TLFS 11, "Inter-Partition Communication"; TLFS 12,
// "Synthetic Timers"). Register and field names are the TLFS's (SCONTROL,
// SIEFP, SIMP, EOM, SINTx, STIMERx_CONFIG), so a reader can look each one
// up; the numbers come from hv/tlfs.
//
// The model is logic only, over small seams: the partition's RAM
// (Memory: the SIM and SIEF pages are ordinary guest pages, reached with
// atomic 32-bit operations where the guest races), the VP's local APIC
// (Interrupter: raise a vector, mark a vector auto-EOI) and the
// partition's reference time with host timers (Clock). The hypervisor
// wires these to its guest memory, its LAPICs and its calibrated clock;
// tests wire them to fakes.
//
// A VP's exits use a SynIC like this:
//
//	RDMSR/WRMSR of msr where HandlesMSR(msr): ReadMSR/WriteMSR, #GP(0) on an error wrapping ErrGP
//	after the LAPIC retires an EOI of vector v: s.EOI(v)
//	after Ack of a vector the LAPIC reports auto-EOI: s.EOI(v)
//	INIT or VP reset: s.Reset()
//
// and the rest of the hypervisor sends through it:
//
//	root to guest: s.Post(sint, type, origin, payload), s.Signal(sint, flag)
//	guest hypercalls: Ports.PostMessage, Ports.SignalEvent
//
// # Messages
//
// Post writes a message into its SINT's slot of the SIM page (the SIMP page +
// 256 × SINT) when the slot's type reads 0: PayloadSize, flags, origin and
// payload first, then the type by compare-and-swap, so the guest never sees a
// type before its payload. A busy slot gets its MessagePending flag set (then
// its type is read again, so a guest that emptied it in between is not left
// waiting for an EOM it will not write) and the message waits in a bounded
// per-SINT queue. EOM, an EOI of the SINT's vector, the next Post, and
// enabling SCONTROL or SIMP each give every waiting SINT one delivery attempt
// (TLFS "SynIC Messages", "EOM Register"). Each timer has its own buffer: a
// held timer expiration goes into the slot before the queued messages.
//
// # Timers
//
// One-shot (COUNT is an absolute reference time) and periodic (COUNT is
// the period, the first starting when the timer is enabled), message mode
// (HvMessageTypeTimerExpired to CONFIG's SINT, with the expiration and
// delivery times) or direct mode (CONFIG's vector, straight to the
// APIC). AutoEnable: a non-zero COUNT write sets Enable; COUNT 0 clears
// it. Expirations are computed from Clock.ReferenceTime, never stepped; a
// host timer is armed only for the next expiration that must reach the
// guest, and at most MaxArmAhead ahead; nothing is signalled before its
// expiration time (TLFS "Synthetic Timers"). A message-mode expiration whose
// slot is busy is held, one per timer, and the timer signals nothing more
// until it is delivered. A periodic timer signals at most once per
// Config.MinTimerPeriod however short its period (a period of 1 included):
// a lazy timer, or one whose period is below that bound, signals the
// latest expiration and counts the skipped ones in Stats.TimerCoalesced;
// a non-lazy one catches up on up to CatchUpLimit missed expirations one
// by one.
//
// # Ports
//
// Ports is a partition's table of connection IDs, each bound to a message
// or event port that a root Go handler serves (the VMBus server's message
// connection, a channel's event) or that a partition's SynIC owns. Its
// PostMessage and SignalEvent have the method set hv/hypercall calls and
// return the TLFS status.
//
// # Decisions where the TLFS leaves room
//
//   - A masked SINT still receives messages in its slot; only the interrupt
//     is lost (TLFS "SynIC Messages"), and EOM drains it. An event for a
//     masked SINT sets no flag and fails with ErrMasked (TLFS "Event Flag
//     Delivery": INVALID_SYNIC_STATE). Polling SINTs receive both without an
//     interrupt.
//   - A SIMP or SIEFP write naming a page outside RAM or in MMIO is
//     accepted and reads back (TLFS "SIMP Register", as Hyper-V's overlay; KVM
//     raises #GP instead); the enable clears nothing and counts
//     Stats.BadPages; every message or event for the page is dropped and
//     counted, and Status reports SUCCESS to a sender, which on Hyper-V
//     could not tell either.
//   - Enabling or moving SIMP or SIEFP clears the new page (KVM, OpenVMM);
//     queued messages survive a move. Reset does not touch guest RAM.
//   - RsvdP bits are stored and read back; RsvdZ bits (EOM, STIMER
//     CONFIG) and SVERSION writes raise #GP, as do an unmasked SINT
//     with a vector below 16 and direct mode with one (or not advertised).
//   - Rewriting CONFIG or COUNT restarts the timer and drops its held
//     expiration. A one-shot's Enable clears when it expires, even if its
//     message is held.
//   - AutoEOI is implemented through the LAPIC (Interrupter.SetAutoEOI):
//     a vector is auto-EOI while any unmasked, non-polling SINT with
//     AutoEOI names it.
//
// # Invariants
//
// Between calls a SynIC keeps these, and FuzzSynIC checks them after
// every operation:
//
//   - Every message Post accepted is in its slot (delivered), in its
//     SINT's queue, or dropped and counted: Stats.Posted ==
//     Stats.Delivered + Stats.Dropped + the messages queued. Messages of
//     one SINT reach the slot in the order they were posted.
//   - A queue never holds more than Config.QueueDepth messages, and each
//     timer at most one held expiration.
//   - The Interrupter is never asked to raise a vector below 16: an
//     unmasked SINT cannot hold one, nor a direct-mode timer.
//   - The auto-EOI vectors the Interrupter was told are exactly those of
//     the unmasked, non-polling SINTs with AutoEOI set.
//
// # Failure
//
// Nothing a guest writes panics or grows memory; New allocates everything
// (16 queues of Config.QueueDepth 256-byte messages, four host timers).
//
//   - WRMSR/RDMSR faults return an error wrapping ErrGP that names the
//     check; the register is unchanged. The errors are preallocated.
//   - Post and Signal return sentinel errors (ErrQueueFull, ErrDisabled,
//     ErrMasked, ErrNoPage, ErrBadArgument); Status turns them into the
//     hypercall's TLFS status.
//   - A guest that writes a type into its own empty slot while the SynIC
//     fills it keeps its value (the type goes in by compare-and-swap); the
//     SynIC's message stays queued with MessagePending set. A guest that
//     clears MessagePending, or points SIMP at its SIEF page, confuses only
//     itself: the accounting above holds whatever the page holds.
//   - A guest that never EOIs or EOMs fills its own SINT's queue, after
//     which Post returns ErrQueueFull for that SINT only; its timers hold
//     one expiration each and stop. An EOM storm costs at most one slot
//     write per SINT per EOM.
//
// # Concurrency
//
// Each SynIC has one mutex guarding all of its state. ReadMSR, WriteMSR
// and Reset belong to the VP's thread; Post, Signal, EOI, Stats, Queued
// and the host-timer callbacks may come from any goroutine. The
// Interrupter is called only after the mutex is released, so it may call
// back into the SynIC; Memory and HostTimer are called with it held and
// must not (lock order: SynIC, then guest memory or host timer). Ports
// looks connections up without a lock and calls handlers and target
// SynICs with no lock of its own held.
//
// # Allocation
//
// Post, Signal, EOI, the EOM write, the other MSR accesses, the timer
// callbacks, Ports.PostMessage and Ports.SignalEvent allocate nothing
// (tested with testing.AllocsPerRun). Ports' Add and Remove copy the
// connection table.
package synic
