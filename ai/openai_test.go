package ai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
)

const (
	// A distinctive key: no error message may ever contain it.
	testOpenAIKey   = "sk-test-LEAKCHECK-7f3a9c1e5b2d4a60"
	testTextModel   = "test-text-model"
	testImageModel  = "test-image-model"
	partialMarker   = "PARTIAL-OUTPUT-MUST-NOT-LEAK"
	openAIKeyInBody = "Incorrect API key provided: " + testOpenAIKey
)

var (
	pngMu    sync.Mutex
	pngCache = map[[2]int][]byte{}
)

// testPNG returns a real w×h PNG: a two-colour paletted image with a
// diagonal, which compresses to a few kilobytes even at 2048×2048.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	pngMu.Lock()
	defer pngMu.Unlock()
	if b, ok := pngCache[[2]int{w, h}]; ok {
		return b
	}
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.White, color.Black})
	for i := 0; i < min(w, h); i++ {
		img.SetColorIndex(i, i, 1)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatalf("encode png: %v", err)
	}
	pngCache[[2]int{w, h}] = buf.Bytes()
	return buf.Bytes()
}

// reply answers one request the fake server has already checked; n counts
// requests from 1.
type reply func(t *testing.T, w http.ResponseWriter, r *http.Request, n int)

var sizeRE = regexp.MustCompile(`^[0-9]+x[0-9]+$`)

// newFakeOpenAI starts an OpenAI-compatible server on a real local listener
// under /v1. It checks each request like the real API would (method, path,
// bearer key, JSON body) and lets answer write the response.
func newFakeOpenAI(t *testing.T, answer reply, inspect func(t *testing.T, path string, body map[string]any)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(hits.Add(1))
		bad := func(format string, args ...any) {
			t.Errorf("fake openai: "+format, args...)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error","code":null}}`, fmt.Sprintf(format, args...))
		}
		if r.Method != http.MethodPost {
			bad("method %s, want POST", r.Method)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+testOpenAIKey {
			bad("Authorization %q", got)
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			bad("Content-Type %q", ct)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			bad("body is not JSON: %v", err)
			return
		}
		switch r.URL.Path {
		case "/v1/chat/completions":
			if body["model"] != testTextModel {
				bad("model %v", body["model"])
				return
			}
			if s, ok := body["stream"]; ok && s != false {
				bad("stream %v", s)
				return
			}
			msgs, _ := body["messages"].([]any)
			if len(msgs) != 2 {
				bad("messages %v", body["messages"])
				return
			}
			for i, role := range []string{"system", "user"} {
				m, _ := msgs[i].(map[string]any)
				if m["role"] != role {
					bad("messages[%d].role %v, want %s", i, m["role"], role)
					return
				}
				if c, _ := m["content"].(string); strings.TrimSpace(c) == "" {
					bad("messages[%d].content %v", i, m["content"])
					return
				}
			}
		case "/v1/images/generations":
			if body["model"] != testImageModel {
				bad("model %v", body["model"])
				return
			}
			if p, _ := body["prompt"].(string); strings.TrimSpace(p) == "" {
				bad("prompt %v", body["prompt"])
				return
			}
			if body["n"] != float64(1) {
				bad("n %v", body["n"])
				return
			}
			if s, _ := body["size"].(string); !sizeRE.MatchString(s) {
				bad("size %v", body["size"])
				return
			}
			if body["response_format"] != "b64_json" {
				bad("response_format %v", body["response_format"])
				return
			}
		default:
			bad("path %s", r.URL.Path)
			return
		}
		if inspect != nil {
			inspect(t, r.URL.Path, body)
		}
		answer(t, w, r, n)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func newTestOpenAI(t *testing.T, baseURL string, maxRetries int) *OpenAI {
	t.Helper()
	p, err := NewOpenAI(OpenAIConfig{
		BaseURL:    baseURL,
		APIKey:     testOpenAIKey,
		TextModel:  testTextModel,
		ImageModel: testImageModel,
		MaxRetries: maxRetries,
	})
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func chatAnswer(content, finish string) reply {
	return func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, map[string]any{
			"id":      "chatcmpl-test",
			"object":  "chat.completion",
			"created": 1700000000,
			"model":   testTextModel,
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": content, "refusal": nil},
				"logprobs":      nil,
				"finish_reason": finish,
			}},
			"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
		})
	}
}

func imageAnswer(b64 string) reply {
	return func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, map[string]any{
			"created": 1700000000,
			"data":    []any{map[string]any{"b64_json": b64}},
		})
	}
}

func pngAnswer(w, h int) reply {
	return func(t *testing.T, rw http.ResponseWriter, r *http.Request, n int) {
		imageAnswer(base64.StdEncoding.EncodeToString(testPNG(t, w, h)))(t, rw, r, n)
	}
}

// apiError answers like the real API does on errors; its message echoes the
// key (the real one echoes a masked key) to prove it is never passed on.
func apiError(status int, code string, header http.Header) reply {
	return func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		for k, v := range header {
			w.Header()[k] = v
		}
		writeJSON(w, status, map[string]any{"error": map[string]any{
			"message": openAIKeyInBody, "type": "server_error", "param": nil, "code": code,
		}})
	}
}

func raw(status int, contentType, body string) reply {
	return func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// slow answers after 2s, or when the client goes away.
func slow(inner reply) reply {
	return func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		inner(t, w, r, n)
	}
}

// streamed answers with server-sent events though no stream was asked for.
func streamed(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, delta := range []string{partialMarker, " and more", ""} {
		chunk := map[string]any{
			"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000, "model": testTextModel,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": delta}, "finish_reason": nil}},
		}
		b, _ := json.Marshal(chunk)
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
		w.(http.Flusher).Flush()
	}
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
}

// truncated promises more body than it writes, then drops the connection.
func truncated(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
	body := `{"id":"chatcmpl-test","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` + partialMarker
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "4096")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body))
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

// hangUp drops the connection without answering.
func hangUp(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

var (
	rewriteTask = Task{Operation: "rewrite", Kind: KindRewrite, Prompt: "Make it formal", Text: "hey, we ship stuff fast"}
	sectionTask = Task{Operation: "section", Kind: KindSection, Prompt: "An about-us section for a bakery"}
	image1kTask = Task{Operation: "image_1k", Kind: KindImage, Prompt: "A loaf of bread", Width: 1024, Height: 1024}
	image2kTask = Task{Operation: "image_2k", Kind: KindImage, Prompt: "A loaf of bread", Width: 2048, Height: 2048}
)

type openAICase struct {
	name       string
	task       Task
	answer     reply
	inspect    func(t *testing.T, path string, body map[string]any)
	maxRetries int
	timeout    time.Duration // ctx deadline, if any
	canceled   bool          // ctx canceled before the call
	closed     bool          // the server is gone before the call

	wantText   string // success, text
	wantImage  [2]int // success, image size
	wantReason string // failure: part of Reason
	wantIs     error  // failure: errors.Is(err, wantIs)
	wantHits   int    // requests the server saw (-1: do not check)
}

func TestOpenAIRun(t *testing.T) {
	t.Parallel()
	tooLong := strings.Repeat("a", MaxResultChars+1)
	huge := strings.Repeat("b", int(textBodyLimit)+1)
	png2k := testPNG(t, 2048, 2048)
	cases := []openAICase{
		// Successes.
		{name: "rewrite", task: rewriteTask, answer: chatAnswer("  We deliver promptly.\n", "stop"), wantText: "We deliver promptly.", wantHits: 1,
			inspect: func(t *testing.T, path string, body map[string]any) {
				msgs := body["messages"].([]any)
				sys := msgs[0].(map[string]any)["content"].(string)
				user := msgs[1].(map[string]any)["content"].(string)
				if !strings.Contains(sys, "only the rewritten text") {
					t.Errorf("system message %q", sys)
				}
				if !strings.Contains(user, "Make it formal") || !strings.Contains(user, "hey, we ship stuff fast") {
					t.Errorf("user message %q", user)
				}
			}},
		{name: "rewrite default instruction", task: Task{Operation: "rewrite", Kind: KindRewrite, Text: "some text"}, answer: chatAnswer("Some text.", "stop"), wantText: "Some text.", wantHits: 1,
			inspect: func(t *testing.T, path string, body map[string]any) {
				user := body["messages"].([]any)[1].(map[string]any)["content"].(string)
				if !strings.Contains(user, "Improve this text") || !strings.Contains(user, "some text") {
					t.Errorf("user message %q", user)
				}
			}},
		{name: "section", task: sectionTask, answer: chatAnswer("We bake every morning.", "stop"), wantText: "We bake every morning.", wantHits: 1,
			inspect: func(t *testing.T, path string, body map[string]any) {
				user := body["messages"].([]any)[1].(map[string]any)["content"].(string)
				if user != sectionTask.Prompt {
					t.Errorf("user message %q", user)
				}
			}},
		{name: "image_1k", task: image1kTask, answer: pngAnswer(1024, 1024), wantImage: [2]int{1024, 1024}, wantHits: 1,
			inspect: func(t *testing.T, path string, body map[string]any) {
				if body["size"] != "1024x1024" || body["prompt"] != image1kTask.Prompt {
					t.Errorf("size %v prompt %v", body["size"], body["prompt"])
				}
			}},
		{name: "image_2k", task: image2kTask, answer: pngAnswer(2048, 2048), wantImage: [2]int{2048, 2048}, wantHits: 1,
			inspect: func(t *testing.T, path string, body map[string]any) {
				if body["size"] != "2048x2048" {
					t.Errorf("size %v", body["size"])
				}
			}},
		{name: "retry when configured", task: sectionTask, maxRetries: 1, wantText: "second try", wantHits: 2,
			answer: func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					apiError(http.StatusInternalServerError, "server_error", http.Header{"Retry-After-Ms": {"1"}})(t, w, r, n)
					return
				}
				chatAnswer("second try", "stop")(t, w, r, n)
			}},

		// HTTP errors: one request only (MaxRetries defaults to 0).
		{name: "500", task: rewriteTask, answer: apiError(http.StatusInternalServerError, "server_error", nil), wantReason: "status 500 server_error", wantHits: 1},
		{name: "429 with Retry-After", task: rewriteTask, answer: apiError(http.StatusTooManyRequests, "rate_limit_exceeded", http.Header{"Retry-After": {"1"}}), wantReason: "status 429 rate_limit_exceeded", wantHits: 1},
		{name: "401 echoing the key", task: image1kTask, answer: apiError(http.StatusUnauthorized, "invalid_api_key", nil), wantReason: "status 401 invalid_api_key", wantHits: 1},
		{name: "502 html", task: sectionTask, answer: raw(http.StatusBadGateway, "text/html", "<html>bad gateway "+testOpenAIKey+"</html>"), wantReason: "502", wantHits: 1},

		// Bad answers.
		{name: "malformed JSON", task: rewriteTask, answer: raw(http.StatusOK, "application/json", `{"id":"x","choices":[{"message":{"content":"`+partialMarker), wantReason: "malformed", wantHits: 1},
		{name: "empty body", task: sectionTask, answer: raw(http.StatusOK, "application/json", ""), wantReason: "malformed", wantHits: 1},
		{name: "streamed answer", task: rewriteTask, answer: streamed, wantReason: "malformed", wantHits: 1},
		{name: "streamed answer labelled JSON", task: rewriteTask, answer: raw(http.StatusOK, "application/json", `data: {"choices":[{"delta":{"content":"`+partialMarker+`"}}]}`+"\n\n"), wantReason: "malformed", wantHits: 1},
		{name: "truncated body", task: rewriteTask, answer: truncated, wantReason: "reading response", wantHits: 1},
		{name: "connection dropped", task: sectionTask, answer: hangUp, wantReason: "request failed", wantHits: 1},
		{name: "server gone", task: sectionTask, answer: hangUp, closed: true, wantReason: "request failed", wantHits: -1},
		{name: "finish_reason length", task: rewriteTask, answer: chatAnswer(partialMarker, "length"), wantReason: "truncated", wantHits: 1},
		{name: "finish_reason content_filter", task: sectionTask, answer: chatAnswer(partialMarker, "content_filter"), wantReason: "content_filter", wantHits: 1},
		{name: "finish_reason missing", task: sectionTask, answer: chatAnswer(partialMarker, ""), wantReason: "no finish_reason", wantHits: 1},
		{name: "no choices", task: sectionTask, answer: raw(http.StatusOK, "application/json", `{"id":"x","object":"chat.completion","choices":[]}`), wantReason: "no choices", wantHits: 1},
		{name: "choices not a list", task: sectionTask, answer: raw(http.StatusOK, "application/json", `{"id":"x","choices":"nope"}`), wantReason: "no choices", wantHits: 1},
		{name: "whitespace content", task: rewriteTask, answer: chatAnswer(" \n\t ", "stop"), wantReason: "empty answer", wantHits: 1},
		{name: "null content", task: rewriteTask, answer: raw(http.StatusOK, "application/json", `{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"no"},"finish_reason":"stop"}]}`), wantReason: "empty answer", wantHits: 1},
		{name: "content over MaxResultChars", task: sectionTask, answer: chatAnswer(tooLong, "stop"), wantReason: "too long", wantHits: 1},
		{name: "body over limit", task: sectionTask, answer: chatAnswer(huge, "stop"), wantReason: "too large", wantHits: 1},

		// Deadlines.
		{name: "slow answer past the deadline", task: rewriteTask, answer: slow(chatAnswer(partialMarker, "stop")), timeout: 200 * time.Millisecond, wantReason: "deadline", wantIs: context.DeadlineExceeded, wantHits: 1},
		{name: "slow image past the deadline", task: image2kTask, answer: slow(pngAnswer(2048, 2048)), timeout: 200 * time.Millisecond, wantReason: "deadline", wantIs: context.DeadlineExceeded, wantHits: 1},
		{name: "canceled", task: sectionTask, answer: chatAnswer(partialMarker, "stop"), canceled: true, wantReason: "canceled", wantIs: context.Canceled, wantHits: -1},

		// Bad images.
		{name: "wrong image size", task: image2kTask, answer: pngAnswer(1024, 1024), wantReason: "wrong image size", wantHits: 1},
		{name: "bad base64", task: image1kTask, answer: imageAnswer("!!!not base64!!!"), wantReason: "base64", wantHits: 1},
		{name: "not a PNG", task: image1kTask, answer: imageAnswer(base64.StdEncoding.EncodeToString([]byte("GIF89a not a png at all"))), wantReason: "not a PNG", wantHits: 1},
		{name: "truncated PNG", task: image2kTask, answer: imageAnswer(base64.StdEncoding.EncodeToString(png2k[:len(png2k)-20])), wantReason: "PNG", wantHits: 1},
		{name: "URL instead of b64_json", task: image1kTask, answer: raw(http.StatusOK, "application/json", `{"created":1,"data":[{"url":"https://example.com/x.png"}]}`), wantReason: "URL", wantHits: 1},
		{name: "no image", task: image1kTask, answer: raw(http.StatusOK, "application/json", `{"created":1,"data":[]}`), wantReason: "no image", wantHits: 1},

		// Not for the provider, or not valid: no request at all.
		{name: "avatar", task: Task{Operation: "avatar", Kind: KindAvatar}, answer: chatAnswer("x", "stop"), wantReason: "avatar selection does not use the provider", wantHits: 0},
		{name: "unknown kind", task: Task{Operation: "mystery", Kind: Kind(99)}, answer: chatAnswer("x", "stop"), wantReason: "unknown operation kind", wantHits: 0},
		{name: "empty text", task: Task{Operation: "rewrite", Kind: KindRewrite, Prompt: "x"}, answer: chatAnswer("x", "stop"), wantReason: "empty text", wantHits: 0},
		{name: "empty prompt", task: Task{Operation: "section", Kind: KindSection}, answer: chatAnswer("x", "stop"), wantReason: "empty prompt", wantHits: 0},
		{name: "no image size", task: Task{Operation: "image_1k", Kind: KindImage, Prompt: "x"}, answer: pngAnswer(1024, 1024), wantReason: "size", wantHits: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, hits := newFakeOpenAI(t, tc.answer, tc.inspect)
			p := newTestOpenAI(t, srv.URL+"/v1", tc.maxRetries)
			if tc.closed {
				srv.Close()
			}
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			if tc.canceled {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
			}
			start := time.Now()
			res, err := p.Run(ctx, tc.task)
			elapsed := time.Since(start)
			if tc.wantHits >= 0 {
				if got := int(hits.Load()); got != tc.wantHits {
					t.Errorf("server saw %d requests, want %d", got, tc.wantHits)
				}
			}
			if tc.timeout > 0 && elapsed > tc.timeout+time.Second {
				t.Errorf("Run took %v with a %v deadline", elapsed, tc.timeout)
			}
			if tc.wantText != "" || tc.wantImage != [2]int{} {
				checkOpenAISuccess(t, tc, res, err)
				return
			}
			checkOpenAIFailure(t, tc.task, res, err, tc.wantReason)
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
		})
	}
}

func checkOpenAISuccess(t *testing.T, tc openAICase, res Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Provider != "openai" {
		t.Errorf("Provider %q", res.Provider)
	}
	if tc.wantText != "" {
		if res.Text != tc.wantText || res.Image != nil || res.Avatar != nil {
			t.Errorf("result %+v, want text %q", res, tc.wantText)
		}
		return
	}
	img := res.Image
	if img == nil || res.Text != "" || res.Avatar != nil {
		t.Fatalf("result %+v, want an image", res)
	}
	w, h := tc.wantImage[0], tc.wantImage[1]
	if img.MimeType != "image/png" || img.Width != w || img.Height != h {
		t.Errorf("image %s %dx%d, want image/png %dx%d", img.MimeType, img.Width, img.Height, w, h)
	}
	data, err := base64.StdEncoding.DecodeString(img.DataBase64)
	if err != nil {
		t.Fatalf("DataBase64: %v", err)
	}
	if !bytes.Equal(data, testPNG(t, w, h)) {
		t.Errorf("image bytes differ from what the server sent")
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width != w || cfg.Height != h {
		t.Errorf("decoded PNG %dx%d (%v), want %dx%d", cfg.Width, cfg.Height, err, w, h)
	}
}

// checkOpenAIFailure checks a failure's shape: a zero Result, a *Error for
// this operation, and no key, no partial output and no *openai.Error (whose
// Request holds the Authorization header) anywhere in it.
func checkOpenAIFailure(t *testing.T, task Task, res Result, err error, wantReason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Run succeeded with %+v, want an error", res)
	}
	if res != (Result{}) {
		t.Errorf("Result %+v with error %v, want the zero Result", res, err)
	}
	t.Logf("error: %v", err)
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %T %v is not an *ai.Error", err, err)
	}
	if ae.Provider != "openai" || ae.Op != task.Operation || ae.Reason == "" {
		t.Errorf("Error{Provider:%q Op:%q Reason:%q}, want openai %q and a reason", ae.Provider, ae.Op, ae.Reason, task.Operation)
	}
	if !strings.Contains(ae.Reason, wantReason) {
		t.Errorf("Reason %q, want it to contain %q", ae.Reason, wantReason)
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		t.Errorf("error chain exposes *openai.Error (with the request's headers)")
	}
	texts := []string{err.Error(), fmt.Sprintf("%v|%+v|%#v|%q", err, err, err, err)}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error(), fmt.Sprintf("%+v", e))
	}
	for _, s := range texts {
		if strings.Contains(s, testOpenAIKey) {
			t.Errorf("error text holds the API key: %s", s)
		}
		if strings.Contains(s, partialMarker) {
			t.Errorf("error text holds partial output: %s", s)
		}
	}
}

// TestOpenAIConcurrent shares one provider between concurrent calls.
func TestOpenAIConcurrent(t *testing.T) {
	t.Parallel()
	srv, hits := newFakeOpenAI(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/v1/images/generations" {
			pngAnswer(1024, 1024)(t, w, r, n)
			return
		}
		chatAnswer("ok", "stop")(t, w, r, n)
	}, nil)
	p := newTestOpenAI(t, srv.URL+"/v1", 0)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			task := sectionTask
			if i%4 == 0 {
				task = image1kTask
			}
			if _, err := p.Run(t.Context(), task); err != nil {
				t.Errorf("Run %s: %v", task.Operation, err)
			}
		})
	}
	wg.Wait()
	if got := hits.Load(); got != 16 {
		t.Errorf("server saw %d requests, want 16", got)
	}
}

// TestOpenAIIgnoresOpenAIEnvironment: the client library's NewClient reads
// OPENAI_* variables; the provider must not send them to the configured
// base URL. Not parallel: it sets the environment.
func TestOpenAIIgnoresOpenAIEnvironment(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/wrong")
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	t.Setenv("OPENAI_ORG_ID", "org-from-env")
	t.Setenv("OPENAI_PROJECT_ID", "proj-from-env")
	t.Setenv("OPENAI_CUSTOM_HEADERS", "X-From-Env: yes")
	srv, hits := newFakeOpenAI(t, func(t *testing.T, w http.ResponseWriter, r *http.Request, n int) {
		for _, h := range []string{"OpenAI-Organization", "OpenAI-Project", "X-From-Env"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("request carries %s: %q from the environment", h, v)
			}
		}
		chatAnswer("ok", "stop")(t, w, r, n)
	}, nil)
	p := newTestOpenAI(t, srv.URL+"/v1", 0)
	if _, err := p.Run(t.Context(), sectionTask); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("server saw %d requests, want 1", hits.Load())
	}
}

func TestNewOpenAIConfig(t *testing.T) {
	t.Parallel()
	good := OpenAIConfig{BaseURL: "https://api.example.com/v1", APIKey: testOpenAIKey, TextModel: "t", ImageModel: "i"}
	cases := []struct {
		name string
		edit func(*OpenAIConfig)
		want string // "" = valid
	}{
		{"valid", func(*OpenAIConfig) {}, ""},
		{"no base URL", func(c *OpenAIConfig) { c.BaseURL = "" }, "CREDITS_AI_BASE_URL"},
		{"blank base URL", func(c *OpenAIConfig) { c.BaseURL = "  " }, "CREDITS_AI_BASE_URL"},
		{"relative base URL", func(c *OpenAIConfig) { c.BaseURL = "api.example.com/v1" }, "CREDITS_AI_BASE_URL"},
		{"base URL with the key in it", func(c *OpenAIConfig) { c.BaseURL = "ftp://" + testOpenAIKey + "@x" }, "CREDITS_AI_BASE_URL"},
		{"no API key", func(c *OpenAIConfig) { c.APIKey = "" }, "CREDITS_AI_API_KEY"},
		{"no text model", func(c *OpenAIConfig) { c.TextModel = "" }, "CREDITS_AI_TEXT_MODEL"},
		{"no image model", func(c *OpenAIConfig) { c.ImageModel = "" }, "CREDITS_AI_IMAGE_MODEL"},
		{"negative retries", func(c *OpenAIConfig) { c.MaxRetries = -1 }, "MaxRetries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.edit(&cfg)
			p, err := NewOpenAI(cfg)
			if tc.want == "" {
				if err != nil || p == nil || p.Name() != "openai" {
					t.Fatalf("NewOpenAI = %v, %v", p, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewOpenAI succeeded, want an error naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
			if strings.Contains(err.Error(), testOpenAIKey) {
				t.Errorf("error %q holds the API key", err)
			}
		})
	}
}
