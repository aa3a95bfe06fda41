package eventscache

import (
	"os"
	"strings"
	"testing"
	"time"
)

var benchBody = []byte(`{"event_type":"pageview","pad":"` + strings.Repeat("x", 1400) + `"}`)

// BenchmarkIncomingIdle is the call alone: a copy of the body into the buffer, with
// the sender idle (everything stays buffered).
func BenchmarkIncomingIdle(b *testing.B) {
	c, err := New(Config{Socket: "/nonexistent/ingest.sock", FlushInterval: time.Hour,
		MaxBatchEvents: b.N + 1, BufferEvents: b.N + 1, BufferBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Incoming("js.key", benchBody)
	}
}

// BenchmarkIncoming is the call with the default settings while the sender sends to
// the sidecar that EVENTS_CACHE_TEST_SOCKET or EVENTS_CACHE_TEST_URL names (skipped
// without one); the buffer drops what it cannot hold, counted.
func BenchmarkIncoming(b *testing.B) {
	cfg := Config{Socket: os.Getenv("EVENTS_CACHE_TEST_SOCKET"), URL: os.Getenv("EVENTS_CACHE_TEST_URL")}
	if cfg.Socket == "" && cfg.URL == "" {
		b.Skip("no live sidecar: set EVENTS_CACHE_TEST_SOCKET or EVENTS_CACHE_TEST_URL")
	}
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Incoming("js.key", benchBody)
	}
}

// BenchmarkLine is the sender's building of one token line from a raw ~1.4 KB object
// body: checked (not vouched for) and as it is (vouched for with Mark.Parsed).
func BenchmarkLine(b *testing.B) {
	for _, parsed := range []bool{false, true} {
		name := map[bool]string{false: "checked", true: "vouched"}[parsed]
		b.Run(name, func(b *testing.B) {
			builder := lineBuilder{maxMalformed: 10000, timestamps: true}
			it := item{kind: kindTokenRaw, id: "js.key", body: benchBody, parsed: parsed}
			var out [][]byte
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out = builder.lines(&it, out[:0])
			}
		})
	}
}
