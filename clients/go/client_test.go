package eventscache

// What needs no sidecar: calls that never panic, values snapshotted in the call,
// configuration from the environment. Everything that needs one (batching, answers,
// outages, shutdown) is tested against the real daemon: live_test.go here, and the
// repository's tests/test_clients.py, which drives this client through cmd/drive.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// bufferedLines are the lines of what c holds, as its sender would build them.
func bufferedLines(t *testing.T, c *Client) []map[string]any {
	t.Helper()
	c.mu.Lock()
	items := append([]item(nil), c.items...)
	c.mu.Unlock()
	b := lineBuilder{maxMalformed: c.cfg.MaxMalformedBytes, timestamps: true}
	var out []map[string]any
	for i := range items {
		for _, line := range b.lines(&items[i], nil) {
			var doc map[string]any
			if err := json.Unmarshal(line, &doc); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			out = append(out, doc)
		}
	}
	return out
}

func TestCallsNeverPanic(t *testing.T) {
	c := newClient(t, Config{Socket: "/nonexistent/ingest.sock"})
	c.IncomingValue("k", map[string]any{"f": func() {}})
	c.Processed("d", make(chan int), Result{Error: "x"})
	c.Processed("d", map[string]int{}, Result{Success: complex(1, 2)})
	c.Incoming("k", nil)
	_ = c.Flush(context.Background())
	st := c.Stats()
	if st.DroppedUnencodable != 3 || st.DroppedUnavailable != 1 || !strings.Contains(st.LastErrors[0], "cannot encode") {
		t.Fatalf("%+v", st)
	}
}

func TestValuesAreSnapshots(t *testing.T) {
	c := newClient(t, Config{Socket: "/nonexistent/ingest.sock", FlushInterval: time.Hour})
	event := map[string]any{"a": "before"}
	c.IncomingValue("k", event, Mark{Skip: "bot"})
	event["a"] = "after"
	raw := []byte(`{"a":"before"}`)
	c.Processed("pg", raw, Result{Success: json.RawMessage(`{"t":1}`), TokenID: "k"})
	raw[6] = 'X'
	lines := bufferedLines(t, c)
	if len(lines) != 2 {
		t.Fatalf("%v", lines)
	}
	if lines[0]["original"].(map[string]any)["a"] != "before" || lines[0]["skip"] != "bot" {
		t.Fatalf("%v", lines[0])
	}
	if lines[1]["original"].(map[string]any)["a"] != "before" || lines[1]["token_id"] != "k" {
		t.Fatalf("%v", lines[1])
	}
}

func TestConfigurationFromTheEnvironment(t *testing.T) {
	t.Setenv(SocketEnv, "")
	t.Setenv(URLEnv, "")
	cfg, _ := Config{}.withDefaults()
	if cfg.Socket != DefaultSocket || cfg.MaxRequestBytes != 1<<20 || cfg.FlushInterval != 100*time.Millisecond {
		t.Fatalf("%+v", cfg)
	}
	t.Setenv(URLEnv, "http://127.0.0.1:8001")
	if cfg, _ = (Config{}).withDefaults(); cfg.URL != "http://127.0.0.1:8001" || cfg.Socket != "" {
		t.Fatalf("%+v", cfg)
	}
	t.Setenv(SocketEnv, "/run/x.sock")
	if cfg, _ = (Config{}).withDefaults(); cfg.Socket != "/run/x.sock" || cfg.URL != "" {
		t.Fatalf("%+v", cfg)
	}
	if cfg, _ = (Config{URL: "http://h:1"}).withDefaults(); cfg.URL != "http://h:1" {
		t.Fatalf("%+v", cfg)
	}
	if _, err := New(Config{URL: "https://h:1"}); err == nil {
		t.Fatal("https accepted")
	}
}

// The sidecar's 413 answers alone, no sidecar needed: a 413 for events takes the bound
// its message names as the event cap (half the batch when it names none) and keeps the
// byte limit; one without a limit (an older sidecar) is for bytes; one event refused
// alone is dropped.
func TestA413ForEventsSplitsByCount(t *testing.T) {
	batch := make([][]byte, 23)
	for i := range batch {
		batch[i] = []byte(`{"n":` + strconv.Itoa(i) + `}`)
	}
	// sizes are the lengths of pieces, which must hold the lines of whole in order.
	sizes := func(pieces [][][]byte, whole [][]byte) []int {
		var out []int
		var lines [][]byte
		for _, p := range pieces {
			out = append(out, len(p))
			lines = append(lines, p...)
		}
		if fmt.Sprint(lines) != fmt.Sprint(whole) {
			t.Fatalf("pieces %q are not the batch %q", lines, whole)
		}
		return out
	}
	said := `{"message": "request holds 23 events; sidecar.ingest.max_events_per_request is 5: split it", "limit": "events"}`
	cases := []struct {
		body          string
		pieces        []int
		bytes, events int64
	}{
		{said, []int{5, 5, 5, 5, 3}, 1 << 20, 5},
		// the bound as a number ("max") wins over the message; an older sidecar sends none
		{`{"message": "too many, max is 9", "limit": "events", "max": 4}`, []int{4, 4, 4, 4, 4, 3}, 1 << 20, 4},
		{`{"message": "too many", "limit": "events"}`, []int{11, 11, 1}, 1 << 20, 11},
	}
	for _, tc := range cases {
		c := newClient(t, Config{Socket: "/nonexistent/ingest.sock", FlushInterval: time.Hour})
		s := newSender(c)
		got := sizes(s.answered(batch, 413, []byte(tc.body)), batch)
		st := c.Stats()
		if fmt.Sprint(got) != fmt.Sprint(tc.pieces) || st.RequestLimitBytes != tc.bytes || st.RequestLimitEvents != tc.events {
			t.Fatalf("%s: pieces %v, %+v", tc.body, got, st)
		}
		items := make([]item, 30)
		for i := range items {
			items[i] = item{kind: kindTokenRaw, id: "k", body: []byte("{}")}
		}
		for _, b := range s.batches(items) {
			if int64(len(b)) > tc.events {
				t.Fatalf("a batch of %d lines after the cap %d", len(b), tc.events)
			}
		}
	}
	for _, body := range []string{`{"message": "too big"}`, `not json`, `{"message": "x", "limit": "bytes"}`} {
		c := newClient(t, Config{Socket: "/nonexistent/ingest.sock", FlushInterval: time.Hour})
		s := newSender(c)
		ten := make([][]byte, 10)
		for i := range ten {
			ten[i] = []byte(strings.Repeat("x", 99)) // 1,000 bytes with the newlines
		}
		got := sizes(s.answered(ten, 413, []byte(body)), ten)
		st := c.Stats()
		if fmt.Sprint(got) != "[5 5]" || st.RequestLimitBytes != 500 || st.RequestLimitEvents != 500 {
			t.Fatalf("%s: pieces %v, %+v", body, got, st)
		}
	}
	c := newClient(t, Config{Socket: "/nonexistent/ingest.sock", FlushInterval: time.Hour})
	s := newSender(c)
	for _, body := range []string{`{"message": "m", "limit": "events"}`, `{"message": "m"}`} {
		if pieces := s.answered([][]byte{[]byte("{}")}, 413, []byte(body)); pieces != nil {
			t.Fatalf("%s: resent %v", body, pieces)
		}
	}
	st := c.Stats()
	if st.DroppedOversized != 2 || st.TooLarge != 2 || fmt.Sprint(st.LastErrors) != "[event of 3 bytes dropped: m event of 3 bytes dropped: m]" {
		t.Fatalf("%+v", st)
	}
}
