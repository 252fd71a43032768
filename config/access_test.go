package config

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/packit/packit-launch/mdsafe/mdsafetest"
)

var permissions = []string{"admin", "maintain", "write", "triage", "read", "none"}

// TestPermit covers every action, raw permission, ownership and kind of
// access rule. The user is alice; the owner is her (in other letters'
// case), carol, or nobody yet for a launch.
func TestPermit(t *testing.T) {
	accesses := map[string]*Access{
		"no config":     nil,
		"no rules":      {},
		"admins only":   {AdminsOnly: true},
		"alice listed":  {Users: []string{"Alice", "bob"}},
		"others listed": {Users: []string{"bob"}},
	}
	writers := []string{"admin", "maintain", "write"}
	tests := []struct {
		action  Action
		owner   string
		access  string
		allowed []string
	}{
		{ActionLaunch, "", "no config", writers},
		{ActionLaunch, "", "no rules", writers},
		{ActionLaunch, "", "admins only", []string{"admin"}},
		{ActionLaunch, "", "alice listed", writers},
		{ActionLaunch, "", "others listed", nil},
		{ActionLaunch, "carol", "no config", writers}, // the owner plays no part in a launch

		{ActionExtend, "ALICE", "no config", writers},
		{ActionExtend, "ALICE", "no rules", writers},
		{ActionExtend, "ALICE", "admins only", []string{"admin"}},
		{ActionExtend, "ALICE", "alice listed", writers},
		{ActionExtend, "ALICE", "others listed", []string{"admin"}},
		{ActionExtend, "carol", "no config", []string{"admin"}},
		{ActionExtend, "carol", "no rules", []string{"admin"}},
		{ActionExtend, "carol", "admins only", []string{"admin"}},
		{ActionExtend, "carol", "alice listed", []string{"admin"}},
		{ActionExtend, "carol", "others listed", []string{"admin"}},
		{ActionExtend, "", "no config", []string{"admin"}},

		{ActionStop, "ALICE", "no config", permissions},
		{ActionStop, "ALICE", "no rules", permissions},
		{ActionStop, "ALICE", "admins only", permissions},
		{ActionStop, "ALICE", "alice listed", permissions},
		{ActionStop, "ALICE", "others listed", permissions},
		{ActionStop, "carol", "no config", []string{"admin"}},
		{ActionStop, "carol", "no rules", []string{"admin"}},
		{ActionStop, "carol", "admins only", []string{"admin"}},
		{ActionStop, "carol", "alice listed", []string{"admin"}},
		{ActionStop, "carol", "others listed", []string{"admin"}},
		{ActionStop, "", "no config", []string{"admin"}},

		{Action("reboot"), "ALICE", "no config", nil},
	}
	for _, tt := range tests {
		for _, perm := range permissions {
			r := Permit(accesses[tt.access], tt.action, "alice", perm, tt.owner)
			if want := slices.Contains(tt.allowed, perm); (r == nil) != want {
				t.Errorf("Permit(%s, %s, alice, %s, owner %q) = %v, want allowed %v", tt.access, tt.action, perm, tt.owner, r, want)
			}
			if r != nil {
				mdsafetest.Assert(t, r.Reason, "")
			}
		}
	}
}

func TestPermitReasonsSayWhyAndWhatToDo(t *testing.T) {
	tests := []struct {
		access             *Access
		action             Action
		perm, owner, wants string
	}{
		{nil, ActionLaunch, "triage", "", "you have read access"},
		{nil, ActionLaunch, "none", "", "you have no access"},
		{nil, ActionExtend, "read", "alice", "Extending a VM needs write access"},
		{&Access{AdminsOnly: true}, ActionLaunch, "write", "", "only its admins"},
		{&Access{Users: []string{"bob"}}, ActionExtend, "write", "alice", "Ask a maintainer to add you there"},
		{nil, ActionExtend, "write", "carol", "This VM is `carol`'s; only its owner or a repository admin can extend it"},
		{nil, ActionStop, "write", "carol", "only its owner or a repository admin can stop it"},
		{nil, ActionStop, "write", "@org/team", "This VM is `@org/team`'s"},
	}
	for _, tt := range tests {
		r := Permit(tt.access, tt.action, "alice", tt.perm, tt.owner)
		if r == nil || !strings.Contains(r.Reason, tt.wants) {
			t.Errorf("Permit(%+v, %s, alice, %s, %q) = %v, want a reason with %q", tt.access, tt.action, tt.perm, tt.owner, r, tt.wants)
		}
	}
	for _, h := range mdsafetest.Hostile {
		for _, a := range []Action{ActionLaunch, ActionExtend, ActionStop, Action(h)} {
			if r := Permit(&Access{Users: []string{"bob"}}, a, h, "read", h+"x"); r != nil {
				mdsafetest.Assert(t, r.Reason, "")
			}
		}
	}
}

func TestParseAccess(t *testing.T) {
	s := &Server{}
	tests := []struct {
		name, data string
		want       *Access
		problem    string
	}{
		{"empty file", "", nil, ""},
		{"comment only", "# nothing\n", nil, ""},
		{"no access section", "machines: {a: {image: x}}\nwhatever: 1\n", nil, ""},
		{"empty access", "access:\n", nil, ""},
		{"admins only", "access: {admins_only: true}\nmachines: {}", &Access{AdminsOnly: true}, ""},
		{"users, other keys unknown", "future_key: 1\naccess:\n  users: [alice, Bob]\n", &Access{Users: []string{"alice", "Bob"}}, ""},
		{"misspelt rule", "access:\n  admin_only: true\n", nil, "`access.admin_only`: line 2: unknown key"},
		{"bad login", "access: {users: [alice, '@carol']}", nil, "`access.users[1]`: `@carol` is not a GitHub login"},
		{"not a mapping", "access: [alice]", nil, "`access`: line 1: write a mapping"},
		{"wrong type", "access: {admins_only: [yes]}", nil, "`access.admins_only`: line 1: a list is not allowed here"},
		{"not YAML", "access: {users: [", nil, "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ParseAccess([]byte(tt.data))
			if tt.problem == "" {
				if err != nil || !equalAccess(got, tt.want) {
					t.Errorf("ParseAccess = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var problems Problems
			if !errors.As(err, &problems) || got != nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("ParseAccess = %+v, %v; want problem %q", got, err, tt.problem)
			}
			for _, p := range problems {
				mdsafetest.Assert(t, p, "")
			}
		})
	}
	for _, h := range mdsafetest.Hostile {
		data, err := json.Marshal(map[string]any{"access": map[string]any{h: 1, "users": []string{h}}})
		if err != nil {
			t.Fatal(err)
		}
		var problems Problems
		if _, err := s.ParseAccess(data); errors.As(err, &problems) {
			for _, p := range problems {
				mdsafetest.Assert(t, p, "")
			}
		}
	}
	example, err := os.ReadFile("../examples/.packit-launch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ParseAccess(example); err != nil {
		t.Errorf("example repo config: %v", err)
	}
}

func equalAccess(a, b *Access) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.AdminsOnly == b.AdminsOnly && slices.Equal(a.Users, b.Users)
}
