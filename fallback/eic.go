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
	"github.com/ec2ssh/ec2ssh/preflight"
)

// InstanceConnectAPI is the part of EC2 Instance Connect ec2ssh calls.
type InstanceConnectAPI interface {
	SendSSHPublicKey(ctx context.Context, in *ec2instanceconnect.SendSSHPublicKeyInput, optFns ...func(*ec2instanceconnect.Options)) (*ec2instanceconnect.SendSSHPublicKeyOutput, error)
	SendSerialConsoleSSHPublicKey(ctx context.Context, in *ec2instanceconnect.SendSerialConsoleSSHPublicKeyInput, optFns ...func(*ec2instanceconnect.Options)) (*ec2instanceconnect.SendSerialConsoleSSHPublicKeyOutput, error)
}

// SerialConsoleKey makes a one-time key and pushes it for the instance's
// serial port 0 (SendSerialConsoleSSHPublicKey: valid for 60 seconds).
func SerialConsoleKey(ctx context.Context, client InstanceConnectAPI, instanceID string) (ssh.Signer, error) {
	signer, pub, err := oneTimeSigner()
	if err != nil {
		return nil, err
	}
	_, err = client.SendSerialConsoleSSHPublicKey(ctx, &ec2instanceconnect.SendSerialConsoleSSHPublicKeyInput{
		InstanceId: aws.String(instanceID), SerialPort: 0, SSHPublicKey: aws.String(pub)})
	if err != nil {
		return nil, classifySerial(instanceID, err)
	}
	return signer, nil
}

func classifySerial(instanceID string, err error) error {
	if wf := preflight.WeatherFailure("push a key for the serial console of "+instanceID, err); wf != nil {
		return wf
	}
	e := &failure.Error{Kind: failure.Unknown, Op: "push a key for the serial console of", Target: instanceID, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Msg = e.Op + " " + instanceID + ": " + ae.ErrorCode() + ": " + ae.ErrorMessage()
		switch ae.ErrorCode() {
		case "SerialConsoleSessionLimitExceededException":
			e.Kind, e.Msg = failure.Unreachable, "a serial console session to "+instanceID+" is already open: the console takes one at a time"
			e.Hint = "close the other session (or wait for it to end), then try again"
		case "SerialConsoleAccessDisabledException":
			e.Kind, e.Hint = failure.AWSAuth, "serial console access is off for this account and region: aws ec2 enable-serial-console-access (an account-wide change: ec2ssh will not make it for you)"
		case "EC2InstanceTypeInvalidException":
			e.Kind, e.Hint = failure.InstanceState, "only Nitro instance types have a serial console"
		case "AccessDeniedException", "AccessDenied", "AuthException":
			e.Kind, e.Hint = failure.AWSAuth, "the caller needs ec2-instance-connect:SendSerialConsoleSSHPublicKey on the instance"
		case "EC2InstanceStateInvalidException":
			e.Kind, e.Hint = failure.InstanceState, "the instance is not running"
		}
	}
	return e
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
	signer, pub, err := oneTimeSigner()
	if err != nil {
		return nil, err
	}
	_, err = client.SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId: aws.String(instanceID), InstanceOSUser: aws.String(user), SSHPublicKey: aws.String(pub)})
	if err != nil {
		return nil, classifyEIC(instanceID, err)
	}
	return signer, nil
}

// oneTimeSigner is a fresh ED25519 key in memory and its public half in
// authorized_keys form.
func oneTimeSigner() (ssh.Signer, string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, "", err
	}
	return signer, string(ssh.MarshalAuthorizedKey(signer.PublicKey())), nil
}

func classifyEIC(instanceID string, err error) error {
	if wf := preflight.WeatherFailure("push a one-time key with EC2 Instance Connect to "+instanceID, err); wf != nil {
		return wf
	}
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
