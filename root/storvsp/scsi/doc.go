// Package scsi is a SCSI direct-access logical unit over a Disk: it parses
// command descriptor blocks (SPC-4, SBC-3) and executes the commands a
// Linux or Windows initiator needs to find, size, read, write and flush a
// disk. The storage VSP (root/storvsp) puts one LogicalUnit behind each
// configured path/target/LUN; the target's own business — which LUNs
// exist, REPORT LUNS, the answer for an absent LUN — is the caller's, with
// ReportLUNs and NotPresent to build the answers.
//
// Commands and their outcomes (every CHECK CONDITION carries fixed-format
// sense; key/ASC/ASCQ in hex):
//
//	command                          success                               refusals
//	TEST UNIT READY 00               GOOD
//	REQUEST SENSE 03                 NO SENSE, fixed (18 B) or, with       (no sense is ever pending:
//	                                 DESC=1, descriptor format (8 B)        autosense carries it)
//	INQUIRY 12, standard             36 B: PDT 0, SPC-3, CmdQue,           page code ≠ 0, CMDDT: 05/24/00
//	                                 "Msft    Virtual Disk    1.0 "
//	INQUIRY 12, EVPD                 00 supported pages, 80 serial (if     other page: 05/24/00
//	                                 set), 83 identification, B0 block
//	                                 limits, B1 characteristics
//	                                 (non-rotating), B2 provisioning (if
//	                                 UNMAP)
//	MODE SENSE(6) 1A / (10) 5A       header (WP if read-only, DPOFUA),     saved values: 05/39/00;
//	                                 no block descriptors; pages 08        other page or subpage: 05/24/00
//	                                 caching (WCE if writable), 0A control
//	                                 (D_SENSE 0), 3F both
//	START STOP UNIT 1B               GOOD (nothing to spin)
//	READ CAPACITY(10) 25             last LBA (FFFFFFFF if ≥ 2^32          PMI=0 with LBA ≠ 0: 05/24/00
//	                                 blocks), block size
//	READ CAPACITY(16) 9E/10          32 B: last LBA, block size, LBPME     other service action: 05/24/00
//	                                 and LBPRZ if UNMAP
//	READ(6/10/12/16) 08 28 A8 88     GOOD, blocks·size bytes to the        RDPROTECT ≠ 0, over
//	WRITE(6/10/12/16) 0A 2A AA 8A    buffer / from it (FUA: then Flush)    MaxTransferBlocks, buffer
//	                                                                       shorter than the transfer:
//	                                                                       05/24/00; LBA+length beyond
//	                                                                       capacity: 05/21/00; write to a
//	                                                                       read-only disk: 07/27/00
//	                                                                       (checked before the range);
//	                                                                       disk failure: 03/11/00 (read),
//	                                                                       03/0C/00 (write, flush)
//	SYNCHRONIZE CACHE(10/16) 35 91   Flush, GOOD                           range beyond capacity: 05/21/00;
//	                                                                       flush failure: 03/0C/00
//	UNMAP 42 (only if advertised)    Unmap each descriptor, GOOD           ANCHOR: 05/24/00; list 1-7 B:
//	                                                                       05/1A/00; list > 8+16·256 B:
//	                                                                       05/26/00; a descriptor beyond
//	                                                                       capacity: 05/21/00 (none applied)
//	REPORT LUNS A0                   this unit as LUN 0 (a multi-LUN       SELECT REPORT not 0/1/2: 05/24/00
//	                                 target answers with ReportLUNs)
//	anything else                                                          05/20/00 INVALID COMMAND
//	                                                                       OPERATION CODE
//	any CDB shorter than its group, or with NACA set                       05/24/00
//	the initiator's buffer unreadable/unwritable                           05/24/00, Result.Err wraps ErrBuffer
//	NotPresent: INQUIRY std → byte 0 = 7F (PQ 3, PDT 1F); REQUEST SENSE → GOOD with 05/25/00;
//	            INQUIRY EVPD → 05/24/00; anything else → 05/25/00 LOGICAL UNIT NOT SUPPORTED
//
// UNMAP is advertised only when the Disk implements Unmapper and is
// writable. MODE SELECT is not served, so D_SENSE stays 0: autosense is
// always fixed-format, and descriptor format exists only as REQUEST
// SENSE's answer to DESC=1. No unit attentions are raised (a Disk's size
// is read once).
//
// # Invariants
//
// Data-in answers are cut to the allocation length and the buffer's
// length, and Result.N says how many bytes moved. READ and WRITE check the
// whole transfer against the capacity (with overflow-safe arithmetic)
// before touching the disk, touch only whole blocks inside it, and stream
// through a pooled 64 KiB bounce buffer: no command's fields size an
// allocation beyond UNMAP's bounded parameter list. A read-only disk is
// never written.
//
// # Failure
//
// The CDB and the buffer's contents are the initiator's, untrusted:
// ParseCDB and Execute never panic on them (FuzzParseCDB runs both).
// Every refusal is a Result with CHECK CONDITION and sense, per the table;
// disk and buffer failures also set Result.Err for the log. Nothing is an
// error value except ParseCDB's (ErrInvalidOpcode, ErrShortCDB).
//
// # Concurrency
//
// A LogicalUnit has no mutable state: Execute may run on many goroutines
// at once, as long as the Disk's methods may (RAMDisk's may). Concurrent
// WRITEs to overlapping blocks land in some order, as on real disks.
package scsi
