package eventscache

// Against a running sidecar, when EVENTS_CACHE_TEST_SOCKET or EVENTS_CACHE_TEST_URL
// names one (the repository's tests/test_clients.py starts one and sets them). The
// behaviours that need a sidecar configured to provoke them (413s, rate limits,
// rejections, outages, restarts, a hung sidecar) are driven by tests/test_clients.py.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func liveConfigs(t *testing.T) map[string]Config {
	configs := map[string]Config{}
	if s := os.Getenv("EVENTS_CACHE_TEST_SOCKET"); s != "" {
		configs["socket"] = Config{Socket: s}
	}
	if u := os.Getenv("EVENTS_CACHE_TEST_URL"); u != "" {
		configs["url"] = Config{URL: u}
	}
	if len(configs) == 0 {
		t.Skip("no live sidecar: set EVENTS_CACHE_TEST_SOCKET or EVENTS_CACHE_TEST_URL")
	}
	return configs
}

func TestLiveDelivery(t *testing.T) {
	const n = 2000
	for name, cfg := range liveConfigs(t) {
		t.Run(name, func(t *testing.T) {
			key := fmt.Sprintf("live-go-%s-%d", name, time.Now().UnixNano())
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				c.Incoming(key, []byte(fmt.Sprintf(`{"n":%d}`, i)))
			}
			c.Incoming(key, []byte("not json"))
			c.Processed(key, map[string]int{"n": 0}, Result{Error: "refused", TokenID: key})
			c.Processed(key, map[string]int{"n": 1}, Result{Success: map[string]int{"t": 1}, Error: "both: invalid"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			st := c.Stats()
			if st.Sent != n+3 || st.Accepted+st.RateLimited != n+2 || st.Invalid != 1 || st.Dropped() != 0 {
				t.Fatalf("%+v", st)
			}
			if !strings.Contains(st.LastErrors[len(st.LastErrors)-1], "exactly one") {
				t.Fatalf("%v", st.LastErrors)
			}
		})
	}
}

func TestLiveConcurrentCalls(t *testing.T) {
	const goroutines, n = 8, 1000
	for name, cfg := range liveConfigs(t) {
		t.Run(name, func(t *testing.T) {
			key := fmt.Sprintf("live-go-%s-%d", name, time.Now().UnixNano())
			cfg.BufferEvents = goroutines * n
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < n; i++ {
						c.Incoming(fmt.Sprintf("%s-%d", key, g), []byte(fmt.Sprintf(`{"n":%d}`, i)))
						if i%100 == 0 {
							_ = c.Stats()
						}
					}
				}(g)
			}
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			st := c.Stats()
			if st.Sent != goroutines*n || st.Accepted+st.RateLimited != goroutines*n || st.Dropped() != 0 {
				t.Fatalf("%+v", st)
			}
		})
	}
}
