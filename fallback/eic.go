package fallback

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// OneTimeKey makes a key that lives only in memory, pushes its public half
// to the instance with EC2 Instance Connect (SendSSHPublicKey: valid for
// 60 seconds) for user, and returns the signer to offer. Nothing is
// written to disk and the private key never leaves the process.
func OneTimeKey(ctx context.Context, client *ec2instanceconnect.Client, instanceID, user string) (ssh.Signer, error) {
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
		e := &failure.Error{Kind: failure.Unknown, Op: "push a one-time key with EC2 Instance Connect to", Target: instanceID, Err: err}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			e.Msg = e.Op + " " + instanceID + ": " + ae.ErrorCode() + ": " + ae.ErrorMessage()
			switch ae.ErrorCode() {
			case "AccessDeniedException", "AccessDenied":
				e.Kind, e.Hint = failure.AWSAuth, "the caller needs ec2-instance-connect:SendSSHPublicKey on the instance"
			case "EC2InstanceNotFoundException", "EC2InstanceStateInvalidException":
				e.Hint = "the instance is not running, or not in this region"
			}
		}
		return nil, e
	}
	return signer, nil
}
