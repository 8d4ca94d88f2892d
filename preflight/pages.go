package preflight

import "context"

// PageFunc hears of each page of a listing's DescribeInstances as it
// arrives: the region asked and how many instances the page held. It may
// be called from several regions' goroutines at once.
type PageFunc func(region string, instances int)

type pagesKey struct{}

// WithPages makes fn hear of every DescribeInstances page read under ctx
// (a progress line for long listings).
func WithPages(ctx context.Context, fn PageFunc) context.Context {
	return context.WithValue(ctx, pagesKey{}, fn)
}

func pagesOf(ctx context.Context) PageFunc {
	fn, _ := ctx.Value(pagesKey{}).(PageFunc)
	return fn
}
