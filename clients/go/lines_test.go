package eventscache

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unsafe"
)

var at = time.Date(2024, 5, 1, 12, 0, 0, 250000000, time.UTC).UnixNano()

func build(t *testing.T, it item) []map[string]any {
	t.Helper()
	it.at = at
	b := lineBuilder{maxMalformed: 10000, timestamps: true}
	var out []map[string]any
	for _, line := range b.lines(&it, nil) {
		if strings.Contains(string(line), "\n") {
			t.Fatalf("a line holds a newline: %q", line)
		}
		var doc map[string]any
		if err := json.Unmarshal(line, &doc); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, doc)
	}
	return out
}

func raw(body string) item { return item{kind: kindTokenRaw, id: "js.key", body: []byte(body)} }

func TestObjectBodyIsOneEntryWithItsOwnText(t *testing.T) {
	lines := build(t, raw("{\"event_type\": \"pageview\",\n \"n\": 1}\n"))
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	l := lines[0]
	if l["namespace"] != "token" || l["id"] != "js.key" || l["timestamp"] != "2024-05-01T12:00:00.250000Z" {
		t.Fatalf("%v", l)
	}
	if o := l["original"].(map[string]any); o["event_type"] != "pageview" || o["n"] != 1.0 {
		t.Fatalf("%v", o)
	}
}

func TestArrayBodyIsOneEntryPerElement(t *testing.T) {
	lines := build(t, raw(`[{"a": 1}, 2, "x", {"b": [1, 2]}]`))
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	if lines[0]["original"] == nil || lines[3]["original"] == nil {
		t.Fatalf("%v", lines)
	}
	if lines[1]["malformed"] != "2" || lines[1]["error"] != "array element 1 is a number, not an object" {
		t.Fatalf("%v", lines[1])
	}
	if lines[2]["error"] != "array element 2 is a string, not an object" {
		t.Fatalf("%v", lines[2])
	}
}

func TestWhatIsNotAnObjectOrArrayIsMalformed(t *testing.T) {
	cases := map[string]string{
		"":                "empty body",
		"  \n":            "empty body",
		`"text"`:          "body is a string, not an object or an array of objects",
		"null":            "body is null, not an object or an array of objects",
		"\xff{}":          "invalid JSON: not valid UTF-8",
		"{broken":         "invalid JSON: ",
		"{\"a\":NaN}":     "invalid JSON: ",
		`{"a":1} {"b":2}`: "invalid JSON: ",
	}
	for body, want := range cases {
		lines := build(t, raw(body))
		if len(lines) != 1 || !strings.HasPrefix(lines[0]["error"].(string), want) {
			t.Errorf("%q: %v", body, lines)
		}
		if _, ok := lines[0]["original"]; ok {
			t.Errorf("%q has an original", body)
		}
	}
}

func TestMalformedBodiesAreCutAndMadeValidUTF8(t *testing.T) {
	lines := build(t, raw("ab\xffcd"))
	if lines[0]["malformed"] != "ab\ufffdcd" {
		t.Fatalf("%q", lines[0]["malformed"])
	}
	it := raw(strings.Repeat("x", 20000))
	it.at = at
	b := lineBuilder{maxMalformed: 100}
	var doc map[string]any
	_ = json.Unmarshal(b.lines(&it, nil)[0], &doc)
	if doc["malformed"] != strings.Repeat("x", 100) {
		t.Fatalf("not cut: %d", len(doc["malformed"].(string)))
	}
}

func TestSkipAndIngestError(t *testing.T) {
	it := raw(`{"a": 1}`)
	it.skip = "bot"
	if l := build(t, it)[0]; l["skip"] != "bot" || l["original"] == nil {
		t.Fatalf("%v", l)
	}
	it = raw(`{"a": 1}`)
	it.errorText = "bad api key"
	if l := build(t, it)[0]; l["malformed"] != `{"a": 1}` || l["error"] != "bad api key" {
		t.Fatalf("%v", l)
	}
}

func TestDestinationEntries(t *testing.T) {
	it := item{kind: kindDestination, id: "pg", body: []byte("{\"a\":\n 2}"), errorText: "refused",
		extra: &extra{tokenID: "js.key"}}
	l := build(t, it)[0]
	if l["namespace"] != "destination" || l["error"] != "refused" || l["token_id"] != "js.key" {
		t.Fatalf("%v", l)
	}
	if o, ok := l["original"].(map[string]any); !ok || o["a"] != 2.0 {
		t.Fatalf("%v", l)
	}
	it = item{kind: kindDestination, id: "pg", body: []byte("not json"), skip: "filtered", extra: &extra{}}
	if l := build(t, it)[0]; l["original"] != "not json" || l["skip"] != "filtered" {
		t.Fatalf("%v", l)
	}
	it = item{kind: kindDestination, id: "pg", body: []byte(`{}`), encoded: true,
		extra: &extra{success: []byte(`{"table":"t"}`), successOK: true, successJS: true}}
	if l := build(t, it)[0]; l["success"].(map[string]any)["table"] != "t" {
		t.Fatalf("%v", l)
	}
}

func TestQuotingMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "quote\" back\\slash", "ctl\x00\x01\x1f\t\n\r", "é ünï 日本", "bad\xffutf8"} {
		got := appendQuoted(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q: %q != %q", s, back, wantBack)
		}
	}
}

func TestACaptureTagIsOnEveryLineOfItsCallOnly(t *testing.T) {
	tagged := raw(`[{"a": 1}, 2]`)
	tagged.marked(Mark{Capture: "run \"42\""})
	lines := build(t, tagged)
	if len(lines) != 2 || lines[0]["capture"] != "run \"42\"" || lines[1]["capture"] != "run \"42\"" {
		t.Fatalf("%v", lines)
	}
	dest := item{kind: kindDestination, id: "pg", body: []byte(`{"n":1}`), errorText: "down",
		extra: &extra{capture: "run-1"}}
	if l := build(t, dest); l[0]["capture"] != "run-1" || l[0]["error"] != "down" {
		t.Fatalf("%v", l)
	}
	// The builder is reused: the next, untagged, item carries no tag.
	b := lineBuilder{maxMalformed: 10000}
	b.lines(&tagged, nil)
	plain := raw(`{"b": 2}`)
	if line := string(b.lines(&plain, nil)[0]); strings.Contains(line, "capture") {
		t.Fatalf("%s", line)
	}
}

func vouched(body string) item {
	it := raw(body)
	it.marked(Mark{Parsed: true})
	return it
}

func TestAVouchedObjectIsSentAsItIsOnOneLine(t *testing.T) {
	body := "\n  {\r\n  \"event_type\": \"pageview\",\n  \"nested\": {\"a\": [1, 2]}\n}\n\n"
	b := lineBuilder{maxMalformed: 10000}
	it := vouched(body)
	it.skip = "bot"
	lines := b.lines(&it, nil)
	want := `{"namespace":"token","id":"js.key","original":{    "event_type": "pageview",   "nested": {"a": [1, 2]} },"skip":"bot"}`
	if len(lines) != 1 || string(lines[0]) != want {
		t.Fatalf("%q", lines)
	}
	l := build(t, vouched(body))[0]
	if o := l["original"].(map[string]any); o["event_type"] != "pageview" || l["timestamp"] == nil {
		t.Fatalf("%v", l)
	}
}

func TestAVouchedArrayOrOtherBodyIsStillSplitAndChecked(t *testing.T) {
	lines := build(t, vouched("\n[{\"a\": 1},\n 2]"))
	if len(lines) != 2 || lines[0]["original"] == nil || lines[1]["error"] != "array element 1 is a number, not an object" {
		t.Fatalf("%v", lines)
	}
	if l := build(t, vouched(`"text"`)); len(l) != 1 || l[0]["malformed"] != `"text"` {
		t.Fatalf("%v", l)
	}
	it := vouched(`{"a": 1}`)
	it.errorText = "bad api key"
	if l := build(t, it)[0]; l["malformed"] != `{"a": 1}` || l["error"] != "bad api key" {
		t.Fatalf("%v", l)
	}
}

func TestABrokenPromiseIsSentUncheckedOnOneLine(t *testing.T) {
	b := lineBuilder{maxMalformed: 10000}
	it := vouched("{\"broken\n")
	lines := b.lines(&it, nil)
	if len(lines) != 1 || string(lines[0]) != `{"namespace":"token","id":"js.key","original":{"broken}` {
		t.Fatalf("%q", lines)
	}
}

func TestTheItemStaysAt96Bytes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("96 bytes on a 64-bit platform")
	}
	if n := unsafe.Sizeof(item{}); n != 96 {
		t.Fatalf("%d bytes", n)
	}
}
