package eventscache

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Environment variables the chart sets on the ingest container.
const (
	SocketEnv     = "EVENTS_CACHE_SOCKET"
	URLEnv        = "EVENTS_CACHE_URL"
	DefaultSocket = "/var/run/events-cache/ingest.sock" // the chart's socket path
	eventsPath    = "/v1/events"
	ndjson        = "application/x-ndjson"
)

// Config of a Client; zero fields take the defaults below.
type Config struct {
	// Socket is the sidecar's Unix socket; URL its loopback HTTP address
	// (http://127.0.0.1:8001). Both empty: EVENTS_CACHE_SOCKET, else EVENTS_CACHE_URL,
	// else DefaultSocket. A socket is preferred when both are given.
	Socket string
	URL    string

	MaxRequestBytes   int           // 1 MiB: the sidecar's sidecar.ingest.max_request_bytes
	MaxBatchEvents    int           // 500 events in one request at most
	FlushInterval     time.Duration // 100 ms: how long an event may wait for a batch
	BufferEvents      int           // 10,000 events buffered (and in flight) at most
	BufferBytes       int           // 8 MiB buffered at most
	Timeout           time.Duration // 2 s for connecting and for one request
	MaxMalformedBytes int           // 10,000: the sidecar's max_malformed_event_size_bytes
	MaxBackoff        time.Duration // 1 s between connection attempts while away
	NoTimestamps      bool          // leave "timestamp" out: the sidecar stamps on arrival
}

func (c Config) withDefaults() (Config, error) {
	if c.Socket == "" && c.URL == "" {
		c.Socket = os.Getenv(SocketEnv)
		if c.Socket == "" {
			c.URL = os.Getenv(URLEnv)
		}
		if c.Socket == "" && c.URL == "" {
			c.Socket = DefaultSocket
		}
	}
	if c.Socket != "" {
		c.URL = ""
	} else if _, err := postURL(c.URL); err != nil {
		return c, err
	}
	setInt(&c.MaxRequestBytes, 1<<20)
	setInt(&c.MaxBatchEvents, 500)
	setInt(&c.BufferEvents, 10000)
	setInt(&c.BufferBytes, 8<<20)
	setInt(&c.MaxMalformedBytes, 10000)
	setDuration(&c.FlushInterval, 100*time.Millisecond)
	setDuration(&c.Timeout, 2*time.Second)
	setDuration(&c.MaxBackoff, time.Second)
	if c.MaxRequestBytes < 0 || c.MaxBatchEvents < 0 || c.BufferEvents < 0 || c.BufferBytes < 0 ||
		c.MaxMalformedBytes < 0 || c.FlushInterval < 0 || c.Timeout < 0 || c.MaxBackoff < 0 {
		return c, errors.New("eventscache: limits and durations must not be negative")
	}
	return c, nil
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setDuration(v *time.Duration, def time.Duration) {
	if *v == 0 {
		*v = def
	}
}

// postURL is the URL of POST /v1/events under an http:// base URL.
func postURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("eventscache: URL must be http://host:port, got %q", base)
	}
	return "http://" + u.Host + strings.TrimRight(u.Path, "/") + eventsPath, nil
}

func (c Config) target() string {
	if c.Socket != "" {
		return "unix:" + c.Socket
	}
	return c.URL
}
