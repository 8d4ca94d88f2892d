package lab

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// SSMPort is where the lab's SSM stand-in listens. moto has no Session
// Manager, so the lab answers the SSM API calls ec2ssh makes itself.
const SSMPort = 5001

// ssmStandIn answers the SSM JSON API (AWS JSON 1.1, X-Amz-Target
// "AmazonSSM.<Operation>") for the lab's instances.
type ssmStandIn struct {
	online map[string]bool // instance id -> agent online
	srv    *http.Server
}

func startSSM(online map[string]bool) (*ssmStandIn, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", SSMPort))
	if err != nil {
		return nil, fmt.Errorf("ssm stand-in: %w", err)
	}
	s := &ssmStandIn{online: online}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *ssmStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch op {
	case "DescribeInstanceInformation":
		var in struct {
			Filters []struct {
				Key    string
				Values []string
			}
		}
		json.NewDecoder(r.Body).Decode(&in)
		var ids []string
		for _, f := range in.Filters {
			if f.Key == "InstanceIds" {
				ids = f.Values
			}
		}
		list := []map[string]any{}
		for _, id := range ids {
			if s.online[id] {
				list = append(list, map[string]any{"InstanceId": id, "PingStatus": "Online", "AgentVersion": "3.3.0.0-lab",
					"LastPingDateTime": float64(time.Now().Unix()), "PlatformType": "Linux", "ResourceType": "EC2Instance"})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"InstanceInformationList": list})
	default:
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "InvalidAction", "message": "the lab's SSM stand-in does not implement " + op})
	}
}

func (s *ssmStandIn) stop() { s.srv.Close() }
