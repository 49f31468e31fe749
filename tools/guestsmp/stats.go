package main

import (
	"slices"
	"time"
)

// stats summarises timed samples.
type stats struct {
	median, p90, mean, max time.Duration
	slow                   int // samples of a millisecond or more
}

// summarise sorts ds in place and returns their summary; ds must not be
// empty.
func summarise(ds []time.Duration) stats {
	slices.Sort(ds)
	var sum time.Duration
	s := stats{max: ds[len(ds)-1]}
	for _, d := range ds {
		sum += d
		if d >= time.Millisecond {
			s.slow++
		}
	}
	s.mean = sum / time.Duration(len(ds))
	s.median = percentile(ds, 50)
	s.p90 = percentile(ds, 90)
	return s
}

// percentile is the p-th percentile of the sorted ds, nearest rank.
func percentile(ds []time.Duration, p int) time.Duration {
	i := (len(ds)*p + 99) / 100 // ceil(len*p/100), 1-based
	if i < 1 {
		i = 1
	}
	return ds[i-1]
}

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
