package ai

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"time"
	"unicode"
)

// Demo is the offline provider: deterministic, instant, and labelled as demo
// output everywhere it shows. A prompt or text containing "[fail]" makes it
// fail, so the failure path can be shown and tested without a network.
type Demo struct {
	// Delay, if set, is how long each operation takes (it still gives up
	// when ctx ends).
	Delay time.Duration
}

// FailMarker in a prompt or text makes the demo provider fail.
const FailMarker = "[fail]"

// Name is "demo".
func (Demo) Name() string { return "demo" }

// Run makes the demo output of a task.
func (d Demo) Run(ctx context.Context, t Task) (Result, error) {
	if d.Delay > 0 {
		select {
		case <-ctx.Done():
			return Result{}, &Error{Provider: "demo", Op: t.Operation, Reason: "deadline", Err: ctx.Err()}
		case <-time.After(d.Delay):
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, &Error{Provider: "demo", Op: t.Operation, Reason: "cancelled", Err: err}
	}
	if strings.Contains(t.Prompt, FailMarker) || strings.Contains(t.Text, FailMarker) {
		return Result{}, &Error{Provider: "demo", Op: t.Operation, Reason: "asked to fail by " + FailMarker}
	}
	switch t.Kind {
	case KindRewrite:
		return Result{Text: demoRewrite(t.Prompt, t.Text), Provider: "demo"}, nil
	case KindSection:
		return Result{Text: demoSection(t.Prompt), Provider: "demo"}, nil
	case KindImage:
		img, err := demoImage(t.Prompt, t.Width, t.Height)
		if err != nil {
			return Result{}, &Error{Provider: "demo", Op: t.Operation, Reason: "encoding", Err: err}
		}
		return Result{Image: img, Provider: "demo"}, nil
	}
	return Result{}, &Error{Provider: "demo", Op: t.Operation, Reason: "unsupported operation kind"}
}

// demoRewrite tidies the text (spaces, capitals, a final stop) and says what
// a real provider would have done.
func demoRewrite(instruction, text string) string {
	words := strings.Fields(text)
	s := strings.Join(words, " ")
	if s != "" {
		r := []rune(s)
		r[0] = unicode.ToUpper(r[0])
		s = string(r)
		if !strings.ContainsRune(".!?", r[len(r)-1]) {
			s += "."
		}
	}
	if instruction == "" {
		instruction = "improve this text"
	}
	return fmt.Sprintf("[demo rewrite: %s] %s", strings.TrimSpace(instruction), s)
}

func demoSection(prompt string) string {
	topic := strings.TrimSpace(strings.Join(strings.Fields(prompt), " "))
	return fmt.Sprintf("[demo section]\n%s\n\nThis is demo copy for a section about %s. "+
		"A real provider writes the headline, the paragraph and the call to action here; "+
		"the demo provider answers offline so the whole flow can be tried without an API key.",
		titleCase(topic), topic)
}

func titleCase(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
	}
	return strings.Join(words, " ")
}

// demoImage draws a deterministic pattern for the prompt, with a "DEMO"
// banner, as a paletted PNG of the operation's real size (it compresses to a
// few kilobytes).
func demoImage(prompt string, w, h int) (*Image, error) {
	sum := sha256.Sum256([]byte(prompt))
	pal := color.Palette{
		color.RGBA{sum[0], sum[1], sum[2], 255},
		color.RGBA{sum[3], sum[4], sum[5], 255},
		color.RGBA{sum[6] / 2, sum[7] / 2, sum[8] / 2, 255},
		color.RGBA{255, 255, 255, 255},
		color.RGBA{20, 20, 20, 255},
	}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	cell := w / 8
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+w]
		for x := range row {
			row[x] = uint8(((x / cell) + (y / cell) + int(sum[9])) % 3) // checkerboard of three colours
		}
	}
	drawBanner(img, w, h)
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return &Image{MimeType: "image/png", Width: w, Height: h, DataBase64: base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// banner is "DEMO" in a 5×5 pixel font.
var banner = [5]string{
	"###  #### #   #  ### ",
	"#  # #    ## ## #   #",
	"#  # ###  # # # #   #",
	"#  # #    #   # #   #",
	"###  #### #   #  ### ",
}

func drawBanner(img *image.Paletted, w, h int) {
	scale := w / 32
	bw, bh := len(banner[0])*scale, len(banner)*scale
	x0, y0 := (w-bw)/2, (h-bh)/2
	pad := scale
	for y := y0 - pad; y < y0+bh+pad; y++ {
		for x := x0 - pad; x < x0+bw+pad; x++ {
			img.SetColorIndex(x, y, 3)
		}
	}
	for r, line := range banner {
		for c, ch := range line {
			if ch != '#' {
				continue
			}
			for y := 0; y < scale; y++ {
				for x := 0; x < scale; x++ {
					img.SetColorIndex(x0+c*scale+x, y0+r*scale+y, 4)
				}
			}
		}
	}
}
