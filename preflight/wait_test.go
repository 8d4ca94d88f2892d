package preflight

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/ec2ssh/ec2ssh/failure"
)

// fakeClock moves only when slept on.
type fakeClock struct {
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// stateEC2 answers DescribeInstances with one state per poll (the last
// one repeated): an instance state, "notfound" or "denied".
type stateEC2 struct {
	fakeEC2
	states []string
	polls  int
	clock  *fakeClock
	took   time.Duration // each call's time on the clock
}

func (s *stateEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	st := s.states[min(s.polls, len(s.states)-1)]
	s.polls++
	// A call slower than its deadline is cut off there, as the SDK's is.
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < s.took {
		s.clock.now = s.clock.now.Add(time.Until(dl).Round(time.Second))
		return nil, context.DeadlineExceeded
	}
	s.clock.now = s.clock.now.Add(s.took)
	switch st {
	case "notfound":
		return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: "The instance ID 'i-0abc' does not exist"}
	case "denied":
		return nil, &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{{
		InstanceId: aws.String("i-0abc"), State: &ec2types.InstanceState{Name: ec2types.InstanceStateName(st)}}}}}}, nil
}

func TestWaitRunning(t *testing.T) {
	tests := []struct {
		name     string
		states   []string
		budget   time.Duration
		took     time.Duration
		wantKind failure.Kind // -1: no error
		wantMsg  string
		polls    int
		slept    time.Duration // total time on the clock
	}{
		{"running at once", []string{"running"}, 30 * time.Second, 0, -1, "", 1, 0},
		{"pending then running", []string{"pending", "pending", "running"}, 30 * time.Second, 0, -1, "", 3, 4 * time.Second},
		{"not described yet, then running", []string{"notfound", "pending", "running"}, 30 * time.Second, 0, -1, "", 3, 4 * time.Second},
		{"pending then stopping", []string{"pending", "stopping"}, 30 * time.Second, 0, failure.InstanceState, "is stopping", 2, 2 * time.Second},
		{"pending then stopped", []string{"pending", "stopped"}, 30 * time.Second, 0, failure.InstanceState, "is stopped", 2, 2 * time.Second},
		{"terminated", []string{"terminated"}, 30 * time.Second, 0, failure.InstanceState, "is terminated", 1, 0},
		{"shutting down", []string{"shutting-down"}, 30 * time.Second, 0, failure.InstanceState, "is shutting-down", 1, 0},
		{"pending past the budget", []string{"pending"}, 5 * time.Second, 0, failure.InstanceState, "still pending after 5s", 3, 5 * time.Second},
		{"slow calls count against the budget", []string{"pending"}, 5 * time.Second, 2 * time.Second, failure.InstanceState, "still pending after 5s", 2, 5 * time.Second},
		{"never described", []string{"notfound"}, 3 * time.Second, 0, failure.InstanceState, "not described yet after 3s", 2, 3 * time.Second},
		{"denied", []string{"denied"}, 30 * time.Second, 0, failure.AWSAuth, "ec2:DescribeInstances", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
			start := clock.now
			e := &stateEC2{states: tt.states, clock: clock, took: tt.took}
			a := fakeAWS(&e.fakeEC2)
			a.EC2 = e
			var progress []State
			in, err := a.WaitRunning(context.Background(), "i-0abc", WaitOptions{Budget: tt.budget, Interval: 2 * time.Second, Clock: clock,
				Progress: func(s State, _ time.Duration) { progress = append(progress, s) }})
			if tt.wantKind == -1 {
				if err != nil || in == nil || in.State != StateRunning {
					t.Fatalf("WaitRunning(%q) = %+v, %v, want running", tt.states, in, err)
				}
			} else {
				if err == nil || failure.KindOf(err) != tt.wantKind || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("WaitRunning(%q) = %v (kind %v), want %v with %q", tt.states, err, failure.KindOf(err), tt.wantKind, tt.wantMsg)
				}
				var fe *failure.Error
				if !errors.As(err, &fe) || fe.Hint == "" {
					t.Errorf("WaitRunning(%q) error %v has no hint", tt.states, err)
				}
			}
			if e.polls != tt.polls {
				t.Errorf("WaitRunning(%q) polled %d times, want %d", tt.states, e.polls, tt.polls)
			}
			if got := clock.now.Sub(start); got != tt.slept {
				t.Errorf("WaitRunning(%q) took %v on the clock, want %v", tt.states, got, tt.slept)
			}
			if got := clock.now.Sub(start); got > tt.budget {
				t.Errorf("WaitRunning(%q) ran %v past its budget %v", tt.states, got-tt.budget, tt.budget)
			}
			if tt.wantKind == -1 && len(progress) != tt.polls-1 {
				t.Errorf("WaitRunning(%q) told of %d polls (%v), want %d", tt.states, len(progress), progress, tt.polls-1)
			}
		})
	}
}

func TestWaitRunningCanceled(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	e := &stateEC2{states: []string{"pending"}, clock: clock}
	a := fakeAWS(&e.fakeEC2)
	a.EC2 = e
	ctx, cancel := context.WithCancel(context.Background())
	_, err := a.WaitRunning(ctx, "i-0abc", WaitOptions{Budget: time.Minute, Clock: clock, Progress: func(State, time.Duration) { cancel() }})
	if failure.KindOf(err) != failure.Canceled {
		t.Errorf("WaitRunning canceled = %v (kind %v), want Canceled", err, failure.KindOf(err))
	}
}

func TestRunningAcceptor(t *testing.T) {
	notFound := &APIError{Op: "ec2:DescribeInstances", Code: "InvalidInstanceID.NotFound"}
	denied := &APIError{Op: "ec2:DescribeInstances", Code: "UnauthorizedOperation", Denied: true}
	for _, tt := range []struct {
		in   *Instance
		err  *APIError
		want waitVerdict
	}{
		{&Instance{State: StateRunning}, nil, waitDone},
		{&Instance{State: StatePending}, nil, waitRetry},
		{nil, notFound, waitRetry},
		{nil, nil, waitRetry},
		{nil, denied, waitFail},
		{&Instance{State: StateStopping}, nil, waitFail},
		{&Instance{State: StateStopped}, nil, waitFail},
		{&Instance{State: StateShuttingDown}, nil, waitFail},
		{&Instance{State: StateTerminated}, nil, waitFail},
	} {
		if got := runningAcceptor(tt.in, tt.err); got != tt.want {
			t.Errorf("runningAcceptor(%+v, %v) = %v, want %v", tt.in, tt.err, got, tt.want)
		}
	}
}
