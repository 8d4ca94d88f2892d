package preflight

func checkCredentials(f *Facts) Result {
	switch {
	case f.Region == "":
		return Result{Status: Fail, Summary: "no AWS region is configured",
			Fix: "pass --region, set AWS_REGION, or run: aws configure set region REGION"}
	case f.CallerErr != nil && f.CallerErr.NoCreds:
		return Result{Status: Fail, Summary: "no AWS credentials were found", Evidence: []string{f.CallerErr.Message},
			Fix: "run: aws configure (or aws sso login --profile NAME), or pass --profile"}
	case f.CallerErr != nil && f.CallerErr.Code == "ExpiredToken" || f.CallerErr != nil && f.CallerErr.Code == "ExpiredTokenException":
		return Result{Status: Fail, Summary: "the AWS credentials have expired", Evidence: []string{f.CallerErr.Error()},
			Fix: "refresh them: aws sso login, or renew the session token"}
	case f.CallerErr != nil && (f.CallerErr.Code == "InvalidClientTokenId" || f.CallerErr.Code == "SignatureDoesNotMatch"):
		return Result{Status: Fail, Summary: "AWS rejected the credentials", Evidence: []string{f.CallerErr.Error()},
			Fix: "check the access key and secret: aws configure list"}
	case f.CallerErr != nil:
		return unknownFrom(f.CallerErr)
	case f.Caller == nil:
		return Result{Status: Skip, Summary: "AWS was not asked"}
	}
	return Result{Status: Pass, Summary: "AWS credentials for " + f.Caller.ARN + " in " + f.Region,
		Evidence: []string{"account " + f.Caller.Account, "region " + f.Region}}
}
