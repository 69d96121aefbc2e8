package ai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	_ "image/png" // image.DecodeConfig recognizes PNG
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// OpenAIConfig configures the provider for any OpenAI-compatible API.
type OpenAIConfig struct {
	BaseURL    string // CREDITS_AI_BASE_URL, e.g. https://api.openai.com/v1
	APIKey     string // CREDITS_AI_API_KEY
	TextModel  string // CREDITS_AI_TEXT_MODEL
	ImageModel string // CREDITS_AI_IMAGE_MODEL
	HTTPClient *http.Client
	// MaxRetries is how many times the client library retries a failed
	// request by itself. Default 0: the gateway's caller retries, with its
	// Idempotency-Key.
	MaxRetries int
}

// OpenAI runs operations on an OpenAI-compatible API: text with
// POST {base}/chat/completions, images with POST {base}/images/generations.
type OpenAI struct {
	chat       openai.ChatCompletionService
	images     openai.ImageService
	apiKey     string
	textModel  string
	imageModel string
}

var _ Provider = (*OpenAI)(nil)

// Response body limits: a text answer holds at most MaxResultChars
// characters (a few bytes each, escaped), an image answer at most
// MaxImageBytes of PNG in base64. Larger bodies are cut off and fail.
var (
	textBodyLimit  int64 = 4 << 20
	imageBodyLimit       = int64(base64.StdEncoding.EncodedLen(MaxImageBytes)) + 1<<20
)

// NewOpenAI checks cfg and returns the provider. It never reads OPENAI_*
// environment variables: everything comes from cfg.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	base := strings.TrimSpace(cfg.BaseURL)
	key := strings.TrimSpace(cfg.APIKey)
	textModel := strings.TrimSpace(cfg.TextModel)
	imageModel := strings.TrimSpace(cfg.ImageModel)
	switch {
	case base == "":
		return nil, errors.New("openai: CREDITS_AI_BASE_URL is required")
	case key == "":
		return nil, errors.New("openai: CREDITS_AI_API_KEY is required")
	case textModel == "":
		return nil, errors.New("openai: CREDITS_AI_TEXT_MODEL is required")
	case imageModel == "":
		return nil, errors.New("openai: CREDITS_AI_IMAGE_MODEL is required")
	case cfg.MaxRetries < 0:
		return nil, errors.New("openai: MaxRetries must not be negative")
	}
	// The URL is not echoed back: it might carry credentials.
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("openai: CREDITS_AI_BASE_URL must be an absolute http(s) URL")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{} // no timeout of its own: the caller's ctx bounds each call
	}
	// The services are built directly rather than with openai.NewClient,
	// which would also pick up OPENAI_API_KEY, OPENAI_ORG_ID,
	// OPENAI_CUSTOM_HEADERS, ... from the environment and send them to
	// whatever CREDITS_AI_BASE_URL points at.
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		option.WithAPIKey(key),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(cfg.MaxRetries),
	}
	return &OpenAI{
		chat:       openai.NewChatCompletionService(opts...),
		images:     openai.NewImageService(opts...),
		apiKey:     key,
		textModel:  textModel,
		imageModel: imageModel,
	}, nil
}

// Name labels the provider's results.
func (p *OpenAI) Name() string { return "openai" }

const (
	rewriteSystemPrompt = "You rewrite text. The user gives an instruction and a text. " +
		"Rewrite the text following the instruction, in the text's language unless the instruction says otherwise. " +
		"Answer with only the rewritten text: no preface, no explanation, no quotation marks around it, no Markdown code fences."
	sectionSystemPrompt = "You write the copy of one section of a website, following the user's brief. " +
		"Answer with only the section's text, ready to publish: no preface, no explanation, no Markdown code fences."
	defaultRewriteInstruction = "Improve this text"
)

// Run runs t and returns its whole result, or a *Error and a zero Result.
func (p *OpenAI) Run(ctx context.Context, t Task) (Result, error) {
	switch t.Kind {
	case KindRewrite:
		if strings.TrimSpace(t.Text) == "" {
			return p.fail(t, "empty text", nil)
		}
		if utf8.RuneCountInString(t.Text) > MaxTextChars {
			return p.fail(t, "text too long", nil)
		}
		if utf8.RuneCountInString(t.Prompt) > MaxPromptChars {
			return p.fail(t, "prompt too long", nil)
		}
		instruction := strings.TrimSpace(t.Prompt)
		if instruction == "" {
			instruction = defaultRewriteInstruction
		}
		user := "Instruction: " + instruction + "\n\nText:\n" + t.Text
		return p.runText(ctx, t, rewriteSystemPrompt, user)
	case KindSection:
		if err := checkPrompt(t); err != "" {
			return p.fail(t, err, nil)
		}
		return p.runText(ctx, t, sectionSystemPrompt, t.Prompt)
	case KindImage:
		if err := checkPrompt(t); err != "" {
			return p.fail(t, err, nil)
		}
		if t.Width <= 0 || t.Height <= 0 {
			return p.fail(t, "image size not set", nil)
		}
		return p.runImage(ctx, t)
	case KindAvatar:
		return p.fail(t, "avatar selection does not use the provider", nil)
	default:
		return p.fail(t, fmt.Sprintf("unknown operation kind %d", int(t.Kind)), nil)
	}
}

func checkPrompt(t Task) string {
	switch {
	case strings.TrimSpace(t.Prompt) == "":
		return "empty prompt"
	case utf8.RuneCountInString(t.Prompt) > MaxPromptChars:
		return "prompt too long"
	}
	return ""
}

func (p *OpenAI) runText(ctx context.Context, t Task, system, user string) (Result, error) {
	resp, err := p.chat.New(ctx, openai.ChatCompletionNewParams{
		Model: p.textModel,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(system),
			openai.UserMessage(user),
		},
	}, option.WithMiddleware(limitResponseBody(textBodyLimit)))
	if err != nil {
		return p.requestFailed(ctx, t, err)
	}
	if resp == nil || len(resp.Choices) == 0 {
		return p.fail(t, "no choices in response", nil)
	}
	choice := resp.Choices[0]
	switch choice.FinishReason {
	case "stop":
	case "length":
		return p.fail(t, "truncated answer (finish_reason length)", nil)
	case "":
		return p.fail(t, "no finish_reason", nil)
	default:
		return p.fail(t, "unexpected finish_reason "+safeToken(choice.FinishReason), nil)
	}
	text := strings.TrimSpace(choice.Message.Content)
	if text == "" {
		return p.fail(t, "empty answer", nil)
	}
	if !utf8.ValidString(text) {
		return p.fail(t, "answer is not valid UTF-8", nil)
	}
	if utf8.RuneCountInString(text) > MaxResultChars {
		return p.fail(t, "answer too long", nil)
	}
	return Result{Text: text, Provider: p.Name()}, nil
}

func (p *OpenAI) runImage(ctx context.Context, t Task) (Result, error) {
	params := openai.ImageGenerateParams{
		Prompt: t.Prompt,
		Model:  p.imageModel,
		N:      openai.Int(1),
		// Passed through as is, even when not one of the client's constants.
		Size: openai.ImageGenerateParamsSize(fmt.Sprintf("%dx%d", t.Width, t.Height)),
	}
	// GPT image models always answer base64 and refuse response_format;
	// the others need it to answer base64 rather than a URL.
	if !strings.HasPrefix(p.imageModel, "gpt-image") {
		params.ResponseFormat = openai.ImageGenerateParamsResponseFormatB64JSON
	}
	resp, err := p.images.Generate(ctx, params, option.WithMiddleware(limitResponseBody(imageBodyLimit)))
	if err != nil {
		return p.requestFailed(ctx, t, err)
	}
	if resp == nil || len(resp.Data) == 0 {
		return p.fail(t, "no image in response", nil)
	}
	b64 := resp.Data[0].B64JSON
	if b64 == "" {
		if resp.Data[0].URL != "" {
			return p.fail(t, "image returned as a URL, not b64_json", nil)
		}
		return p.fail(t, "empty image data", nil)
	}
	if len(b64) > base64.StdEncoding.EncodedLen(MaxImageBytes) {
		return p.fail(t, "image too large", nil)
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return p.fail(t, "bad base64 image data", nil)
	}
	if len(data) > MaxImageBytes {
		return p.fail(t, "image too large", nil)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || format != "png" {
		return p.fail(t, "image is not a PNG", nil)
	}
	if cfg.Width != t.Width || cfg.Height != t.Height {
		return p.fail(t, fmt.Sprintf("wrong image size %dx%d, want %dx%d", cfg.Width, cfg.Height, t.Width, t.Height), nil)
	}
	if err := checkPNGChunks(data); err != nil {
		return p.fail(t, "truncated or corrupt PNG", err)
	}
	return Result{
		Image: &Image{
			MimeType:   "image/png",
			Width:      t.Width,
			Height:     t.Height,
			DataBase64: base64.StdEncoding.EncodeToString(data),
		},
		Provider: p.Name(),
	}, nil
}

// checkPNGChunks walks the PNG's chunks, checking each CRC, up to IEND: a
// PNG cut short (whose header still decodes) is not a whole image.
func checkPNGChunks(data []byte) error {
	const signature = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(data, []byte(signature)) {
		return errors.New("no PNG signature")
	}
	b := data[len(signature):]
	for {
		if len(b) < 12 {
			return errors.New("missing IEND chunk")
		}
		n := uint64(binary.BigEndian.Uint32(b[:4]))
		if n > uint64(len(b)-12) {
			return errors.New("chunk runs past the end")
		}
		typ := string(b[4:8])
		if crc32.ChecksumIEEE(b[4:8+n]) != binary.BigEndian.Uint32(b[8+n:12+n]) {
			return errors.New("chunk CRC mismatch")
		}
		b = b[12+n:]
		if typ == "IEND" {
			return nil
		}
	}
}

// requestFailed turns a client library error into a *Error. It keeps
// context errors (so errors.Is(err, context.DeadlineExceeded) holds), drops
// *openai.Error (its Request holds the Authorization header, its body may
// echo the key) for the status code, and scrubs the key from anything else.
func (p *OpenAI) requestFailed(ctx context.Context, t Task, err error) (Result, error) {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return p.fail(t, "deadline exceeded", context.DeadlineExceeded)
		}
		return p.fail(t, "canceled", context.Canceled)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return p.fail(t, "deadline exceeded", context.DeadlineExceeded)
	}
	if errors.Is(err, context.Canceled) {
		return p.fail(t, "canceled", context.Canceled)
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		reason := fmt.Sprintf("status %d", apiErr.StatusCode)
		if code := safeToken(apiErr.Code); code != "" {
			reason += " " + code
		} else if typ := safeToken(apiErr.Type); typ != "" {
			reason += " " + typ
		}
		return p.fail(t, reason, nil)
	}
	if errors.Is(err, errResponseTooLarge) {
		return p.fail(t, "response too large", nil)
	}
	if strings.Contains(err.Error(), "error parsing response json") ||
		strings.Contains(err.Error(), "expected destination type") {
		return p.fail(t, "malformed response", err)
	}
	if strings.Contains(err.Error(), "error reading response body") {
		return p.fail(t, "reading response failed", err)
	}
	return p.fail(t, "request failed", err)
}

// fail returns a zero Result and a *Error whose message never holds the key.
func (p *OpenAI) fail(t Task, reason string, err error) (Result, error) {
	e := &Error{Provider: p.Name(), Op: t.Operation, Reason: p.redact(reason)}
	if err != nil {
		if err == context.DeadlineExceeded || err == context.Canceled {
			e.Err = err
		} else {
			e.Err = &redactedError{msg: p.redact(err.Error()), err: err}
		}
	}
	return Result{}, e
}

func (p *OpenAI) redact(s string) string {
	if p.apiKey == "" {
		return s
	}
	return strings.ReplaceAll(s, p.apiKey, "[redacted]")
}

// redactedError shows a scrubbed message but still unwraps, for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

// safeToken returns s if it looks like an identifier (an error code, a
// finish reason), else "".
func safeToken(s string) string {
	if tokenRE.MatchString(s) {
		return s
	}
	return ""
}

var errResponseTooLarge = errors.New("response body too large")

// limitResponseBody fails reading a response body past limit bytes, before
// the client library buffers all of it.
func limitResponseBody(limit int64) option.Middleware {
	return func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		res, err := next(req)
		if err == nil && res != nil && res.Body != nil {
			res.Body = &limitedBody{rc: res.Body, left: limit}
		}
		return res, err
	}
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		b.left = -1
		return 0, errResponseTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
