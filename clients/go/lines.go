package eventscache

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Item kinds in the buffer.
const (
	kindTokenRaw    uint8 = iota // body: the raw request body, classified by the sender
	kindTokenJSON                // body: a JSON object encoded in the call
	kindDestination              // body: original (raw or encoded); success, errorText, skip
	kindFlush                    // a Flush marker: done is closed once everything before it is
)

// item is one call, as buffered (96 bytes besides what it points to).
type item struct {
	kind      uint8
	encoded   bool // body (destination: original) was encoded in the call
	parsed    bool // the caller vouched that the raw body is JSON (Mark.Parsed)
	id        string
	body      []byte
	skip      string
	errorText string
	at        int64 // Unix nanoseconds of the call
	extra     *extra
}

// extra holds what only destination entries, flush markers and tagged events need.
type extra struct {
	success   []byte
	successOK bool
	successJS bool // success was encoded in the call
	tokenID   string
	capture   string        // a test run's tag: the lines' "capture" (never held back)
	done      chan struct{} // a flush marker's
}

func (it *item) size() int {
	n := len(it.id) + len(it.body) + len(it.errorText) + len(it.skip) + 64
	if it.extra != nil {
		n += len(it.extra.success) + len(it.extra.tokenID) + len(it.extra.capture)
	}
	return n
}

// lineBuilder turns buffered items into NDJSON lines of POST /v1/events.
type lineBuilder struct {
	maxMalformed int
	timestamps   bool
	capture      string // the tag of the item being built (its every line carries it)
}

func (b *lineBuilder) lines(it *item, out [][]byte) [][]byte {
	b.capture = ""
	if it.extra != nil {
		b.capture = it.extra.capture
	}
	switch it.kind {
	case kindDestination:
		return append(out, b.destination(it))
	case kindTokenJSON:
		return append(out, b.token(it.id, it.body, it.skip, it.at))
	default:
		return b.tokenRaw(it, out)
	}
}

func (b *lineBuilder) tail(dst []byte, at int64) []byte {
	if b.capture != "" {
		dst = append(dst, `,"capture":`...)
		dst = appendQuoted(dst, b.capture)
	}
	if b.timestamps {
		dst = append(dst, `,"timestamp":"`...)
		dst = time.Unix(0, at).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

func (b *lineBuilder) token(id string, original []byte, skip string, at int64) []byte {
	dst := make([]byte, 0, len(original)+len(id)+96)
	dst = append(dst, `{"namespace":"token","id":`...)
	dst = appendQuoted(dst, id)
	dst = append(dst, `,"original":`...)
	dst = appendOneLine(dst, original)
	if skip != "" {
		dst = append(dst, `,"skip":`...)
		dst = appendQuoted(dst, skip)
	}
	return b.tail(dst, at)
}

func (b *lineBuilder) malformed(id string, body []byte, problem string, at int64) []byte {
	if len(body) > b.maxMalformed {
		body = body[:b.maxMalformed]
	}
	dst := make([]byte, 0, len(body)+len(id)+len(problem)+128)
	dst = append(dst, `{"namespace":"token","id":`...)
	dst = appendQuoted(dst, id)
	dst = append(dst, `,"malformed":`...)
	dst = appendQuotedBytes(dst, body)
	dst = append(dst, `,"error":`...)
	dst = appendQuoted(dst, problem)
	return b.tail(dst, at)
}

// tokenRaw splits a raw body as the sidecar's raw endpoint would: an object is one
// entry, an array one entry per element, anything else one malformed entry. An object
// the caller vouched for (Mark.Parsed) is sent as it is, unchecked: a broken promise
// makes its own line invalid, which the sidecar counts without the others' harm.
func (b *lineBuilder) tokenRaw(it *item, out [][]byte) [][]byte {
	body := it.body
	if it.errorText != "" {
		return append(out, b.malformed(it.id, body, it.errorText, it.at))
	}
	if it.parsed {
		if text := bytes.Trim(body, " \t\r\n"); len(text) > 0 && text[0] == '{' {
			return append(out, b.token(it.id, text, it.skip, it.at))
		}
	}
	if !utf8.Valid(body) {
		return append(out, b.malformed(it.id, body, "invalid JSON: not valid UTF-8", it.at))
	}
	text := bytes.Trim(body, " \t\r\n")
	if len(text) == 0 {
		return append(out, b.malformed(it.id, body, "empty body", it.at))
	}
	if !json.Valid(text) {
		var raw json.RawMessage
		problem := "invalid JSON"
		if err := json.Unmarshal(text, &raw); err != nil {
			problem += ": " + err.Error()
		}
		return append(out, b.malformed(it.id, body, problem, it.at))
	}
	switch text[0] {
	case '{':
		return append(out, b.token(it.id, text, it.skip, it.at))
	case '[':
		var elements []json.RawMessage
		if err := json.Unmarshal(text, &elements); err != nil {
			return append(out, b.malformed(it.id, body, "invalid JSON: "+err.Error(), it.at))
		}
		for n, element := range elements {
			var compact bytes.Buffer
			if json.Compact(&compact, element) == nil {
				element = compact.Bytes()
			}
			if element[0] == '{' {
				out = append(out, b.token(it.id, element, it.skip, it.at))
			} else {
				problem := "array element " + itoa(n) + " is " + kind(element) + ", not an object"
				out = append(out, b.malformed(it.id, element, problem, it.at))
			}
		}
		return out
	default:
		problem := "body is " + kind(text) + ", not an object or an array of objects"
		return append(out, b.malformed(it.id, body, problem, it.at))
	}
}

func (b *lineBuilder) destination(it *item) []byte {
	x := it.extra
	dst := make([]byte, 0, len(it.body)+len(x.success)+len(it.errorText)+len(it.id)+128)
	dst = append(dst, `{"namespace":"destination","id":`...)
	dst = appendQuoted(dst, it.id)
	dst = append(dst, `,"original":`...)
	dst = appendValue(dst, it.body, it.encoded)
	if x.successOK {
		dst = append(dst, `,"success":`...)
		dst = appendValue(dst, x.success, x.successJS)
	}
	if it.errorText != "" {
		dst = append(dst, `,"error":`...)
		dst = appendQuoted(dst, it.errorText)
	}
	if it.skip != "" {
		dst = append(dst, `,"skip":`...)
		dst = appendQuoted(dst, it.skip)
	}
	if x.tokenID != "" {
		dst = append(dst, `,"token_id":`...)
		dst = appendQuoted(dst, x.tokenID)
	}
	return b.tail(dst, it.at)
}

// appendValue writes a destination's original or success: JSON encoded in the call
// as is; raw bytes that hold a JSON object as that object; any other raw bytes as a
// JSON string.
func appendValue(dst, value []byte, encoded bool) []byte {
	if encoded {
		return appendOneLine(dst, value)
	}
	text := bytes.Trim(value, " \t\r\n")
	if len(text) > 0 && text[0] == '{' && utf8.Valid(text) && json.Valid(text) {
		return appendOneLine(dst, text)
	}
	return appendQuotedBytes(dst, value)
}

// appendOneLine appends valid JSON text; raw newlines in it can only be whitespace.
func appendOneLine(dst, text []byte) []byte {
	start := len(dst)
	dst = append(dst, text...)
	if bytes.IndexByte(text, '\n') >= 0 || bytes.IndexByte(text, '\r') >= 0 {
		for i := start; i < len(dst); i++ {
			if dst[i] == '\n' || dst[i] == '\r' {
				dst[i] = ' '
			}
		}
	}
	return dst
}

func kind(text []byte) string {
	switch text[0] {
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '{':
		return "an object"
	default:
		return "a number"
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return string(buf[i:])
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			dst = appendASCII(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// appendQuotedBytes is appendQuoted for bytes.
func appendQuotedBytes(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			dst = appendASCII(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func appendASCII(dst []byte, c byte) []byte {
	switch {
	case c == '"' || c == '\\':
		return append(dst, '\\', c)
	case c >= 0x20:
		return append(dst, c)
	case c == '\n':
		return append(dst, '\\', 'n')
	case c == '\r':
		return append(dst, '\\', 'r')
	case c == '\t':
		return append(dst, '\\', 't')
	default:
		return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
	}
}
