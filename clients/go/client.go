// Package eventscache hands ingest events to the events-cache sidecar, fire and forget.
//
// Calls only append to a bounded in-memory buffer: they never block on the network
// and never fail. A goroutine sends NDJSON batches to the sidecar's POST /v1/events
// over its Unix socket (EVENTS_CACHE_SOCKET) or loopback HTTP (EVENTS_CACHE_URL) and
// counts what became of every event (see Stats).
package eventscache

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Mark qualifies a token event: Skip says why the ingest skipped it, Error why the
// ingest rejected it (the body is then stored as malformed with that error), Capture
// is a test run's tag: the sidecar caches the event beyond its id's rate limit (within
// its budget) and keeps the tag, so that ?capture= finds it (such an event is never
// held back). Parsed: the caller vouches that the raw body is well-formed JSON (the
// ingest parsed it): an object is then sent as it is, not checked again, and an event
// of an id the sidecar said it would limit can be held back and counted instead of
// sent (limits at the source). A body vouched for that is not JSON is sent unchecked
// and the sidecar counts its line as invalid (Stats.Invalid); the others are taken.
type Mark struct {
	Skip    string
	Error   string
	Capture string
	Parsed  bool
}

// Result is what a destination made of an event: exactly one of Success (the result
// object: a value for encoding/json, or raw JSON as []byte/json.RawMessage), Error or
// Skip; TokenID optionally names the API key the event came with; Capture is a test
// run's tag, as in Mark. A result with none or several outcomes is sent as it is, and
// the sidecar counts the line as invalid.
type Result struct {
	Success any
	Error   string
	Skip    string
	TokenID string
	Capture string
}

// Client buffers events and sends them in the background. Safe for concurrent use.
type Client struct {
	cfg      Config
	counters counters
	holds    holds

	mu       sync.Mutex
	items    []item
	spare    []item
	bytes    int // of items and of what the sender holds
	inFlight int // items the sender holds
	closed   bool

	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// New starts a client; an error only when the configuration is unusable (e.g. a URL
// that is not http://host:port).
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:     cfg,
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	c.counters.limitBytes.Store(int64(cfg.MaxRequestBytes))
	c.counters.limitEvents.Store(int64(cfg.MaxBatchEvents))
	s := newSender(c)
	go s.run()
	return c, nil
}

// Incoming hands over an event as the ingest received it for API key tokenID: the raw
// request body, split as the sidecar's raw endpoint would split it (an object is one
// event, an array one per element, anything else a malformed entry). The body is
// copied: the caller may reuse it.
func (c *Client) Incoming(tokenID string, body []byte, mark ...Mark) {
	if c.holds.active.Load() && c.held(tokenID, body, mark) {
		return
	}
	it := item{kind: kindTokenRaw, id: tokenID, body: append([]byte(nil), body...), at: time.Now().UnixNano()}
	if len(mark) > 0 {
		it.marked(mark[0])
	}
	c.put(&it)
}

// IncomingValue is Incoming for a parsed event, encoded with encoding/json in the call
// (a snapshot: the caller may change the value afterwards). A value that cannot be
// encoded is dropped and counted as DroppedUnencodable.
func (c *Client) IncomingValue(tokenID string, event any, mark ...Mark) {
	data, err := json.Marshal(event)
	if err != nil {
		c.unencodable(err)
		return
	}
	if c.holds.active.Load() {
		m := Mark{Parsed: true}
		if len(mark) > 0 {
			m.Error, m.Capture = mark[0].Error, mark[0].Capture
		}
		if c.held(tokenID, data, []Mark{m}) {
			return
		}
	}
	it := item{kind: kindTokenRaw, id: tokenID, body: data, at: time.Now().UnixNano()}
	if len(mark) > 0 {
		it.marked(mark[0])
	}
	if len(data) > 0 && data[0] == '{' && it.errorText == "" {
		it.kind = kindTokenJSON
	}
	c.put(&it)
}

// held is whether the event was held back (limits at the source): never a tagged one.
func (c *Client) held(tokenID string, body []byte, mark []Mark) bool {
	var m Mark
	if len(mark) > 0 {
		m = mark[0]
	}
	if m.Capture != "" {
		return false
	}
	return c.holds.hold(tokenID, m.Error != "", m.Parsed && oneObject(body), time.Now())
}

// marked applies a token event's Mark (an extra only for a tagged one).
func (it *item) marked(mark Mark) {
	it.skip, it.errorText, it.parsed = mark.Skip, mark.Error, mark.Parsed
	if mark.Capture != "" {
		it.extra = &extra{capture: mark.Capture}
	}
}

// Processed hands over what destination destinationID made of an event. original is
// the event: raw JSON ([]byte, json.RawMessage or string: an object is stored as one,
// other text as text) or a value encoded with encoding/json in the call.
func (c *Client) Processed(destinationID string, original any, result Result) {
	x := &extra{tokenID: result.TokenID, capture: result.Capture}
	it := item{kind: kindDestination, id: destinationID, at: time.Now().UnixNano(),
		errorText: result.Error, skip: result.Skip, extra: x}
	var err error
	if it.body, it.encoded, err = value(original); err != nil {
		c.unencodable(err)
		return
	}
	if result.Success != nil {
		x.successOK = true
		if x.success, x.successJS, err = value(result.Success); err != nil {
			c.unencodable(err)
			return
		}
	}
	c.put(&it)
}

// value is raw JSON copied, or a value encoded now.
func value(v any) (data []byte, encoded bool, err error) {
	switch x := v.(type) {
	case []byte:
		return append([]byte(nil), x...), false, nil
	case json.RawMessage:
		return append([]byte(nil), x...), false, nil
	case string:
		return []byte(x), false, nil
	default:
		data, err = json.Marshal(v)
		return data, true, err
	}
}

func (c *Client) unencodable(err error) {
	c.counters.unencodable.Add(1)
	c.counters.error("cannot encode an event: " + err.Error())
}

func (c *Client) put(it *item) {
	size := it.size()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.counters.closed.Add(1)
		return
	}
	if len(c.items)+c.inFlight >= c.cfg.BufferEvents || c.bytes+size > c.cfg.BufferBytes {
		c.mu.Unlock()
		c.counters.bufferFull.Add(1)
		return
	}
	c.items = append(c.items, *it)
	c.bytes += size
	ready := len(c.items) == c.cfg.MaxBatchEvents
	c.mu.Unlock()
	if ready {
		c.signal()
	}
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take hands the sender everything buffered; it stays counted against the bounds
// until finished.
func (c *Client) take() []item {
	c.mu.Lock()
	items := c.items
	c.items = c.spare[:0]
	c.spare = nil
	c.inFlight = len(items)
	c.mu.Unlock()
	return items
}

// finished releases the first done items the sender took; once all are done, their
// slice becomes the next buffer (zeroed first, outside the lock: no call waits).
func (c *Client) finished(items []item, done int) {
	size := 0
	for i := range items[:done] {
		if items[i].kind != kindFlush {
			size += items[i].size()
		}
	}
	reuse := done == len(items) && cap(items) > 0
	if reuse {
		for i := range items {
			items[i] = item{}
		}
	}
	c.mu.Lock()
	c.bytes -= size
	c.inFlight -= done
	if reuse && c.spare == nil {
		c.spare = items[:0]
	}
	c.mu.Unlock()
}

// Stats is a snapshot of the counters.
func (c *Client) Stats() Stats {
	s := c.counters.snapshot()
	s.HeldBack = c.holds.held.Load()
	c.mu.Lock()
	s.Buffered = c.inFlight
	for i := range c.items {
		if c.items[i].kind != kindFlush {
			s.Buffered++
		}
	}
	c.mu.Unlock()
	return s
}

// Flush waits until what was buffered before the call is sent or dropped, or until
// ctx is done (its error is returned then).
func (c *Client) Flush(ctx context.Context) error {
	done := make(chan struct{})
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		select {
		case <-c.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.items = append(c.items, item{kind: kindFlush, extra: &extra{done: done}})
	c.mu.Unlock()
	c.signal()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes until ctx is done, then stops the sender; what is still buffered is
// counted as DroppedClosed, as are later calls. Safe to call more than once.
func (c *Client) Close(ctx context.Context) error {
	err := c.Flush(ctx)
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.stop)
	})
	select {
	case <-c.stopped:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	c.dropLeft()
	return err
}

// dropLeft counts what is still buffered after Close as dropped.
func (c *Client) dropLeft() {
	c.mu.Lock()
	items := c.items
	c.items = nil
	c.mu.Unlock()
	for i := range items {
		if items[i].kind == kindFlush {
			close(items[i].extra.done)
		} else {
			c.counters.closed.Add(1)
		}
	}
}
