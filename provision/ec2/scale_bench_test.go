package ec2_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/packit/packit-launch/provision/ec2"
	"github.com/packit/packit-launch/provision/ec2/ec2test"
)

// benchLatency is the fake's delay per call.
const benchLatency = time.Millisecond

// bigFleet is 10,000 managed live VMs, nearly all from their own per-launch
// template as the bot launches them (a template lives as long as its VM),
// plus 1,700 instances ListManaged must leave out.
var bigFleet = fleetSpec{
	Birth: 9000, Stopped: 200, Overridden: 900, TagOnly: 100,
	Others: 1000, FromBase: 100, ManagedFalse: 100, Terminated: 500,
}

// BenchmarkListManaged10k measures one sweep's listing of a region holding
// 10,000 managed VMs, and checks that its AWS calls are pages, not
// instances: exactly what wantCalls predicts (TestListManagedCallsArePages
// proves that formula against moto on a small fleet), and that no instance
// record is fetched twice. With bigFleet: DescribeLaunchTemplates pages
// over 10,401 templates (53 pages of 200); DescribeInstances pages over the
// 9,100 tagged live VMs (10 pages of 1,000), then over the 1,400 per-launch
// templates no tagged VM came from (900 overridden, 500 of terminated VMs),
// 7 chunks of 200 with 900 live VMs among them, one page each: 17 in all.
//
// It runs against ec2test.FakeEC2, not moto. moto pages DescribeInstances by
// reservation, so a fleet that pages like EC2 needs one RunInstances call
// per instance, and moto slows with every instance it holds: 2,000 seeded
// one by one took 38 s and each page of 1,000 of them 16 s; 10,000 seeded
// 1,000 at a time took 118 s, and listing them did not answer within 60 s.
// It does not page DescribeLaunchTemplates at all.
//
// ns/op is the bot's side (the SDK's requests and XML decoding, and
// ListManaged's own work) plus the in-process fake's, plus benchLatency per
// call.
//
// The fleet is seeded once; each page size is a sub-benchmark.
func BenchmarkListManaged10k(b *testing.B) {
	fake := ec2test.NewFakeEC2()
	// A round trip's worth of delay, as any network has: without it the
	// fake answers inside the SDK's request-body race (see callCounter) a
	// third of the time, and the retries' back-off skews the time.
	fake.SetLatency(benchLatency)
	start := time.Now()
	s := bigFleet.build().seed(b, fakeSeeder{fake})
	b.Logf("seeded %d templates and %d instances (%d managed live) into the fake in %s",
		len(s.templates), len(s.vms), bigFleet.managed(), time.Since(start).Round(time.Millisecond))

	counter := &callCounter{next: fake}
	srv := httptest.NewServer(counter)
	b.Cleanup(srv.Close)
	cloud, err := ec2.New(b.Context(), ec2test.Config(srv.URL, region))
	if err != nil {
		b.Fatal(err)
	}

	if got := s.wantCalls(ec2.DefaultPageSize, ec2.DefaultTemplatePageSize); got["DescribeLaunchTemplates"] != 53 || got["DescribeInstances"] != 17 {
		b.Fatalf("wantCalls = %v, counted by hand 53 DescribeLaunchTemplates and 17 DescribeInstances", got)
	}
	for _, pageSize := range []int{ec2.DefaultPageSize, 100} {
		b.Run(fmt.Sprintf("pageSize=%d", pageSize), func(b *testing.B) {
			ec2.SetPageSize(cloud, int32(pageSize))
			want := s.wantCalls(pageSize, ec2.DefaultTemplatePageSize)
			counter.take()
			fake.TakeServed()
			b.ReportAllocs()
			ops := 0
			var got []ec2.Instance
			for b.Loop() {
				got, err = cloud.ListManaged(b.Context(), region)
				if err != nil {
					b.Fatalf("ListManaged: %v", err)
				}
				ops++
			}
			calls, retries := counter.take()
			served := fake.TakeServed()

			checkListed(b, s, got)
			checkServed(b, served, len(got)*ops, retries, pageSize)
			total := 0
			for action, n := range calls {
				if n != want[action]*ops {
					b.Fatalf("%d ListManaged made %d %s calls, want %d each (%v in all)", ops, n, action, want[action], calls)
				}
				total += n
			}
			for action, n := range want {
				if calls[action] != n*ops {
					b.Fatalf("%d ListManaged made %d %s calls, want %d each", ops, calls[action], action, n)
				}
			}
			// Pages, not instances: under one call per 20 VMs.
			if perOp := total / ops; perOp*20 > len(got) {
				b.Fatalf("%d AWS calls for %d instances: that is not paging", perOp, len(got))
			}
			b.ReportMetric(float64(calls["DescribeInstances"])/float64(ops), "DescribeInstances/op")
			b.ReportMetric(float64(calls["DescribeLaunchTemplates"])/float64(ops), "DescribeLaunchTemplates/op")
			b.ReportMetric(float64(total)/float64(ops), "calls/op")
			b.ReportMetric(float64(retries)/float64(ops), "SDK-retries/op")
			b.ReportMetric(float64(len(got)), "instances/op")
			// Instance records decoded (retries included): once per VM.
			b.ReportMetric(float64(served)/float64(ops), "records/op")
		})
	}
}
