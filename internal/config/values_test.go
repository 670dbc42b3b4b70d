package config

import (
	"log/slog"
	"math"
	"testing"
	"time"
)

func TestParseBool(t *testing.T) {
	tests := []struct {
		in   string
		want bool
		ok   bool
	}{
		{"1", true, true}, {"yes", true, true}, {"true", true, true}, {"on", true, true},
		{"0", false, true}, {"no", false, true}, {"false", false, true}, {"off", false, true},
		{"On", true, true}, {"NO", false, true}, {"TRUE", true, true}, {"oFF", false, true}, {"Yes", true, true},
		{"", false, false}, {"2", false, false}, {"y", false, false}, {"t", false, false},
		{"enabled", false, false}, {" true", false, false},
	}
	for _, tt := range tests {
		got, err := ParseBool(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseBool(%q) = %v, %v, want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"-1", -1, true}, {"+7", 7, true},
		{" 8 ", 8, true}, {"\n4", 4, true}, {"007", 7, true},
		{"1_000", 1000, true}, {"6_291_456", 6291456, true},
		{"_1", 0, false}, {"1_", 0, false}, {"1__0", 0, false}, {"+_1", 0, false},
		{"1.0", 0, false}, {"0x10", 0, false}, {"1e3", 0, false}, {"", 0, false}, {"ten", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseInt(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseInt(%q) = %v, %v, want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseFloat(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.1", 0.1, true}, {"1", 1, true}, {"1e-1", 0.1, true}, {"1E1", 10, true},
		{".5", 0.5, true}, {"5.", 5, true}, {"-2.5", -2.5, true}, {"+3", 3, true},
		{" 1.8 ", 1.8, true}, {"1_0.5", 10.5, true}, {"1e1_0", 1e10, true},
		{"inf", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true}, {"1e400", math.Inf(1), true},
		{"1_.5", 0, false}, {"_1", 0, false}, {"0x1p3", 0, false}, {"1,5", 0, false},
		{"", 0, false}, {".", 0, false}, {"e5", 0, false}, {"1e", 0, false}, {"+-1", 0, false},
		{"one", 0, false}, {"--inf", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseFloat(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFloat(%q) = %v, %v, want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if got, err := ParseFloat("-NaN"); err != nil || !math.IsNaN(got) {
		t.Errorf("ParseFloat(%q) = %v, %v, want NaN", "-NaN", got, err)
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0.1", 100 * time.Millisecond, true},
		{"1", time.Second, true},
		{"1e-1", 100 * time.Millisecond, true},
		{"1.8", 1800 * time.Millisecond, true},
		{"0", 0, true},
		{"-0.5", -500 * time.Millisecond, true}, // range is checked by the settings
		{"inf", 0, false},
		{"nan", 0, false},
		{"1e12", 0, false},
		{"1s", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSeconds(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSeconds(%q) = %v, %v, want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
		ok   bool
	}{
		{"debug", slog.LevelDebug, true}, {"INFO", slog.LevelInfo, true}, {"Warning", slog.LevelWarn, true},
		{"error", slog.LevelError, true}, {"CRITICAL", LevelCritical, true},
		{"warn", slog.LevelWarn, true}, {"fatal", LevelCritical, true}, {"notset", slog.LevelDebug, true},
		{"verbose", 0, false}, {"", 0, false}, {" info", 0, false}, {"10", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v, want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
