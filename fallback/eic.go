package fallback

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	eictypes "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect/types"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// InstanceConnectAPI is the part of EC2 Instance Connect ec2ssh calls.
type InstanceConnectAPI interface {
	SendSSHPublicKey(ctx context.Context, in *ec2instanceconnect.SendSSHPublicKeyInput, optFns ...func(*ec2instanceconnect.Options)) (*ec2instanceconnect.SendSSHPublicKeyOutput, error)
}

// NewInstanceConnect builds the EC2 Instance Connect client from cfg.
func NewInstanceConnect(cfg aws.Config) InstanceConnectAPI {
	return ec2instanceconnect.NewFromConfig(cfg)
}

// OneTimeKey makes a key that lives only in memory, pushes its public half
// to the instance with EC2 Instance Connect (SendSSHPublicKey: valid for
// 60 seconds) for user, and returns the signer to offer. Nothing is
// written to disk and the private key never leaves the process.
func OneTimeKey(ctx context.Context, client InstanceConnectAPI, instanceID, user string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	pub := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	_, err = client.SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId: aws.String(instanceID), InstanceOSUser: aws.String(user), SSHPublicKey: aws.String(pub)})
	if err != nil {
		return nil, classifyEIC(instanceID, err)
	}
	return signer, nil
}

func classifyEIC(instanceID string, err error) error {
	e := &failure.Error{Kind: failure.Unknown, Op: "push a one-time key with EC2 Instance Connect to", Target: instanceID, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Msg = e.Op + " " + instanceID + ": " + ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	var notFound *eictypes.EC2InstanceNotFoundException
	var badState *eictypes.EC2InstanceStateInvalidException
	var unavailable *eictypes.EC2InstanceUnavailableException
	var auth *eictypes.AuthException
	switch {
	case errors.As(err, &notFound):
		e.Hint = "the instance is not in this region"
	case errors.As(err, &badState):
		e.Kind, e.Hint = failure.InstanceState, "the instance is not running"
	case errors.As(err, &unavailable):
		e.Hint = "the instance cannot take a key now (is the ec2-instance-connect package installed?)"
	case errors.As(err, &auth):
		e.Kind, e.Hint = failure.AWSAuth, "the caller needs ec2-instance-connect:SendSSHPublicKey on the instance"
	// The service answers a missing IAM permission with a generic code that
	// the SDK has no type for.
	case errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "AccessDenied"):
		e.Kind, e.Hint = failure.AWSAuth, "the caller needs ec2-instance-connect:SendSSHPublicKey on the instance"
	}
	return e
}
