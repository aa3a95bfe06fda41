package eventscache

import (
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
// a stand-in sidecar (the buffer drops what it cannot hold, counted).
func BenchmarkIncoming(b *testing.B) {
	s := startStub(b, acceptAll, false)
	c, err := New(Config{URL: s.url})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Incoming("js.key", benchBody)
	}
}
