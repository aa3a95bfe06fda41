package eventscache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const minBackoff = 50 * time.Millisecond

// The 413's "limit": which bound the sidecar applied. An older sidecar names none: bytes.
const (
	limitBytes  = "bytes"
	limitEvents = "events"
)

// The sidecar's 413 for events names its bound in the message; without it, halve.
var eventsBound = regexp.MustCompile(`max_events_per_request is (\d+)`)

// sender is the client's goroutine: batches, posts, counts the answers.
type sender struct {
	c       *Client
	http    *http.Client
	url     string
	builder lineBuilder
	delay   time.Duration
	until   time.Time
}

func newSender(c *Client) *sender {
	cfg := c.cfg
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	transport := &http.Transport{
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second, // under the sidecar's 75 s keep-alive
		DisableCompression:  true,
		DialContext:         dialer.DialContext,
	}
	url := "http://localhost" + eventsPath
	if cfg.Socket != "" {
		socket := cfg.Socket
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		}
	} else {
		url, _ = postURL(cfg.URL) // checked by withDefaults
	}
	return &sender{
		c:       c,
		http:    &http.Client{Transport: transport, Timeout: cfg.Timeout},
		url:     url,
		builder: lineBuilder{maxMalformed: cfg.MaxMalformedBytes, timestamps: !cfg.NoTimestamps},
	}
}

func (s *sender) run() {
	c := s.c
	defer close(c.stopped)
	defer s.http.CloseIdleConnections()
	ticker := time.NewTicker(c.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-ticker.C:
		}
		s.sendAll()
	}
}

func (s *sender) sendAll() {
	c := s.c
	for {
		items := c.take()
		if len(items) == 0 {
			c.finished(items, 0)
			if s.c.holds.due(time.Now()) {
				s.sendBatches(nil)
			}
			return
		}
		for start := 0; start < len(items); {
			end := start + c.cfg.MaxBatchEvents
			if end > len(items) {
				end = len(items)
			}
			select {
			case <-c.stop: // Close ran out of time: what is left is dropped
				c.counters.closed.Add(uint64(countEvents(items[start:])))
				releaseMarkers(items[start:])
				c.finished(items, len(items))
				return
			default:
			}
			s.sendBatches(s.batches(items[start:end]))
			releaseMarkers(items[start:end])
			start = end
		}
		c.finished(items, len(items))
	}
}

// sendBatches sends the batches, the held-back counts at the head of the first (alone
// when there is none).
func (s *sender) sendBatches(batches [][][]byte) {
	if heads := s.c.holds.takeLines(); len(heads) > 0 {
		if len(batches) == 0 {
			batches = [][][]byte{nil}
		}
		batches[0] = append(heads, batches[0]...)
	}
	for _, batch := range batches {
		s.send(batch)
	}
}

func countEvents(items []item) int {
	n := 0
	for i := range items {
		if items[i].kind != kindFlush {
			n++
		}
	}
	return n
}

func releaseMarkers(items []item) {
	for i := range items {
		if items[i].kind == kindFlush {
			close(items[i].extra.done)
		}
	}
}

// batches groups the lines of items so that each request stays within both limits (a
// raw array body gives a line per element, so items alone do not bound the count).
func (s *sender) batches(items []item) [][][]byte {
	var out [][][]byte
	var batch [][]byte
	size := 0
	hard := s.c.cfg.MaxRequestBytes
	limit, most := int(s.c.counters.limitBytes.Load()), int(s.c.counters.limitEvents.Load())
	var lines [][]byte
	for i := range items {
		if items[i].kind == kindFlush {
			continue
		}
		lines = s.builder.lines(&items[i], lines[:0])
		for _, line := range lines {
			n := len(line) + 1
			if n > hard {
				s.c.counters.oversized.Add(1)
				s.c.counters.error(fmt.Sprintf("event of %d bytes dropped: over MaxRequestBytes (%d)", n, hard))
				continue
			}
			if len(batch) > 0 && (size+n > limit || len(batch) >= most) {
				out = append(out, batch)
				batch, size = nil, 0
			}
			batch = append(batch, line)
			size += n
		}
	}
	if len(batch) > 0 {
		out = append(out, batch)
	}
	return out
}

func (s *sender) send(batch [][]byte) {
	pending := [][][]byte{batch}
	for len(pending) > 0 {
		batch = pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		now := time.Now()
		if now.Before(s.until) {
			s.c.counters.unavailable.Add(uint64(len(batch) - countLinesIn(batch)))
			continue
		}
		status, answer, err := s.post(bytes.Join(batch, []byte{'\n'}))
		if err != nil {
			s.unavailable(batch, err)
			continue
		}
		s.delay, s.until = 0, time.Time{}
		halves := s.answered(batch, status, answer)
		for i := len(halves) - 1; i >= 0; i-- {
			pending = append(pending, halves[i])
		}
	}
}

func (s *sender) post(body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", ndjson)
	// Marked idempotent so that net/http resends it once on a fresh connection when a
	// kept-alive one turns out closed by the sidecar (idle, restarted); not sent.
	req.Header["X-Idempotency-Key"] = nil
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

func (s *sender) unavailable(batch [][]byte, err error) {
	c := s.c
	c.counters.unavailable.Add(uint64(len(batch) - countLinesIn(batch)))
	if s.delay == 0 {
		c.counters.error(fmt.Sprintf("sidecar unavailable (%s): %v", c.cfg.target(), err))
	}
	s.delay *= 2
	if s.delay < minBackoff {
		s.delay = minBackoff
	}
	if s.delay > c.cfg.MaxBackoff {
		s.delay = c.cfg.MaxBackoff
	}
	s.until = time.Now().Add(s.delay)
}

type answer struct {
	Accepted    *uint64         `json:"accepted"`
	RateLimited uint64          `json:"rate_limited"`
	Dropped     uint64          `json:"dropped"`
	Invalid     uint64          `json:"invalid"`
	Limited     *[]limitedEntry `json:"limited"`
	Errors      []struct {
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"errors"`
}

// answered counts the sidecar's answer to batch; the pieces to resend after a 413.
func (s *sender) answered(batch [][]byte, status int, body []byte) [][][]byte {
	c := &s.c.counters
	c.requests.Add(1)
	switch status {
	case http.StatusAccepted:
		c.sent.Add(uint64(len(batch) - countLinesIn(batch)))
		var a answer
		if err := json.Unmarshal(body, &a); err != nil || a.Accepted == nil {
			c.accepted.Add(uint64(len(batch)))
			c.error(fmt.Sprintf("unexpected 202 answer: %.200q", body))
			return nil
		}
		s.c.holds.answered(a.Limited, time.Now())
		c.accepted.Add(*a.Accepted)
		c.rateLimited.Add(a.RateLimited)
		c.queueFull.Add(a.Dropped)
		c.invalid.Add(a.Invalid)
		for _, e := range a.Errors {
			text := ""
			if e.Line > 0 && e.Line <= len(batch) {
				text = string(cut(batch[e.Line-1], 200))
			}
			c.error("invalid line: " + e.Message + ": " + text)
		}
		return nil
	case http.StatusRequestEntityTooLarge:
		c.tooLarge.Add(1)
		if len(batch) == 1 { // refused alone: resending cannot help
			c.oversized.Add(1)
			c.error(fmt.Sprintf("event of %d bytes dropped: %s", len(batch[0])+1, message(body)))
			return nil
		}
		if limitOf(body) == limitEvents {
			return s.tooManyEvents(batch, body)
		}
		size := 0
		for _, line := range batch {
			size += len(line) + 1
		}
		if limit := &s.c.counters.limitBytes; int64(size/2) < limit.Load() && size/2 >= 1 {
			limit.Store(int64(size / 2))
		}
		half := len(batch) / 2
		return [][][]byte{batch[:half], batch[half:]}
	default:
		c.rejected.Add(uint64(len(batch) - countLinesIn(batch)))
		c.error(fmt.Sprintf("sidecar answered %d: %s", status, message(body)))
		return nil
	}
}

// tooManyEvents answers a 413 for events: the byte limit stays, the event cap drops to
// the sidecar's bound (or half the batch when the message does not say it), and the
// batch goes again in pieces of that many. Each piece is smaller than the batch, so a
// refusal repeated down to one event ends.
func (s *sender) tooManyEvents(batch [][]byte, body []byte) [][][]byte {
	most := eventsBoundOf(body)
	if most <= 0 || most >= len(batch) {
		most = len(batch) / 2
	}
	limit := &s.c.counters.limitEvents
	if int64(most) < limit.Load() {
		limit.Store(int64(most))
	}
	step := int(limit.Load())
	var pieces [][][]byte
	for len(batch) > step {
		pieces = append(pieces, batch[:step])
		batch = batch[step:]
	}
	return append(pieces, batch)
}

// eventsBoundOf is a 413's bound in events: its "max", else (an older sidecar) the number
// its message names; 0 when neither says.
func eventsBoundOf(body []byte) int {
	var m struct {
		Max int `json:"max"`
	}
	if json.Unmarshal(body, &m) == nil && m.Max > 0 {
		return m.Max
	}
	if found := eventsBound.FindStringSubmatch(message(body)); found != nil {
		most, _ := strconv.Atoi(found[1])
		return most
	}
	return 0
}

// limitOf is the limit a 413 names; bytes when it names none (an older sidecar).
func limitOf(body []byte) string {
	var m struct {
		Limit string `json:"limit"`
	}
	if json.Unmarshal(body, &m) == nil && m.Limit == limitEvents {
		return limitEvents
	}
	return limitBytes
}

func cut(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func message(body []byte) string {
	var m struct {
		Message *string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != nil {
		return *m.Message
	}
	return strings.ToValidUTF8(string(cut(body, 200)), "\uFFFD")
}
