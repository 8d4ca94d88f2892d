package fallback

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ssh/ec2ssh/failure"
)

// fakeSSM answers StartSession with the errors given, in turn.
type fakeSSM struct {
	errs  []error
	calls int
}

func (f *fakeSSM) StartSession(ctx context.Context, in *ssm.StartSessionInput, _ ...func(*ssm.Options)) (*ssm.StartSessionOutput, error) {
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		if len(f.errs) > 1 {
			f.errs = f.errs[1:]
		}
		if err != nil {
			return nil, err
		}
	}
	return &ssm.StartSessionOutput{SessionId: aws.String("s-1"), StreamUrl: aws.String("ws://127.0.0.1:1/"), TokenValue: aws.String("t")}, nil
}

func (f *fakeSSM) ResumeSession(context.Context, *ssm.ResumeSessionInput, ...func(*ssm.Options)) (*ssm.ResumeSessionOutput, error) {
	return nil, errors.New("not here")
}

func (f *fakeSSM) TerminateSession(context.Context, *ssm.TerminateSessionInput, ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error) {
	return &ssm.TerminateSessionOutput{}, nil
}

// fakeClock advances only when slept on.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.now = c.now.Add(d)
	return nil
}

func TestTargetNotConnectedIsRetriedForAWhile(t *testing.T) {
	notConnected := &ssmtypes.TargetNotConnected{Message: aws.String("i-1 is not connected.")}
	t.Run("gives up after NotConnectedRetry", func(t *testing.T) {
		api := &fakeSSM{errs: []error{notConnected}}
		clock := &fakeClock{now: time.Unix(0, 0)}
		s := &SSM{Client: api, Sleep: clock.Sleep, Now: clock.Now}
		start := time.Now()
		_, err := s.start(context.Background(), &ssm.StartSessionInput{Target: aws.String("i-1")})
		if failure.KindOf(err) != failure.Unreachable {
			t.Errorf("start = %v, want Unreachable", err)
		}
		if want := int(NotConnectedRetry/notConnectedPause) + 1; api.calls != want {
			t.Errorf("StartSession was called %d times, want %d", api.calls, want)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("the retries took %v of real time", took)
		}
	})
	t.Run("succeeds once the agent is back", func(t *testing.T) {
		api := &fakeSSM{errs: []error{notConnected, notConnected, nil}}
		clock := &fakeClock{now: time.Unix(0, 0)}
		s := &SSM{Client: api, Sleep: clock.Sleep, Now: clock.Now}
		ep, err := s.start(context.Background(), &ssm.StartSessionInput{Target: aws.String("i-1")})
		if err != nil || ep.SessionID != "s-1" || api.calls != 3 {
			t.Errorf("start = %+v, %v after %d calls; want s-1 after 3", ep, err, api.calls)
		}
	})
	t.Run("an agent that is not online is not waited for", func(t *testing.T) {
		api := &fakeSSM{errs: []error{notConnected}}
		clock := &fakeClock{now: time.Unix(0, 0)}
		asked := 0
		s := &SSM{Client: api, Sleep: clock.Sleep, Now: clock.Now,
			AgentOnline: func(_ context.Context, id string) (bool, bool) { asked++; return false, id == "i-1" }}
		_, err := s.start(context.Background(), &ssm.StartSessionInput{Target: aws.String("i-1")})
		if failure.KindOf(err) != failure.Unreachable || api.calls != 1 || asked != 1 {
			t.Errorf("start = %v after %d calls, %d questions; want Unreachable after 1 call, 1 question", err, api.calls, asked)
		}
		// Online (just restarted), or not known (denied): the retry runs, asked once.
		for _, online := range []func(context.Context, string) (bool, bool){
			func(context.Context, string) (bool, bool) { asked++; return true, true },
			func(context.Context, string) (bool, bool) { asked++; return false, false },
		} {
			api, asked = &fakeSSM{errs: []error{notConnected, notConnected, nil}}, 0
			s := &SSM{Client: api, Sleep: clock.Sleep, Now: clock.Now, AgentOnline: online}
			if _, err := s.start(context.Background(), &ssm.StartSessionInput{Target: aws.String("i-1")}); err != nil || api.calls != 3 || asked != 1 {
				t.Errorf("start = %v after %d calls, %d questions; want a session after 3 calls, 1 question", err, api.calls, asked)
			}
		}
	})
	t.Run("stops when the context ends", func(t *testing.T) {
		api := &fakeSSM{errs: []error{notConnected}}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s := &SSM{Client: api}
		start := time.Now()
		_, err := s.start(ctx, &ssm.StartSessionInput{Target: aws.String("i-1")})
		if failure.KindOf(err) != failure.Canceled || time.Since(start) > time.Second {
			t.Errorf("start after cancel = %v (after %v), want Canceled at once", err, time.Since(start))
		}
	})
}

func TestSSMErrorsAreClassifiedByType(t *testing.T) {
	tests := []struct {
		err  error
		want failure.Kind
	}{
		{&ssmtypes.AccessDeniedException{Message: aws.String("no")}, failure.AWSAuth},
		{&ssmtypes.TargetNotConnected{Message: aws.String("no")}, failure.Unreachable},
		{&ssmtypes.InvalidTarget{Message: aws.String("no")}, failure.Config},
		{&ssmtypes.InvalidDocument{Message: aws.String("no")}, failure.Unknown},
		{errors.New("connection reset"), failure.Unknown},
	}
	for _, tt := range tests {
		err := classifySSM("start an SSM session on i-1", tt.err)
		if got := failure.KindOf(err); got != tt.want {
			t.Errorf("classifySSM(%T) = %v, want %v", tt.err, got, tt.want)
		}
		if tt.want != failure.Unknown && failure.HintOf(err) == "" {
			t.Errorf("classifySSM(%T) has no hint", tt.err)
		}
	}
}
