package actors

import (
	"strings"
	"testing"
)

// TestPhaseTransitions pins the state machine's diagram (session.go): the
// changes it has, and that enter refuses every other one with a panic that
// names both phases.
func TestPhaseTransitions(t *testing.T) {
	all := []phase{phaseDialing, phaseSetup, phaseLive, phaseRotating, phaseStopping}
	want := map[[2]phase]bool{
		{phaseDialing, phaseSetup}: true, {phaseDialing, phaseDialing}: true,
		{phaseSetup, phaseLive}: true, {phaseSetup, phaseDialing}: true,
		{phaseLive, phaseRotating}: true, {phaseLive, phaseDialing}: true,
		{phaseRotating, phaseLive}: true, {phaseRotating, phaseDialing}: true,
		{phaseDialing, phaseStopping}: true, {phaseSetup, phaseStopping}: true,
		{phaseLive, phaseStopping}: true, {phaseRotating, phaseStopping}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := canEnter(from, to); got != want[[2]phase{from, to}] {
				t.Errorf("canEnter(%v, %v) = %v", from, to, got)
			}
			if want[[2]phase{from, to}] {
				continue
			}
			func() {
				defer func() {
					r := recover()
					if s, _ := r.(string); !strings.Contains(s, from.String()) || !strings.Contains(s, to.String()) {
						t.Errorf("enter %v -> %v: recovered %v, want a panic naming both", from, to, r)
					}
				}()
				a := &clientActor{phase: from}
				a.enter(to)
			}()
		}
	}
	if s := phase(99).String(); s != "phase(99)" {
		t.Errorf("phase(99).String() = %q", s)
	}
}
