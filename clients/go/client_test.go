package eventscache

// Unit tests against a stand-in sidecar on a Unix socket or a loopback port. They do
// not replace live_test.go, which runs against the real sidecar.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type answerFunc func(body []byte) (int, any)

func acceptAll(body []byte) (int, any) {
	n := bytes.Count(body, []byte{'\n'}) + 1
	return 202, map[string]any{"accepted": n, "rate_limited": 0, "dropped": 0, "invalid": 0, "errors": []any{}}
}

type stub struct {
	t      testing.TB
	answer answerFunc
	mu     sync.Mutex
	bodies [][]byte
	server *http.Server
	socket string
	url    string
	unix   bool
}

func startStub(t testing.TB, answer answerFunc, unix bool) *stub {
	s := &stub{t: t, answer: answer, unix: unix}
	if unix {
		s.socket = filepath.Join(t.TempDir(), "ingest.sock")
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *stub) start() {
	var l net.Listener
	var err error
	if s.unix {
		l, err = net.Listen("unix", s.socket)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		s.url = "http://" + l.Addr().String()
	}
	if err != nil {
		s.t.Fatal(err)
	}
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.mu.Unlock()
		status, doc := s.answer(body)
		data, _ := json.Marshal(doc)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(data)
	})}
	s.server = server
	go func() { _ = server.Serve(l) }()
}

func (s *stub) stop() {
	if s.server != nil {
		_ = s.server.Close() // closes the listener and every connection
		s.server = nil
	}
	if s.unix {
		_ = os.Remove(s.socket)
	}
}

func (s *stub) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, body := range s.bodies {
		for _, line := range bytes.Split(body, []byte{'\n'}) {
			var doc map[string]any
			_ = json.Unmarshal(line, &doc)
			out = append(out, doc)
		}
	}
	return out
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func closeWithin(t *testing.T, c *Client, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Close(ctx)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not within 5 s: %s", what)
}

var body = []byte(`{"event_type":"pageview","pad":"` + strings.Repeat("x", 900) + `"}`)

func TestBatchesWithinTheFlushInterval(t *testing.T) {
	s := startStub(t, acceptAll, true)
	c := newClient(t, Config{Socket: s.socket})
	for n := 0; n < 1200; n++ {
		c.Incoming(fmt.Sprintf("k%d", n%3), body)
	}
	waitFor(t, "1200 accepted", func() bool { return c.Stats().Accepted == 1200 })
	for _, b := range s.bodies {
		if bytes.Count(b, []byte{'\n'}) >= 500 {
			t.Fatal("a batch over 500 events")
		}
	}
	c.Incoming("k", body) // alone: sent after the interval, not after more events
	started := time.Now()
	waitFor(t, "1201 accepted", func() bool { return c.Stats().Accepted == 1201 })
	if time.Since(started) > time.Second {
		t.Fatal("one event waited too long")
	}
	if err := closeWithin(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Sent != 1201 || st.Dropped() != 0 || st.Buffered != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestBatchesStayUnderMaxRequestBytes(t *testing.T) {
	s := startStub(t, acceptAll, true)
	c := newClient(t, Config{Socket: s.socket, MaxRequestBytes: 20000})
	for n := 0; n < 300; n++ {
		c.Incoming("k", body)
	}
	if err := closeWithin(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, b := range s.bodies {
		if len(b) > 20000 {
			t.Fatalf("a body of %d bytes", len(b))
		}
	}
	if st := c.Stats(); st.Accepted != 300 || st.TooLarge != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestA413SplitsTheBatchInHalves(t *testing.T) {
	small := func(b []byte) (int, any) {
		if len(b) > 10000 {
			return 413, map[string]string{"message": "request body exceeds sidecar.ingest.max_request_bytes"}
		}
		return acceptAll(b)
	}
	s := startStub(t, small, true)
	c := newClient(t, Config{Socket: s.socket})
	for n := 0; n < 400; n++ {
		c.Incoming("k", body)
	}
	c.Incoming("k", []byte(`{"big":"`+strings.Repeat("x", 20000)+`"}`))
	if err := closeWithin(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Accepted != 400 || st.DroppedOversized != 1 || st.TooLarge == 0 {
		t.Fatalf("%+v", st)
	}
	if !strings.Contains(st.LastErrors[len(st.LastErrors)-1], "exceeds") {
		t.Fatalf("%v", st.LastErrors)
	}
}

func TestAnEventOverTheClientsLimitIsOversized(t *testing.T) {
	s := startStub(t, acceptAll, true)
	c := newClient(t, Config{Socket: s.socket, MaxRequestBytes: 1000})
	c.Incoming("k", body)
	c.Incoming("k", []byte("{}"))
	_ = closeWithin(t, c, 5*time.Second)
	if st := c.Stats(); st.Accepted != 1 || st.DroppedOversized != 1 {
		t.Fatalf("%+v", st)
	}
}

func TestInvalidLinesAreCountedWithTheirText(t *testing.T) {
	answer := func(b []byte) (int, any) {
		n := bytes.Count(b, []byte{'\n'}) + 1
		return 202, map[string]any{"accepted": n - 1, "rate_limited": 0, "dropped": 0, "invalid": 1,
			"errors": []any{map[string]any{"line": 2, "message": `"id" must be a non-empty string`}}}
	}
	s := startStub(t, answer, true)
	c := newClient(t, Config{Socket: s.socket})
	c.Incoming("k", []byte("{}"))
	c.Incoming("", []byte(`{"n":2}`))
	_ = closeWithin(t, c, 5*time.Second)
	st := c.Stats()
	if st.Sent != 2 || st.Accepted != 1 || st.Invalid != 1 {
		t.Fatalf("%+v", st)
	}
	last := st.LastErrors[len(st.LastErrors)-1]
	if !strings.HasPrefix(last, `invalid line: "id" must be a non-empty string: `) || !strings.Contains(last, `"id":""`) {
		t.Fatal(last)
	}
}

func TestRateLimitedAndSidecarDropsAreCounted(t *testing.T) {
	answer := func(b []byte) (int, any) {
		n := bytes.Count(b, []byte{'\n'}) + 1
		return 202, map[string]any{"accepted": 1, "rate_limited": n - 2, "dropped": 1, "invalid": 0, "errors": []any{}}
	}
	s := startStub(t, answer, true)
	c := newClient(t, Config{Socket: s.socket})
	for n := 0; n < 10; n++ {
		c.Incoming("k", []byte("{}"))
	}
	_ = closeWithin(t, c, 5*time.Second)
	if st := c.Stats(); st.Accepted != 1 || st.RateLimited != 8 || st.DroppedQueueFull != 1 {
		t.Fatalf("%+v", st)
	}
}

func TestOtherAnswersAreRejections(t *testing.T) {
	s := startStub(t, func([]byte) (int, any) {
		return 503, map[string]string{"message": "the events cache is disabled"}
	}, true)
	c := newClient(t, Config{Socket: s.socket})
	c.Incoming("k", []byte("{}"))
	_ = closeWithin(t, c, 5*time.Second)
	st := c.Stats()
	if st.DroppedRejected != 1 || st.LastErrors[0] != "sidecar answered 503: the events cache is disabled" {
		t.Fatalf("%+v", st)
	}
}

func TestSidecarAwayCostsNothingAndDeliveryResumes(t *testing.T) {
	s := startStub(t, acceptAll, true)
	s.stop()
	c := newClient(t, Config{Socket: s.socket, MaxBackoff: 200 * time.Millisecond})
	var slowest time.Duration
	for n := 0; n < 2000; n++ {
		started := time.Now()
		c.Incoming("k", body)
		if d := time.Since(started); d > slowest {
			slowest = d
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if slowest > 50*time.Millisecond || st.DroppedUnavailable != 2000 {
		t.Fatalf("slowest call %v, %+v", slowest, st)
	}
	if !strings.Contains(st.LastErrors[0], "sidecar unavailable") {
		t.Fatal(st.LastErrors)
	}
	s.start()
	waitFor(t, "delivery resumes", func() bool {
		c.Incoming("k", []byte("{}"))
		return c.Stats().Accepted > 0
	})
}

func TestARestartedSidecarIsReachedOnAFreshConnection(t *testing.T) {
	s := startStub(t, acceptAll, true)
	c := newClient(t, Config{Socket: s.socket})
	c.Incoming("k", []byte("{}"))
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.stop()
	s.start()
	c.Incoming("k", []byte("{}"))
	_ = closeWithin(t, c, 5*time.Second)
	if st := c.Stats(); st.Accepted != 2 || st.Dropped() != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestAFullBufferDropsAndCounts(t *testing.T) {
	s := startStub(t, acceptAll, true)
	c := newClient(t, Config{Socket: s.socket, BufferEvents: 10, FlushInterval: time.Minute})
	for n := 0; n < 25; n++ {
		c.Incoming("k", []byte("{}"))
	}
	if st := c.Stats(); st.DroppedBufferFull != 15 || st.Buffered != 10 {
		t.Fatalf("%+v", st)
	}
	big := newClient(t, Config{Socket: s.socket, BufferBytes: 4500, FlushInterval: time.Minute})
	for n := 0; n < 10; n++ {
		big.Incoming("k", body)
	}
	if st := big.Stats(); st.DroppedBufferFull != 6 {
		t.Fatalf("%+v", st)
	}
	_ = closeWithin(t, c, 5*time.Second)
	if st := c.Stats(); st.Accepted != 10 {
		t.Fatalf("%+v", st)
	}
}

func TestCloseFlushesAndLaterCallsAreCounted(t *testing.T) {
	s := startStub(t, acceptAll, true)
	c := newClient(t, Config{Socket: s.socket, FlushInterval: 30 * time.Second})
	for n := 0; n < 50; n++ {
		c.Incoming("k", []byte("{}"))
	}
	if err := closeWithin(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Accepted != 50 {
		t.Fatalf("%+v", c.Stats())
	}
	c.Incoming("k", []byte("{}"))
	c.Processed("d", map[string]int{}, Result{Success: map[string]int{}})
	if err := closeWithin(t, c, time.Second); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.DroppedClosed != 2 {
		t.Fatalf("%+v", st)
	}
}

func TestCloseTimesOutWhenTheSidecarHangs(t *testing.T) {
	s := startStub(t, func(b []byte) (int, any) {
		time.Sleep(1500 * time.Millisecond)
		return acceptAll(b)
	}, true)
	c := newClient(t, Config{Socket: s.socket, Timeout: time.Second})
	c.Incoming("k", []byte("{}"))
	started := time.Now()
	if err := closeWithin(t, c, 300*time.Millisecond); err == nil {
		t.Fatal("no timeout")
	}
	if time.Since(started) > time.Second {
		t.Fatal("close took too long")
	}
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
	s := startStub(t, acceptAll, false)
	c := newClient(t, Config{URL: s.url})
	event := map[string]any{"a": "before"}
	c.IncomingValue("k", event, Mark{Skip: "bot"})
	event["a"] = "after"
	raw := []byte(`{"a":"before"}`)
	c.Processed("pg", raw, Result{Success: json.RawMessage(`{"t":1}`), TokenID: "k"})
	raw[6] = 'X'
	_ = closeWithin(t, c, 5*time.Second)
	lines := s.lines()
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

func TestConcurrentCalls(t *testing.T) {
	s := startStub(t, acceptAll, true)
	c := newClient(t, Config{Socket: s.socket, BufferEvents: 100000})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; n < 1000; n++ {
				c.Incoming(fmt.Sprintf("g%d", g), []byte("{}"))
				if n%100 == 0 {
					_ = c.Stats()
				}
			}
		}(g)
	}
	wg.Wait()
	_ = closeWithin(t, c, 5*time.Second)
	if st := c.Stats(); st.Accepted != 8000 {
		t.Fatalf("%+v", st)
	}
}
