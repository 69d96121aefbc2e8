package testserver

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// NewRequest makes the request Call sends, for tests that send it
// themselves (concurrently, or to a server that may not answer).
func NewRequest(t testing.TB, method, url, bearer, body string, hdr ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// Answer is an HTTP answer, read whole.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

// Call makes one request and reads its answer: body is JSON text ("" for
// none), bearer the Authorization token ("" for none), hdr header name,
// value pairs.
func Call(t testing.TB, method, url, bearer, body string, hdr ...string) Answer {
	t.Helper()
	req := NewRequest(t, method, url, bearer, body, hdr...)
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return Answer{Status: res.StatusCode, Header: res.Header, Body: b}
}
