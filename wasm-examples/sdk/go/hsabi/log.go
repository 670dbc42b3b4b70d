package hsabi

import "fmt"

// Level is the level of a log line.
type Level int32

// Log levels of hs.log.
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Log writes msg to the host's log with the stage name and snapshot. The
// host keeps at most 20 lines per call (longer lines are cut at 1 KiB) and
// counts the lines it drops: log what matters, not every row.
func Log(level Level, msg string) { hostLog(level, msg) }

// Logf formats and logs a line; see Log.
func Logf(level Level, format string, args ...any) { hostLog(level, fmt.Sprintf(format, args...)) }
