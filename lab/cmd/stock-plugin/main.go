// Command stock-plugin is AWS's session-manager-plugin, built from its own
// packages, for the lab only: the SSM stand-in is tested against the stock
// client, and the benchmarks compare ec2ssh's data channel with it. It is
// never installed or shipped.
//
//	stock-plugin --ssh INSTANCE PORT
//
// does what `aws ssm start-session --document-name AWS-StartSSHSession`
// does: StartSession (at AWS_ENDPOINT_URL_SSM), then the plugin's stdio
// port session, so it can stand as OpenSSH's ProxyCommand. Any other
// arguments go to the plugin as the AWS CLI passes them.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/session-manager-plugin/src/sessionmanagerplugin/session"
	_ "github.com/aws/session-manager-plugin/src/sessionmanagerplugin/session/portsession"
	_ "github.com/aws/session-manager-plugin/src/sessionmanagerplugin/session/shellsession"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "--ssh" {
		args, err := startSSH(os.Args[2], os.Args[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, "stock-plugin:", err)
			os.Exit(255)
		}
		os.Args = args
	}
	session.ValidateInputAndStartSession(os.Args, os.Stdout)
}

func startSSH(instance, port string) ([]string, error) {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	params := map[string][]string{"portNumber": {port}}
	out, err := ssm.NewFromConfig(cfg).StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(instance),
		DocumentName: aws.String("AWS-StartSSHSession"), Parameters: params})
	if err != nil {
		return nil, err
	}
	resp, _ := json.Marshal(map[string]string{"SessionId": aws.ToString(out.SessionId), "StreamUrl": aws.ToString(out.StreamUrl),
		"TokenValue": aws.ToString(out.TokenValue)})
	req, _ := json.Marshal(map[string]any{"Target": instance, "DocumentName": "AWS-StartSSHSession", "Parameters": params})
	return []string{os.Args[0], string(resp), cfg.Region, "StartSession", "", string(req), os.Getenv("AWS_ENDPOINT_URL_SSM")}, nil
}
