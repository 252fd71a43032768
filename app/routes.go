package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Routes is the HTTP surface: the webhook (only when intake is set, i.e.
// a webhook secret exists), liveness, readiness and Prometheus metrics.
// /readyz names only the failing part (it may be public: see NotReady); the
// details go to the log.
func Routes(webhookPath string, intake http.Handler, ready func(ctx context.Context) error, log *slog.Logger, pages ...func(*mux.Router)) http.Handler {
	r := mux.NewRouter()
	for _, register := range pages {
		register(r)
	}
	var webhook http.Handler
	if intake != nil {
		webhook = countDeliveries(intake)
		r.Handle(webhookPath, webhook).Methods(http.MethodPost)
	}
	r.Handle("/metrics", promhttp.Handler()).Methods(http.MethodGet)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	}).Methods(http.MethodGet)
	r.HandleFunc("/readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			log.Warn("not ready", "err", err)
			part := "a part of the bot does not work"
			var nr *NotReady
			if errors.As(err, &nr) {
				part = nr.Part
			}
			writeText(w, http.StatusServiceUnavailable, "not ready: "+part+"; details are in the log")
			return
		}
		writeText(w, http.StatusOK, "ready")
	}).Methods(http.MethodGet)
	if webhook == nil {
		return r
	}
	// The webhook is the route anyone can flood: it is matched before the
	// router, whose two request copies per request (mux.Vars, CurrentRoute)
	// cost ~1 µs and 1.2 KB. The router still answers its other methods.
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && req.URL.Path == webhookPath {
			webhook.ServeHTTP(w, req)
			return
		}
		r.ServeHTTP(w, req)
	})
}

// NotReady says which part of the bot does not work, briefly enough for
// anyone to read; Err is for the log only.
type NotReady struct {
	Part string
	Err  error
}

func (n *NotReady) Error() string {
	if n.Err == nil {
		return n.Part
	}
	return n.Part + ": " + n.Err.Error()
}

func (n *NotReady) Unwrap() error { return n.Err }
