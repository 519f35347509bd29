package testserver

import (
	"errors"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// SDKRetryer is the retryer tests give AWS SDK clients: it retries nothing Lading answers (an
// error response is what a test checks, never hidden by a retry), only a response whose read
// failed on a connection the SDK's own transport closed under it (aws-sdk-go-v2 issue #2737,
// "use of closed network connection"; the SDK's default retryer retries it too). A plain HTTP
// client reading the same answers never fails.
func SDKRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.RateLimiter = ratelimit.None
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, net.ErrClosed) {
				return aws.TrueTernary
			}
			return aws.FalseTernary
		})}
	})
}
