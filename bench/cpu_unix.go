//go:build unix

package bench

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used so far,
// or 0 where getrusage is not available. The bench's rows run their clients,
// the server and the engine in this process, so the CPU a row took divided
// by its requests is what one request costs the machine: a figure other
// work on the machine does not skew as it skews wall-clock rates.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
