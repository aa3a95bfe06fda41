package eventscache

// What needs no sidecar: calls that never panic, values snapshotted in the call,
// configuration from the environment. Everything that needs one (batching, answers,
// outages, shutdown) is tested against the real daemon: live_test.go here, and the
// repository's tests/test_clients.py, which drives this client through cmd/drive.

import (
	"context"
	"encoding/json"
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
