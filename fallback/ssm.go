package fallback

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// SSHDocument is the SSM document for SSH over a port session.
const SSHDocument = "AWS-StartSSHSession"

// NotConnectedRetry is how long StartSession keeps retrying
// TargetNotConnected: for a while after an agent restart it is returned
// although DescribeInstanceInformation already says Online.
const NotConnectedRetry = 6 * time.Second

// notConnectedPause is the wait between those retries.
const notConnectedPause = time.Second

// SSMAPI is the part of the SSM API a session needs.
type SSMAPI interface {
	StartSession(ctx context.Context, in *ssm.StartSessionInput, optFns ...func(*ssm.Options)) (*ssm.StartSessionOutput, error)
	ResumeSession(ctx context.Context, in *ssm.ResumeSessionInput, optFns ...func(*ssm.Options)) (*ssm.ResumeSessionOutput, error)
	TerminateSession(ctx context.Context, in *ssm.TerminateSessionInput, optFns ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error)
}

// SSM is Session Manager: StartSession, ResumeSession and TerminateSession
// through the SDK (AWS_ENDPOINT_URL_SSM applies), and KMS for sessions the
// account's preferences encrypt.
type SSM struct {
	Client SSMAPI
	KMS    KMSAPI
	Debug  func(format string, a ...any)
	// Sleep waits between TargetNotConnected retries and returns early with
	// ctx's error; tests replace it so that retries cost no wall time.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock the retry deadline is read from.
	Now func() time.Time
	// AgentOnline, when set, is asked once when StartSession first says
	// TargetNotConnected: whether the instance's agent is registered and
	// Online (DescribeInstanceInformation). The retry is for an agent that
	// restarted while the service already says Online; an agent that is
	// absent or offline will not connect within it, so the error is
	// returned at once and the next way in is tried 6 s sooner. known is
	// false when it could not be asked (denied): then the retry runs.
	AgentOnline func(ctx context.Context, instanceID string) (online, known bool)
	// MaxWindow caps each channel's upload window (Options.MaxWindow).
	MaxWindow int
}

// NewSSM builds the Session Manager and KMS clients from cfg.
func NewSSM(cfg aws.Config) *SSM {
	return &SSM{Client: ssm.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg)}
}

func (s *SSM) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *SSM) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *SSM) options(target string, hold bool) Options {
	return Options{KMS: s.KMS, TargetID: target, HoldInput: hold, Debug: s.Debug, MaxWindow: s.MaxWindow}
}

// StartPort starts a port session to instanceID's port and opens its data
// channel: a byte stream to that port, from the instance itself. With
// serverFirst (SSH: the server's banner comes first), input is held until
// the port's first output, so that the agent's handshake race cannot eat
// the client's banner (Options.HoldInput).
func (s *SSM) StartPort(ctx context.Context, instanceID string, port int, serverFirst bool) (*Channel, error) {
	start := time.Now()
	ep, err := s.start(ctx, &ssm.StartSessionInput{Target: aws.String(instanceID), DocumentName: aws.String(SSHDocument),
		Parameters: map[string][]string{"portNumber": {strconv.Itoa(port)}}})
	if err != nil {
		return nil, err
	}
	started := time.Now()
	ch, err := OpenChannel(ctx, s, ep, s.options(instanceID, serverFirst))
	if err == nil && s.Debug != nil {
		s.Debug("debug1: ssm: session %s: StartSession in %v, data channel and handshake in %v", ep.SessionID,
			started.Sub(start).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	}
	return ch, err
}

func (s *SSM) start(ctx context.Context, in *ssm.StartSessionInput) (Endpoint, error) {
	deadline := s.now().Add(NotConnectedRetry)
	asked := false
	for {
		cctx, cancel := context.WithTimeout(ctx, CallTimeout)
		out, err := s.Client.StartSession(cctx, in)
		cancel()
		if err == nil {
			return Endpoint{SessionID: aws.ToString(out.SessionId), StreamURL: aws.ToString(out.StreamUrl), Token: aws.ToString(out.TokenValue)}, nil
		}
		var nc *ssmtypes.TargetNotConnected
		notConnected := errors.As(err, &nc)
		if notConnected && !asked && s.AgentOnline != nil {
			asked = true
			if online, known := s.AgentOnline(ctx, aws.ToString(in.Target)); known && !online {
				if s.Debug != nil {
					s.Debug("debug1: ssm: %s: the agent is not online; not waiting for it", aws.ToString(in.Target))
				}
				notConnected = false
			}
		}
		if notConnected && s.now().Before(deadline) {
			if s.sleep(ctx, notConnectedPause) == nil {
				continue
			}
		}
		if ctx.Err() != nil {
			return Endpoint{}, &failure.Error{Kind: failure.Canceled, Msg: "interrupted while starting the SSM session", Err: ctx.Err()}
		}
		return Endpoint{}, classifySSM("start an SSM session on "+aws.ToString(in.Target), err)
	}
}

// Resume calls ResumeSession.
func (s *SSM) Resume(ctx context.Context, sessionID string) (Endpoint, error) {
	out, err := s.Client.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(sessionID)})
	if err != nil {
		return Endpoint{}, classifySSM("resume SSM session "+sessionID, err)
	}
	return Endpoint{SessionID: aws.ToString(out.SessionId), StreamURL: aws.ToString(out.StreamUrl), Token: aws.ToString(out.TokenValue)}, nil
}

// Terminate calls TerminateSession.
func (s *SSM) Terminate(ctx context.Context, sessionID string) error {
	_, err := s.Client.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(sessionID)})
	if err != nil {
		return classifySSM("terminate SSM session "+sessionID, err)
	}
	return nil
}

// classifySSM turns an SSM API error into a *failure.Error where it enters,
// by the SDK's typed errors.
func classifySSM(op string, err error) error {
	if wf := preflight.WeatherFailure(op, err); wf != nil {
		return wf // slow, throttled, 5xx, cut, absent: in words (issue 20)
	}
	e := &failure.Error{Kind: failure.Unknown, Op: op, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Msg = op + ": " + ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	var denied *ssmtypes.AccessDeniedException
	var notConnected *ssmtypes.TargetNotConnected
	var badDoc *ssmtypes.InvalidDocument
	var badTarget *ssmtypes.InvalidTarget
	var missing *ssmtypes.DoesNotExistException
	switch {
	case errors.As(err, &denied):
		e.Kind, e.Hint = failure.AWSAuth, "the caller needs ssm:StartSession on the instance and the session's document"
	case errors.As(err, &notConnected):
		e.Kind, e.Hint = failure.Unreachable, "the instance's SSM agent is not connected: see ec2ssh --diagnose"
	case errors.As(err, &badDoc):
		e.Hint = "the session document is not available in this region"
	case errors.As(err, &badTarget):
		e.Kind, e.Hint = failure.Config, "the instance is not a managed node in this region and account"
	case errors.As(err, &missing):
		e.Hint = "the session has ended"
	}
	return e
}
