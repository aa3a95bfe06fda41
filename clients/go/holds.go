package eventscache

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits at the source. The sidecar's NDJSON answer names, among a request's ids, those
// whose bucket is empty and until when ("limited"). Until then an event of such an id
// that goes to the all-events list only (a value encoding to an object, or a raw body
// the caller vouches is one JSON object with Mark.Parsed, with no Mark.Error) is not
// sent, nor any event when both lists are limited; never one with a capture tag. What
// was held back is counted per id and collection and sent as count lines at the head
// of the next request, or alone within a second, so that the sidecar's counts stay
// exact. Only a sidecar that answered with "limited" gets them.

const (
	maxAtSource   = 1_000_000 // the sidecar's bound per count line
	maxCountLines = 1000      // count lines at the head of one request; the rest wait
	maxLimitedIDs = 10_000    // ids remembered as limited; expired ones make room
	sendWithin    = time.Second
)

var countPrefix = []byte(`{"limited_at_source":`)

type holdUntil struct {
	until time.Time
	both  bool // the error list is limited too
}

type holdKey struct {
	id         string
	collection string
}

type holds struct {
	active    atomic.Bool // some id is named: the call's path looks
	mu        sync.Mutex
	until     map[string]holdUntil
	supported bool // the last 202 carried "limited"
	counts    map[holdKey]uint64
	order     []holdKey // counts' keys in the order they came
	first     time.Time // the oldest count not sent (zero: none)
	held      atomic.Uint64
}

// oneObject is whether a vouched raw body is one JSON object.
func oneObject(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// hold counts the event as held back when the sidecar would certainly limit it.
func (h *holds) hold(id string, isError, object bool, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	entry, ok := h.until[id]
	if !ok || !now.Before(entry.until) || (isError && !entry.both) || (!isError && !object) {
		return false
	}
	h.add(holdKey{id, "all"})
	if isError {
		h.add(holdKey{id, "error"})
	}
	if h.first.IsZero() {
		h.first = now
	}
	h.held.Add(1)
	return true
}

func (h *holds) add(key holdKey) {
	if h.counts == nil {
		h.counts = map[holdKey]uint64{}
	}
	if _, ok := h.counts[key]; !ok {
		h.order = append(h.order, key)
	}
	h.counts[key]++
}

type limitedEntry struct {
	Namespace   string   `json:"namespace"`
	ID          string   `json:"id"`
	Collections []string `json:"collections"`
	Until       string   `json:"until"`
}

// answered reads a 202's "limited" (nil: an older sidecar, which gets no count lines).
func (h *holds) answered(limited *[]limitedEntry, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if limited == nil {
		h.supported, h.until = false, nil
		h.active.Store(false)
		return
	}
	h.supported = true
	if h.until == nil || len(h.until)+len(*limited) > maxLimitedIDs {
		kept := map[string]holdUntil{}
		for id, e := range h.until {
			if now.Before(e.until) {
				kept[id] = e
			}
		}
		h.until = kept
	}
	for _, e := range *limited {
		until, err := time.Parse(time.RFC3339Nano, e.Until)
		if e.Namespace != "token" || err != nil || len(h.until) >= maxLimitedIDs {
			continue
		}
		both := false
		for _, c := range e.Collections {
			both = both || c == "error"
		}
		h.until[e.ID] = holdUntil{until, both}
	}
	h.active.Store(len(h.until) > 0)
}

// due is whether counts have waited for a request for sendWithin.
func (h *holds) due(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.first.IsZero() && now.Sub(h.first) >= sendWithin
}

// takeLines hands over the count lines for the head of the next request (none to an
// older sidecar: the events stay counted as held back).
func (h *holds) takeLines() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.first.IsZero() {
		return nil
	}
	keys := h.order
	if len(keys) > maxCountLines {
		keys, h.order = keys[:maxCountLines], append([]holdKey(nil), keys[maxCountLines:]...)
		h.first = time.Unix(1, 0) // due at once: more lines wait
	} else {
		h.order, h.first = nil, time.Time{}
	}
	var lines [][]byte
	for _, key := range keys {
		n := h.counts[key]
		delete(h.counts, key)
		for h.supported && n > 0 {
			part := n
			if part > maxAtSource {
				part = maxAtSource
			}
			n -= part
			id, _ := json.Marshal(key.id)
			line := append(append([]byte(nil), countPrefix...), strconv.FormatUint(part, 10)...)
			line = append(append(append(line, `,"namespace":"token","id":`...), id...), `,"collection":"`...)
			lines = append(lines, append(append(line, key.collection...), `"}`...))
		}
	}
	return lines
}

// countLinesIn is how many count lines head the batch (they are not events).
func countLinesIn(batch [][]byte) int {
	n := 0
	for n < len(batch) && bytes.HasPrefix(batch[n], countPrefix) {
		n++
	}
	return n
}
