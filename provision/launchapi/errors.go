package launchapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// APIError is a non-2xx answer of the service. StatusCode is the fact; Msg
// and Detail are read from the body on a best-effort basis (some 400 bodies
// hold two JSON documents, some are plain text).
type APIError struct {
	StatusCode int
	Msg        string // the service's message for people
	Detail     string // the service's "error" field: for logs
	Method     string
	Path       string // API path without the base URL and query
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("launchapi: %s %s: %d: %s", e.Method, e.Path, e.StatusCode, msg)
}

func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// IsNotFound reports whether err is a 404 from the service.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// DecodeError is a 2xx answer whose body is not what the API promises.
type DecodeError struct {
	Method     string
	Path       string
	StatusCode int
	Err        error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("launchapi: %s %s: cannot decode %d response: %v", e.Method, e.Path, e.StatusCode, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// PubkeyConflictError means the service refused a public key as a duplicate
// (same name or same fingerprint), yet no stored key has the same body: the
// name is taken by a different key.
type PubkeyConflictError struct {
	Name string
	Err  *APIError
}

func (e *PubkeyConflictError) Error() string {
	return fmt.Sprintf("launchapi: pubkey %q: a different key with this name exists: %v", e.Name, e.Err)
}

func (e *PubkeyConflictError) Unwrap() error { return e.Err }

// ReservationFailedError is a reservation the service finished with
// success=false. It is not an HTTP error.
type ReservationFailedError struct {
	ReservationID int64
	Step          int    // 1-based step that failed (0 if unknown)
	StepTitle     string // e.g. "Launch instance(s)"
	Status        string // last status text, e.g. "Timeout"
	Message       string // the service's own error text
}

func (e *ReservationFailedError) Error() string {
	where := ""
	if e.StepTitle != "" {
		where = fmt.Sprintf(" at step %d (%s)", e.Step, e.StepTitle)
	}
	return fmt.Sprintf("launchapi: reservation %d failed%s: %s", e.ReservationID, where, e.Message)
}

// WaitTimeoutError means a reservation was still pending when the wait's
// deadline passed. The reservation may still finish.
type WaitTimeoutError struct {
	ReservationID int64
	Waited        time.Duration
	LastStep      int
	LastStatus    string // "" if no poll succeeded
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("launchapi: reservation %d still pending after %s (step %d, status %q)",
		e.ReservationID, e.Waited, e.LastStep, e.LastStatus)
}
