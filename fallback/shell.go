package fallback

import (
	"context"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// CommandDocument runs one command with stdout, stderr and the exit status
// kept apart.
const CommandDocument = "AWS-StartNonInteractiveCommand"

// StartShell starts an interactive shell session (the account's default
// session document, a Standard_Stream on a terminal).
func (s *SSM) StartShell(ctx context.Context, instanceID string) (*Channel, error) {
	ep, err := s.start(ctx, &ssm.StartSessionInput{Target: aws.String(instanceID)})
	if err != nil {
		return nil, err
	}
	return OpenChannel(ctx, s, ep)
}

// StartCommand runs command on the instance through SSM. Its stdout is the
// channel's output, its stderr goes to stderr, and ExitCode reports its
// status once the output has ended.
func (s *SSM) StartCommand(ctx context.Context, instanceID, command string, stderr io.Writer) (*Channel, error) {
	ep, err := s.start(ctx, &ssm.StartSessionInput{Target: aws.String(instanceID), DocumentName: aws.String(CommandDocument),
		Parameters: map[string][]string{"command": {command}}})
	if err != nil {
		return nil, err
	}
	return openChannel(ctx, s, ep, stderr)
}
