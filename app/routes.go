package app

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Routes is the HTTP surface: the webhook (only when intake is set, i.e.
// a webhook secret exists), liveness, readiness and Prometheus metrics.
func Routes(webhookPath string, intake http.Handler, ready func(ctx context.Context) error) http.Handler {
	r := mux.NewRouter()
	if intake != nil {
		r.Handle(webhookPath, countDeliveries(intake)).Methods(http.MethodPost)
	}
	r.Handle("/metrics", promhttp.Handler()).Methods(http.MethodGet)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	}).Methods(http.MethodGet)
	r.HandleFunc("/readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeText(w, http.StatusOK, "ready")
	}).Methods(http.MethodGet)
	return r
}
