//go:build race

package fallback_test

// raceDetector is true under -race, where every memory access costs
// several times over: rates measured then say nothing about the window.
const raceDetector = true
