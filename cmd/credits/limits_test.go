package main

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The abuse-limit flags and their environment variables, defaults included.
func TestServeLimitFlags(t *testing.T) {
	t.Parallel()
	def := Limits{Rate: 1000, Burst: 2000, MaxStreams: 5000, StreamEvents: 2000, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	with := func(f func(*Limits)) Limits { l := def; f(&l); return l }
	tests := []struct {
		name string
		args []string
		env  env
		want Limits
		err  string // part of the usage error, "" for none
	}{
		{name: "defaults", want: def},
		{name: "off", env: env{"CREDITS_RATE_LIMIT": "0"}, want: with(func(l *Limits) { l.Rate, l.Burst = 0, 1 })},
		{name: "off by flag", args: []string{"--rate-limit", "off"}, want: with(func(l *Limits) { l.Rate, l.Burst = 0, 1 })},
		{name: "per second", env: env{"CREDITS_RATE_LIMIT": "100/s"}, want: with(func(l *Limits) { l.Rate, l.Burst = 100, 200 })},
		{name: "per minute", env: env{"CREDITS_RATE_LIMIT": "600/m"}, want: with(func(l *Limits) { l.Rate, l.Burst = 10, 20 })},
		{name: "per hour, burst", env: env{"CREDITS_RATE_LIMIT": "3600/h", "CREDITS_RATE_BURST": "50"}, want: with(func(l *Limits) { l.Rate, l.Burst = 1, 50 })},
		{name: "a slow rate bursts 1", args: []string{"--rate-limit", "1/m"}, want: with(func(l *Limits) { l.Rate, l.Burst = 1.0/60, 1 })},
		{name: "flag over env", args: []string{"--rate-limit", "5/s", "--rate-burst", "7"}, env: env{"CREDITS_RATE_LIMIT": "100/s"}, want: with(func(l *Limits) { l.Rate, l.Burst = 5, 7 })},
		{name: "no stream cap", env: env{"CREDITS_MAX_STREAMS": "0"}, want: with(func(l *Limits) { l.MaxStreams = -1 })},
		{name: "stream cap", args: []string{"--max-streams", "2000"}, want: with(func(l *Limits) { l.MaxStreams = 2000 })},
		{name: "no stream event bound", env: env{"CREDITS_STREAM_EVENTS": "0"}, want: with(func(l *Limits) { l.StreamEvents = -1 })},
		{name: "stream events", args: []string{"--stream-events", "500"}, want: with(func(l *Limits) { l.StreamEvents = 500 })},
		{name: "timeouts", env: env{"CREDITS_READ_HEADER_TIMEOUT": "2s", "CREDITS_READ_TIMEOUT": "1m", "CREDITS_WRITE_TIMEOUT": "5s", "CREDITS_IDLE_TIMEOUT": "1h"},
			want: with(func(l *Limits) {
				l.ReadHeaderTimeout, l.ReadTimeout, l.WriteTimeout, l.IdleTimeout = 2*time.Second, time.Minute, 5*time.Second, time.Hour
			})},
		{name: "timeout flag", args: []string{"--write-timeout", "250ms"}, want: with(func(l *Limits) { l.WriteTimeout = 250 * time.Millisecond })},

		{name: "no unit", env: env{"CREDITS_RATE_LIMIT": "100"}, err: "CREDITS_RATE_LIMIT"},
		{name: "bad unit", env: env{"CREDITS_RATE_LIMIT": "100/d"}, err: "unknown unit"},
		{name: "negative rate", args: []string{"--rate-limit", "-1/s"}, err: "--rate-limit"},
		{name: "zero count", args: []string{"--rate-limit", "0/s"}, err: "--rate-limit"},
		{name: "NaN", args: []string{"--rate-limit", "NaN/s"}, err: "--rate-limit"},
		{name: "bad burst", env: env{"CREDITS_RATE_BURST": "0"}, err: "CREDITS_RATE_BURST"},
		{name: "bad streams", env: env{"CREDITS_MAX_STREAMS": "-1"}, err: "CREDITS_MAX_STREAMS"},
		{name: "bad stream events", args: []string{"--stream-events", "lots"}, err: "--stream-events"},
		{name: "zero timeout", env: env{"CREDITS_IDLE_TIMEOUT": "0"}, err: "CREDITS_IDLE_TIMEOUT"},
		{name: "bad timeout", args: []string{"--read-header-timeout", "soon"}, err: "--read-header-timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := &ServeCommand{Stdout: io.Discard, Stderr: io.Discard}
			err := cmd.ParseFlags(tc.args, tc.env.get)
			if tc.err != "" {
				if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want a usage error mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cmd.Limits, tc.want) {
				t.Fatalf("limits %+v\nwant %+v", cmd.Limits, tc.want)
			}
		})
	}
}

// CREDITS_ADMIN_KEY_PREVIOUS needs CREDITS_ADMIN_KEY_PREVIOUS_UNTIL, an RFC
// 3339 time.
func TestServeRotationFlags(t *testing.T) {
	t.Parallel()
	until := "2025-07-01T00:00:00Z"
	for _, tc := range []struct {
		name string
		env  env
		err  string
	}{
		{"none", env{}, ""},
		{"both", env{"CREDITS_ADMIN_KEY": "new", "CREDITS_ADMIN_KEY_PREVIOUS": "old", "CREDITS_ADMIN_KEY_PREVIOUS_UNTIL": until}, ""},
		{"with an offset", env{"CREDITS_ADMIN_KEY_PREVIOUS": "old", "CREDITS_ADMIN_KEY_PREVIOUS_UNTIL": "2025-07-01T02:00:00+02:00"}, ""},
		{"no expiry", env{"CREDITS_ADMIN_KEY": "new", "CREDITS_ADMIN_KEY_PREVIOUS": "old"}, "needs CREDITS_ADMIN_KEY_PREVIOUS_UNTIL"},
		{"expiry alone", env{"CREDITS_ADMIN_KEY_PREVIOUS_UNTIL": until}, "without CREDITS_ADMIN_KEY_PREVIOUS"},
		{"bad expiry", env{"CREDITS_ADMIN_KEY_PREVIOUS": "old", "CREDITS_ADMIN_KEY_PREVIOUS_UNTIL": "tomorrow"}, "RFC 3339"},
		{"date only", env{"CREDITS_ADMIN_KEY_PREVIOUS": "old", "CREDITS_ADMIN_KEY_PREVIOUS_UNTIL": "2025-07-01"}, "RFC 3339"},
		{"same key", env{"CREDITS_ADMIN_KEY": "k", "CREDITS_ADMIN_KEY_PREVIOUS": "k", "CREDITS_ADMIN_KEY_PREVIOUS_UNTIL": until}, "the same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := &ServeCommand{Stdout: io.Discard, Stderr: io.Discard}
			err := cmd.ParseFlags(nil, tc.env.get)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.env["CREDITS_ADMIN_KEY_PREVIOUS"] != "" && !cmd.PreviousAdminKeyUntil.Equal(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("until %v", cmd.PreviousAdminKeyUntil)
				}
				return
			}
			if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want a usage error mentioning %q", err, tc.err)
			}
		})
	}
}
