package main

import (
	"fmt"
	"time"

	"github.com/credits-dev/credits/ai"
)

// AIConfig is the AI provider's configuration, from the environment.
type AIConfig struct {
	Provider   string // demo (default) or openai
	BaseURL    string
	APIKey     string
	TextModel  string
	ImageModel string
	Timeout    time.Duration
}

func (c *AIConfig) parse(getenv func(string) string) error {
	c.Provider = envOr(getenv, "CREDITS_AI_PROVIDER", "demo")
	c.BaseURL = getenv("CREDITS_AI_BASE_URL")
	c.APIKey = getenv("CREDITS_AI_API_KEY")
	c.TextModel = getenv("CREDITS_AI_TEXT_MODEL")
	c.ImageModel = getenv("CREDITS_AI_IMAGE_MODEL")
	c.Timeout = 60 * time.Second
	if v := getenv("CREDITS_AI_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 30*time.Minute {
			return usageError{fmt.Sprintf("CREDITS_AI_TIMEOUT=%q: give a duration like 60s, at most 30m", v)}
		}
		c.Timeout = d
	}
	switch c.Provider {
	case "demo", "openai":
		return nil
	}
	return usageError{fmt.Sprintf("CREDITS_AI_PROVIDER=%q: use demo or openai", c.Provider)}
}

func (c *AIConfig) provider() (ai.Provider, error) {
	if c.Provider == "openai" {
		return ai.NewOpenAI(ai.OpenAIConfig{BaseURL: c.BaseURL, APIKey: c.APIKey, TextModel: c.TextModel, ImageModel: c.ImageModel})
	}
	return ai.Demo{}, nil
}
