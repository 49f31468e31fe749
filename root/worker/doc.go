// Package worker is the root's worker for one child partition (Hyper-V's
// VMWP): it owns the partition's VMBus server (vmbus/server) and the
// Virtualization Service Providers behind its channels — a storage VSP
// (root/storvsp) per configured SCSI controller, and the shutdown,
// heartbeat and time-sync integration services (root/ic) — and wires the server to
// the partition's SynIC: the guest's HvCallPostMessage on connections 1
// and 4 reaches Server.HandleMessage, its HvCallSignalEvent on a channel's
// connection reaches Server.HandleEvent, and the server's messages and
// signals go into the VPs' SIM and SIEF pages on SINT 2.
//
// Lifecycle: New before the partition starts (the ports must exist before
// the guest's VMBus driver looks), Start with it, Close after its VPs have
// ended and before Partition.Destroy frees the memory the channels' rings
// live in.
//
// Failure: what a guest does wrong on a channel costs it that channel (see
// vmbus/server). A panic in a VSP or in the server ends this partition
// with the panic as the reason (hv.Partition.Fail), never the root or
// another partition.
package worker
