package acpi

import "errors"

// Sentinel errors for callers that branch on the kind of failure; the
// errors returned wrap one of these with the path to the fault.
var (
	// ErrNoRSDP: no RSDP with a valid checksum was found where the
	// firmware must place it.
	ErrNoRSDP = errors.New("acpi: no RSDP found")

	// ErrChecksum: the bytes of a structure do not sum to zero (mod 256).
	ErrChecksum = errors.New("acpi: bad checksum")

	// ErrTruncated: a length field claims more bytes than are there (or
	// than are readable in memory).
	ErrTruncated = errors.New("acpi: truncated")

	// ErrBadLength: a length field is outside the bounds the
	// specification allows (too short for its own header, zero, or
	// absurdly large).
	ErrBadLength = errors.New("acpi: bad length")

	// ErrSignature: a table handed to a parser is not the kind it parses.
	ErrSignature = errors.New("acpi: wrong signature")

	// ErrNotFound: the table or object asked for is not present.
	ErrNotFound = errors.New("acpi: not found")

	// ErrBadAML: the AML around an object is malformed or of a form this
	// package does not evaluate.
	ErrBadAML = errors.New("acpi: malformed AML")
)
