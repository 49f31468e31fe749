package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

var (
	// ErrMalformed is wrapped by every error about a message too short
	// for a field, or whose lengths or offsets point outside it.
	ErrMalformed = errors.New("malformed message")
	// ErrUnknownType is wrapped by the error about a message type the
	// parser does not decode.
	ErrUnknownType = errors.New("unknown message type")
)

// FieldError is a malformed message: which message, which of its fields,
// and why.
type FieldError struct {
	Message string // "nvsp SEND_RECV_BUF", "rndis QUERY_MSG"
	Field   string // Linux's name for the field: "id", "info_buf_offset"
	Reason  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Message, e.Field, e.Reason)
}

// Unwrap makes every FieldError an ErrMalformed.
func (e *FieldError) Unwrap() error { return ErrMalformed }

// reader reads little-endian fields from a message after checking they
// are there, recording the first missing one.
type reader struct {
	b   []byte
	msg string
	err error
}

// has reports whether the field of size n at off is inside the message,
// recording a FieldError for the first that is not.
func (r *reader) has(off, n int, field string) bool {
	if r.err != nil {
		return false
	}
	if off+n > len(r.b) {
		r.err = &FieldError{r.msg, field, fmt.Sprintf("needs bytes %d..%d, the message has %d", off, off+n, len(r.b))}
		return false
	}
	return true
}

func (r *reader) u16(off int, field string) uint16 {
	if !r.has(off, 2, field) {
		return 0
	}
	return binary.LittleEndian.Uint16(r.b[off:])
}

func (r *reader) u32(off int, field string) uint32 {
	if !r.has(off, 4, field) {
		return 0
	}
	return binary.LittleEndian.Uint32(r.b[off:])
}

func (r *reader) u64(off int, field string) uint64 {
	if !r.has(off, 8, field) {
		return 0
	}
	return binary.LittleEndian.Uint64(r.b[off:])
}

func (r *reader) fail(field, format string, a ...any) {
	if r.err == nil {
		r.err = &FieldError{r.msg, field, fmt.Sprintf(format, a...)}
	}
}

// grow appends n zero bytes to b and returns b and the new bytes.
func grow(b []byte, n int) ([]byte, []byte) {
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	clear(b[start:])
	return b, b[start:]
}

func put16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
