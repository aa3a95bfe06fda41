package eventscache

import (
	"encoding/json"
	"testing"
	"time"
)

func limitedAnswer(t *testing.T, body string) *[]limitedEntry {
	t.Helper()
	var a answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	return a.Limited
}

func TestHoldsFollowTheAnswer(t *testing.T) {
	var h holds
	now := time.Now()
	until := now.Add(time.Hour).UTC().Format(time.RFC3339Nano)
	h.answered(limitedAnswer(t, `{"accepted":0,"limited":[
		{"namespace":"token","id":"a","collections":["all"],"until":"`+until+`"},
		{"namespace":"token","id":"b","collections":["all","error"],"until":"`+until+`"},
		{"namespace":"destination","id":"d","collections":["all"],"until":"`+until+`"}]}`), now)
	if !h.active.Load() || !h.supported {
		t.Fatal("the answer's limited was not taken")
	}
	cases := []struct {
		id           string
		isError, obj bool
		held         bool
	}{
		{"a", false, true, true},   // an object to the all list only
		{"a", false, false, false}, // not vouched: may be malformed
		{"a", true, true, false},   // an error goes to the error list, which has room
		{"b", true, false, true},   // both lists limited: any event
		{"d", false, true, false},  // destinations are not held back
		{"x", false, true, false},  // not named
	}
	for _, c := range cases {
		if got := h.hold(c.id, c.isError, c.obj, now); got != c.held {
			t.Errorf("hold(%q, error=%v, object=%v) = %v", c.id, c.isError, c.obj, got)
		}
	}
	if h.hold("a", false, true, now.Add(2*time.Hour)) {
		t.Error("held after until")
	}
	lines := h.takeLines()
	want := []string{
		`{"limited_at_source":1,"namespace":"token","id":"a","collection":"all"}`,
		`{"limited_at_source":1,"namespace":"token","id":"b","collection":"all"}`,
		`{"limited_at_source":1,"namespace":"token","id":"b","collection":"error"}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("lines %q", lines)
	}
	for i, line := range lines {
		if string(line) != want[i] {
			t.Errorf("line %d: %s, want %s", i, line, want[i])
		}
	}
	if n := countLinesIn(append(lines, []byte(`{"namespace":"token"}`))); n != 3 {
		t.Errorf("countLinesIn = %d", n)
	}
	if h.held.Load() != 2 || len(h.takeLines()) != 0 {
		t.Error("counts not taken once")
	}
}

func TestAnOldSidecarGetsNoCountLines(t *testing.T) {
	var h holds
	now := time.Now()
	until := now.Add(time.Hour).UTC().Format(time.RFC3339Nano)
	h.answered(limitedAnswer(t, `{"limited":[{"namespace":"token","id":"a","collections":["all"],"until":"`+until+`"}]}`), now)
	h.hold("a", false, true, now)
	h.answered(limitedAnswer(t, `{"accepted":1}`), now)
	if h.active.Load() || h.hold("a", false, true, now) {
		t.Error("held back after an answer without limited")
	}
	if lines := h.takeLines(); len(lines) != 0 {
		t.Errorf("count lines for an old sidecar: %q", lines)
	}
}

func TestOneObject(t *testing.T) {
	for body, want := range map[string]bool{`{"a":1}`: true, " \n{}": true, `[{}]`: false, ``: false, `x`: false} {
		if oneObject([]byte(body)) != want {
			t.Errorf("oneObject(%q) != %v", body, want)
		}
	}
}
