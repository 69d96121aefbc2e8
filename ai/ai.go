// Package ai runs the AI operations that credits charge for, behind one small
// Provider interface (demo, openai), and the Gateway that keeps the seed's
// promises: no credits, no operation; no success, no charge; no partial
// results. Hold the cost, run the operation with a deadline, capture on
// success, release on failure.
package ai

import (
	"context"
	"fmt"
)

// Kind is what an operation does, whatever its id in the catalog.
type Kind int

// Kinds of operations.
const (
	KindRewrite Kind = iota + 1 // rewrite Text following Prompt
	KindSection                 // write a page section's text from Prompt
	KindImage                   // generate a Width×Height image from Prompt
	KindAvatar                  // pick an avatar from the built-in library
)

// Task is one operation to run.
type Task struct {
	Operation string // catalog id, for logs and labels
	Kind      Kind
	Prompt    string
	Text      string
	Width     int // images
	Height    int
}

// Image is a generated image.
type Image struct {
	MimeType   string `json:"mime_type"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	DataBase64 string `json:"data_base64"`
}

// Avatar names a library avatar.
type Avatar struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Result is an operation's whole output: text operations fill Text, images
// Image, avatar selection Avatar and Image. Provider labels who made it.
type Result struct {
	Text     string  `json:"text,omitempty"`
	Image    *Image  `json:"image,omitempty"`
	Avatar   *Avatar `json:"avatar,omitempty"`
	Provider string  `json:"provider"`
}

// Provider runs operations. Run returns the whole result or an error, never
// a partial result, and gives up when ctx ends.
type Provider interface {
	Name() string
	Run(ctx context.Context, t Task) (Result, error)
}

// Error is a provider failure. Its message is safe to log (it never holds
// the provider's API key) but not shown to clients.
type Error struct {
	Provider string
	Op       string
	Reason   string
	Err      error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s %s: %s: %v", e.Provider, e.Op, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s %s: %s", e.Provider, e.Op, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Limits on what a request may send and a provider may answer.
const (
	MaxPromptChars = 4000
	MaxTextChars   = 20000
	MaxResultChars = 100_000
	MaxImageBytes  = 32 << 20
)
