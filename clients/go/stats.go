package eventscache

import (
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of a Client's counters, in events unless said otherwise.
//
// Every event handed to the client ends in exactly one of Accepted, RateLimited,
// Invalid, HeldBack or a Dropped* counter, or is still Buffered. A raw array body counts once
// until the sender splits it into its elements.
type Stats struct {
	Sent               uint64   `json:"sent"`                // in requests the sidecar answered 202
	Accepted           uint64   `json:"accepted"`            // queued by the sidecar for Redis
	RateLimited        uint64   `json:"rate_limited"`        // not cached: the sidecar's rate limit
	Invalid            uint64   `json:"invalid"`             // lines the sidecar rejected (LastErrors)
	DroppedBufferFull  uint64   `json:"dropped_buffer_full"` // the buffer was full at the call
	DroppedUnavailable uint64   `json:"dropped_unavailable"` // the sidecar was away
	DroppedOversized   uint64   `json:"dropped_oversized"`   // one event over MaxRequestBytes
	DroppedQueueFull   uint64   `json:"dropped_queue_full"`  // the sidecar's queue was full
	DroppedRejected    uint64   `json:"dropped_rejected"`    // answered neither 202 nor 413
	DroppedUnencodable uint64   `json:"dropped_unencodable"` // a value encoding/json refused
	DroppedClosed      uint64   `json:"dropped_closed"`      // after Close, or left when it timed out
	HeldBack           uint64   `json:"held_back"`           // not sent: the sidecar said it would limit them
	Buffered           int      `json:"buffered"`            // buffered or in flight now
	Requests           uint64   `json:"requests"`            // HTTP requests the sidecar answered
	TooLarge           uint64   `json:"too_large"`           // 413 answers, bytes or events (split and resent)
	LastErrors         []string `json:"last_errors"`         // the newest messages, newest last

	// What one request may carry now: MaxRequestBytes and MaxBatchEvents, lowered for
	// good by a 413 that names that measure (not counters; left out of Dropped).
	RequestLimitBytes  int64 `json:"request_limit_bytes"`
	RequestLimitEvents int64 `json:"request_limit_events"`
}

// Dropped is every event dropped, whatever the reason.
func (s Stats) Dropped() uint64 {
	return s.DroppedBufferFull + s.DroppedUnavailable + s.DroppedOversized + s.DroppedQueueFull +
		s.DroppedRejected + s.DroppedUnencodable + s.DroppedClosed
}

const lastErrors = 10

type counters struct {
	sent, accepted, rateLimited, invalid                    atomic.Uint64
	bufferFull, unavailable, oversized, queueFull, rejected atomic.Uint64
	unencodable, closed, requests, tooLarge                 atomic.Uint64
	errorsMu                                                sync.Mutex
	errors                                                  []string
	// Written by the sender alone, read by Stats.
	limitBytes, limitEvents atomic.Int64
}

func (c *counters) error(message string) {
	c.errorsMu.Lock()
	if len(c.errors) >= lastErrors {
		copy(c.errors, c.errors[1:])
		c.errors = c.errors[:lastErrors-1]
	}
	c.errors = append(c.errors, message)
	c.errorsMu.Unlock()
}

func (c *counters) snapshot() Stats {
	c.errorsMu.Lock()
	errs := append([]string{}, c.errors...)
	c.errorsMu.Unlock()
	return Stats{
		Sent: c.sent.Load(), Accepted: c.accepted.Load(), RateLimited: c.rateLimited.Load(),
		Invalid: c.invalid.Load(), DroppedBufferFull: c.bufferFull.Load(),
		DroppedUnavailable: c.unavailable.Load(), DroppedOversized: c.oversized.Load(),
		DroppedQueueFull: c.queueFull.Load(), DroppedRejected: c.rejected.Load(),
		DroppedUnencodable: c.unencodable.Load(), DroppedClosed: c.closed.Load(),
		Requests: c.requests.Load(), TooLarge: c.tooLarge.Load(), LastErrors: errs,
		RequestLimitBytes: c.limitBytes.Load(), RequestLimitEvents: c.limitEvents.Load(),
	}
}
