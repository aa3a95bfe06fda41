// Command drive runs the Go client against a running sidecar and prints one JSON line
// of results; the same command line as clients/python/tools/drive.py, so that
// tests/test_clients.py and bench/clients.py treat the three clients alike. With
// -commands it reads one JSON command a line from stdin and answers each with one
// JSON line instead (the protocol is described in clients/python/tools/drive.py).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	eventscache "github.com/events-cache/events-cache/clients/go"
)

func makeEvent(n, size int) map[string]any {
	event := map[string]any{
		"event_type": "pageview",
		"event_id":   fmt.Sprintf("ev-%d", n),
		"eventn_ctx": map[string]any{"url": "https://www.example.com/pricing?utm_source=newsletter"},
		"pad":        "",
	}
	data, _ := json.Marshal(event)
	if pad := size - len(data); pad > 0 {
		event["pad"] = strings.Repeat("x", pad)
	}
	return event
}

func main() {
	socket := flag.String("socket", "", "the sidecar's Unix socket")
	url := flag.String("url", "", "the sidecar's ingest URL")
	events := flag.Int("events", 10000, "events to hand over")
	ids := flag.Int("ids", 10, "ids to spread them over")
	kindFlag := flag.String("kind", "raw", "raw, value, processed or mixed")
	bodyBytes := flag.Int("body-bytes", 1400, "approximate size of an event")
	rate := flag.Float64("rate", 0, "events per second (0: as fast as possible)")
	maxRequest := flag.Int("max-request-bytes", 0, "")
	flushMs := flag.Float64("flush-ms", 0, "")
	batchEvents := flag.Int("batch-events", 0, "")
	bufferEvents := flag.Int("buffer-events", 0, "")
	bufferBytes := flag.Int("buffer-bytes", 0, "")
	timeout := flag.Float64("timeout", 0, "seconds for connecting and for one request")
	maxBackoff := flag.Float64("max-backoff", 0, "seconds between connection attempts while away")
	closeTimeout := flag.Float64("close-timeout", 10, "seconds")
	concurrency := flag.Int("concurrency", 1, "goroutines making the calls")
	commands := flag.Bool("commands", false, "JSON commands on stdin, one JSON answer a line on stdout")
	idle := flag.Bool("idle-sender", false, "time the calls alone: chunks of calls, each flushed after")
	chunk := flag.Int("chunk", 10000, "calls per chunk with -idle-sender")
	bodiesPath := flag.String("bodies", "", "JSON lines {id, body (base64), skip, error}: raw bodies as given")
	flag.Parse()

	cfg := eventscache.Config{Socket: *socket, URL: *url, MaxRequestBytes: *maxRequest,
		FlushInterval: time.Duration(*flushMs * float64(time.Millisecond)), MaxBatchEvents: *batchEvents,
		BufferEvents: *bufferEvents, BufferBytes: *bufferBytes,
		Timeout: seconds(*timeout), MaxBackoff: seconds(*maxBackoff)}
	if *idle {
		cfg.FlushInterval, cfg.MaxBatchEvents = time.Hour, *chunk+1
		cfg.BufferEvents, cfg.BufferBytes = *chunk+1, 1<<40
	}
	client, err := eventscache.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *commands {
		runCommands(client)
		return
	}

	names := make([]string, *ids)
	for i := range names {
		names[i] = fmt.Sprintf("drive-%d", i)
	}
	values := make([]map[string]any, 16)
	bodies := make([][]byte, 16)
	for i := range values {
		values[i] = makeEvent(i, *bodyBytes)
		bodies[i], _ = json.Marshal(values[i])
	}
	success := map[string]any{"table": "events", "rows": 1}
	kinds := []string{*kindFlag}
	if *kindFlag == "mixed" {
		kinds = []string{"processed", "raw", "value", "error"}
	}

	call := func(n int) {
		id, b := names[n%len(names)], bodies[n%16]
		switch kinds[n%len(kinds)] {
		case "raw":
			client.Incoming(id, b)
		case "value":
			client.IncomingValue(id, values[n%16])
		case "processed":
			client.Processed(id, b, eventscache.Result{Success: success})
		default:
			client.Processed(id, b, eventscache.Result{Error: "destination refused the event"})
		}
	}
	if *bodiesPath != "" {
		given := readBodies(*bodiesPath)
		*events = len(given)
		call = func(n int) {
			g := given[n]
			client.Incoming(g.ID, g.Body, eventscache.Mark{Skip: g.Skip, Error: g.Error})
		}
	}
	var maxCall, timed time.Duration
	start := time.Now()
	if *idle {
		// Chunks of calls timed as a whole, each flushed (untimed) before the next.
		for n := 0; n < *events; {
			end := n + *chunk
			if end > *events {
				end = *events
			}
			t0 := time.Now()
			for ; n < end; n++ {
				call(n)
			}
			timed += time.Since(t0)
			_ = client.Flush(context.Background())
		}
	} else if *concurrency > 1 {
		maxCall = concurrently(call, *events, *concurrency)
		timed = time.Since(start)
	} else {
		var pace time.Duration
		if *rate > 0 {
			pace = time.Duration(float64(time.Second) / *rate)
		}
		for n := 0; n < *events; n++ {
			t0 := time.Now()
			call(n)
			if took := time.Since(t0); took > maxCall {
				maxCall = took
			}
			if pace > 0 && n%10 == 9 {
				if behind := time.Until(start.Add(time.Duration(n+1) * pace)); behind > 0 {
					time.Sleep(behind)
				}
			}
		}
		timed = time.Since(start)
	}
	calls := time.Since(start)
	closeStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*closeTimeout*float64(time.Second)))
	defer cancel()
	flushed := client.Close(ctx) == nil
	end := time.Now()
	out, _ := json.Marshal(map[string]any{
		"language":    "go",
		"events":      *events,
		"calls_s":     calls.Seconds(),
		"ns_per_call": float64(timed.Nanoseconds()) / float64(max(*events, 1)),
		"max_call_ns": maxCall.Nanoseconds(),
		"close_s":     end.Sub(closeStart).Seconds(),
		"total_s":     end.Sub(start).Seconds(),
		"flushed":     flushed,
		"stats":       statsJSON(client),
	})
	fmt.Println(string(out))
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// statsJSON is the client's counters with the JSON names, and "dropped" (their sum).
func statsJSON(client *eventscache.Client) map[string]any {
	st := client.Stats()
	stats := map[string]any{}
	data, _ := json.Marshal(st)
	_ = json.Unmarshal(data, &stats)
	stats["dropped"] = st.Dropped()
	return stats
}

// concurrently makes the calls from n goroutines at once, each every n-th event; the
// slowest call.
func concurrently(call func(int), events, n int) time.Duration {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var slowest time.Duration
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			var mine time.Duration
			for i := k; i < events; i += n {
				t0 := time.Now()
				call(i)
				if took := time.Since(t0); took > mine {
					mine = took
				}
			}
			mu.Lock()
			if mine > slowest {
				slowest = mine
			}
			mu.Unlock()
		}(k)
	}
	wg.Wait()
	return slowest
}

// command is one line of the -commands protocol.
type command struct {
	Op       string          `json:"op"`
	ID       string          `json:"id"`
	Body     string          `json:"body"`
	Original string          `json:"original"`
	Success  json.RawMessage `json:"success"`
	Error    string          `json:"error"`
	Skip     string          `json:"skip"`
	TokenID  string          `json:"token_id"`
	Capture  string          `json:"capture"`
	Parsed   bool            `json:"parsed"`
	Count    *int            `json:"count"`
	Timeout  *float64        `json:"timeout"`
}

// runCommands answers the commands on stdin until it ends.
func runCommands(client *eventscache.Client) {
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			var c command
			if jerr := json.Unmarshal(line, &c); jerr != nil {
				fmt.Fprintln(os.Stderr, jerr)
				os.Exit(2)
			}
			out, _ := json.Marshal(step(client, c))
			fmt.Println(string(out))
		}
		if err == io.EOF {
			return
		} else if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}

func step(client *eventscache.Client, c command) map[string]any {
	timeout := 5.0
	if c.Timeout != nil {
		timeout = *c.Timeout
	}
	switch c.Op {
	case "flush", "close":
		ctx, cancel := context.WithTimeout(context.Background(), seconds(timeout))
		defer cancel()
		t0 := time.Now()
		var err error
		if c.Op == "close" {
			err = client.Close(ctx)
		} else {
			err = client.Flush(ctx)
		}
		took := time.Since(t0)
		return map[string]any{"flushed": err == nil, "took_s": took.Seconds(), "stats": statsJSON(client)}
	case "stats":
		return map[string]any{"stats": statsJSON(client)}
	}
	var call func()
	switch c.Op {
	case "incoming":
		body := []byte(c.Body)
		mark := eventscache.Mark{Skip: c.Skip, Error: c.Error, Capture: c.Capture, Parsed: c.Parsed}
		call = func() { client.Incoming(c.ID, body, mark) }
	case "processed":
		result := eventscache.Result{Error: c.Error, Skip: c.Skip, TokenID: c.TokenID, Capture: c.Capture}
		if len(c.Success) > 0 && string(c.Success) != "null" {
			result.Success = c.Success
		}
		original := []byte(c.Original)
		call = func() { client.Processed(c.ID, original, result) }
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", c.Op)
		os.Exit(2)
	}
	count := 1
	if c.Count != nil {
		count = *c.Count
	}
	var maxCall time.Duration
	for i := 0; i < count; i++ {
		t0 := time.Now()
		call()
		if took := time.Since(t0); took > maxCall {
			maxCall = took
		}
	}
	return map[string]any{"max_call_ns": maxCall.Nanoseconds(), "stats": statsJSON(client)}
}

type givenBody struct {
	ID    string `json:"id"`
	Body  []byte `json:"body"` // base64 in JSON
	Skip  string `json:"skip"`
	Error string `json:"error"`
}

func readBodies(path string) []givenBody {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out []givenBody
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var g givenBody
		if err := json.Unmarshal([]byte(line), &g); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		out = append(out, g)
	}
	return out
}

func max(a, b int) int {
	if a > b {
		return a
	}
	return b
}
