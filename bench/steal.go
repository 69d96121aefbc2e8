package bench

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// cpuTicks is the machine's CPU time so far, from /proc/stat (Linux; zero
// elsewhere), in clock ticks: all of it, the part the hypervisor gave to
// other guests (steal), and the part this machine spent working (busy: not
// idle, not waiting on a disk, not stolen). On a shared VM the share stolen
// during a row is part of why its rate moves from run to run, and the
// bench prints it beside the row. The busy ticks count what the process's
// own CPU time does not: a database server on the same machine, and the
// kernel's work for the process done on its own threads (the file
// system's journal, interrupts).
type cpuTicks struct{ total, steal, busy uint64 }

// tickDuration is a /proc/stat tick: USER_HZ, 100 a second on every Linux
// architecture Go runs on.
const tickDuration = 10 * time.Millisecond

func machineTicks() cpuTicks {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return parseCPULine(line)
}

// parseCPULine reads /proc/stat's first line: "cpu  user nice system idle
// iowait irq softirq steal guest guest_nice". Guest time is already in
// user and nice, so it is not added again.
func parseCPULine(line []byte) cpuTicks {
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return cpuTicks{}
	}
	var t cpuTicks
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return cpuTicks{}
		}
		t.total += n
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			t.steal = n
		default: // user, nice, system, irq, softirq
			t.busy += n
		}
	}
	return t
}

// since is the ticks from a to t.
func (t cpuTicks) since(a cpuTicks) cpuTicks {
	if t.total < a.total || t.steal < a.steal || t.busy < a.busy {
		return cpuTicks{}
	}
	return cpuTicks{total: t.total - a.total, steal: t.steal - a.steal, busy: t.busy - a.busy}
}
