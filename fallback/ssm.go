package fallback

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/ec2ssh/ec2ssh/failure"
)

// SSHDocument is the SSM document for SSH over a port session.
const SSHDocument = "AWS-StartSSHSession"

// NotConnectedRetry is how long StartSession keeps retrying
// TargetNotConnected: for a while after an agent restart it is returned
// although DescribeInstanceInformation already says Online.
const NotConnectedRetry = 6 * time.Second

// SSM is the Session Manager API: StartSession, ResumeSession and
// TerminateSession through the SDK (AWS_ENDPOINT_URL_SSM applies).
type SSM struct {
	Client *ssm.Client
}

// StartPort starts a port session to instanceID's port and opens its data
// channel: a byte stream to that port, from the instance itself.
func (s *SSM) StartPort(ctx context.Context, instanceID string, port int) (*Channel, error) {
	ep, err := s.start(ctx, &ssm.StartSessionInput{Target: aws.String(instanceID), DocumentName: aws.String(SSHDocument),
		Parameters: map[string][]string{"portNumber": {strconv.Itoa(port)}}})
	if err != nil {
		return nil, err
	}
	return OpenChannel(ctx, s, ep)
}

func (s *SSM) start(ctx context.Context, in *ssm.StartSessionInput) (Endpoint, error) {
	deadline := time.Now().Add(NotConnectedRetry)
	for {
		cctx, cancel := context.WithTimeout(ctx, CallTimeout)
		out, err := s.Client.StartSession(cctx, in)
		cancel()
		if err == nil {
			return Endpoint{SessionID: aws.ToString(out.SessionId), StreamURL: aws.ToString(out.StreamUrl), Token: aws.ToString(out.TokenValue)}, nil
		}
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "TargetNotConnected" && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Second)
			continue
		}
		return Endpoint{}, classify("start an SSM session on "+aws.ToString(in.Target), err)
	}
}

// Resume calls ResumeSession.
func (s *SSM) Resume(ctx context.Context, sessionID string) (Endpoint, error) {
	out, err := s.Client.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(sessionID)})
	if err != nil {
		return Endpoint{}, classify("resume SSM session "+sessionID, err)
	}
	return Endpoint{SessionID: aws.ToString(out.SessionId), StreamURL: aws.ToString(out.StreamUrl), Token: aws.ToString(out.TokenValue)}, nil
}

// Terminate calls TerminateSession.
func (s *SSM) Terminate(ctx context.Context, sessionID string) error {
	_, err := s.Client.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(sessionID)})
	if err != nil {
		return classify("terminate SSM session "+sessionID, err)
	}
	return nil
}

// classify turns an SSM API error into a *failure.Error where it enters.
func classify(op string, err error) error {
	e := &failure.Error{Kind: failure.Unknown, Op: op, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Msg = op + ": " + ae.ErrorCode() + ": " + ae.ErrorMessage()
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied":
			e.Kind, e.Hint = failure.AWSAuth, "the caller needs ssm:StartSession on the instance and the AWS-StartSSHSession document"
		case "TargetNotConnected":
			e.Kind, e.Hint = failure.Unreachable, "the instance's SSM agent is not connected: see ec2ssh --diagnose"
		case "InvalidDocument":
			e.Hint = "the AWS-StartSSHSession document is not available in this region"
		}
	}
	return e
}
