package ai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// GPT image models refuse response_format (they always answer base64); the
// others need it. The request carries it only for the others.
func TestOpenAIResponseFormatByModel(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		model string
		want  bool
	}{{"gpt-image-1", false}, {"dall-e-3", true}} {
		t.Run(tt.model, func(t *testing.T) {
			t.Parallel()
			img, err := demoImage("x", 1024, 1024)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewDecoder(r.Body).Decode(&got)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"created":1,"data":[{"b64_json":%q}]}`, img.DataBase64)
			}))
			defer srv.Close()
			p, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, APIKey: "k", TextModel: "t", ImageModel: tt.model})
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Run(context.Background(), Task{Operation: "image_1k", Kind: KindImage, Prompt: "x", Width: 1024, Height: 1024})
			if err != nil || res.Image == nil || res.Image.Width != 1024 {
				t.Fatalf("run: %+v %v", res, err)
			}
			if _, has := got["response_format"]; has != tt.want {
				t.Fatalf("model %s: response_format sent = %v, want %v (%v)", tt.model, has, tt.want, got)
			}
		})
	}
}
