package bench

import (
	"bytes"
	"os"
	"strconv"
)

// cpuTicks is the machine's CPU time so far, from /proc/stat (Linux; zero
// elsewhere), in clock ticks: all of it, and the part the hypervisor gave
// to other guests (steal). On a shared VM the share stolen during a row is
// part of why its rate moves from run to run, and the bench prints it
// beside the row.
type cpuTicks struct{ total, steal uint64 }

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
		if i == 7 {
			t.steal = n
		}
	}
	return t
}

// since is the ticks from a to t.
func (t cpuTicks) since(a cpuTicks) cpuTicks {
	if t.total < a.total || t.steal < a.steal {
		return cpuTicks{}
	}
	return cpuTicks{total: t.total - a.total, steal: t.steal - a.steal}
}
