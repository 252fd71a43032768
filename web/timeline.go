package web

import (
	"slices"

	"time"

	"github.com/packit/packit-launch/store"
)

// event is one line of a launch's story.
type event struct {
	at         time.Time
	name, text string
	code       string // shown as a block (the ssh command)
}

// eventText says each named transition (provision's) in words.
var eventText = map[string]string{
	"accept":      "Accepted",
	"build-ready": "Packit's build finished; launching",
	"reserve":     "Reservation created with the Launch service",
	"adopt":       "Its VM was found running by the sweeper",
	"rebuild":     "Its record was rebuilt from its VM's tags (the bot had lost it)",
	"run":         "Running",
	"cancel":      "Cancelled",
	"fail":        "Failed",
	"end":         "Ended",
	"extend":      "Extended",
	"warn":        "Its owner was told it ends soon",
}

// timeline is a launch's story from its event log, oldest first.
func timeline(l *store.Launch) []event {
	var out []event
	for _, e := range l.Events {
		text, ok := eventText[e.Name]
		if !ok {
			text = e.Name
		}
		ev := event{at: e.At, name: e.Name, text: text}
		switch e.Name {
		case "accept":
			ev.text = "Accepted " + l.Owner + "'s command"
			ev.code = l.Command
		case "run":
			if host := firstNonEmpty(l.PublicIPv4, l.PublicDNS); host != "" {
				ev.code = "ssh " + l.SSHUser + "@" + host
			}
		case "fail":
			ev.text = "Failed: " + plain(l.Failure)
		case "extend":
			if e.By != "" {
				ev.text += " by " + e.By
			}
		case "end", "cancel":
			if l.EndReason != "" {
				ev.text += ": " + l.EndReason
			}
		}
		out = append(out, ev)
	}
	if !l.SSH.AnsweredAt.IsZero() {
		out = append(out, event{at: l.SSH.AnsweredAt, name: "sshd", text: "Its sshd answered; the ready comment went out"})
	}
	slices.SortStableFunc(out, func(a, b event) int { return a.at.Compare(b.at) })
	return out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
