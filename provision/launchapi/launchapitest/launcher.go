package launchapitest

import (
	"context"
	"fmt"
	"sync/atomic"
)

// LaunchInput is what the service hands to EC2 when a reservation reaches
// the "Launch instance(s)" step.
type LaunchInput struct {
	Org              string
	Region           string
	ImageID          string // an AMI id (a compose UUID is already resolved)
	InstanceType     string
	LaunchTemplateID string
	KeyName          string // the name the public key was imported under
	PubkeyBody       string
	Amount           int
	Name             string
	// Tags as the service sets them: Name, rh-rid=r-<id>, rh-org=<org>.
	Tags map[string]string
}

// Instance is one launched instance as the service reports it. Any address
// may be empty.
type Instance struct {
	ID          string
	PublicIPv4  string
	PublicDNS   string
	PrivateIPv4 string
}

// InstanceLauncher starts instances for a reservation. The default invents
// them; a launcher backed by a real EC2 API (moto_server) can replace it.
// An error fails the reservation at step 2 with the error's text.
type InstanceLauncher interface {
	Launch(ctx context.Context, in LaunchInput) ([]Instance, error)
}

// InventedLauncher makes up instance ids and addresses. It is the default.
type InventedLauncher struct {
	n atomic.Int64
}

// Launch returns in.Amount made-up instances.
func (l *InventedLauncher) Launch(_ context.Context, in LaunchInput) ([]Instance, error) {
	amount := max(in.Amount, 1)
	out := make([]Instance, 0, amount)
	for range amount {
		n := l.n.Add(1)
		a, b := byte(n>>8), byte(n)
		out = append(out, Instance{
			ID:          fmt.Sprintf("i-%017x", 0xfa4e0000+n),
			PublicIPv4:  fmt.Sprintf("203.0.%d.%d", a, b),
			PublicDNS:   fmt.Sprintf("ec2-203-0-%d-%d.compute-1.amazonaws.com", a, b),
			PrivateIPv4: fmt.Sprintf("172.31.%d.%d", a, b),
		})
	}
	return out, nil
}
