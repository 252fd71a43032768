package githubtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Delivery is one webhook delivery as GET /app/hook/deliveries lists it.
type Delivery struct {
	ID             int64
	GUID           string
	Event          string
	Action         string
	Status         string // default "OK"
	StatusCode     int    // default 200
	Redelivery     bool
	DeliveredAt    time.Time
	InstallationID int64
	RepositoryID   int64
}

// AddDelivery records a delivery the fake GitHub made and returns it with
// its ID, DeliveredAt (now) and defaults filled in.
func (s *Server) AddDelivery(d Delivery) Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addDelivery(d)
}

func (s *Server) addDelivery(d Delivery) Delivery {
	d.ID = s.newID()
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = s.now().UTC().Truncate(time.Second)
	}
	if d.StatusCode == 0 {
		d.StatusCode = http.StatusOK
	}
	if d.Status == "" {
		d.Status = "OK"
		if d.StatusCode/100 != 2 {
			d.Status = "Invalid HTTP Response: " + strconv.Itoa(d.StatusCode)
		}
	}
	s.deliveries = append(s.deliveries, d)
	return d
}

// Deliveries returns every delivery, oldest first, including the
// redeliveries the app asked for (Redelivery true, same GUID).
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

func deliveryJSON(d Delivery) map[string]any {
	return map[string]any{
		"id": d.ID, "guid": d.GUID, "delivered_at": timestamp(d.DeliveredAt), "redelivery": d.Redelivery,
		"duration": 0.27, "status": d.Status, "status_code": d.StatusCode, "event": d.Event,
		"action": d.Action, "installation_id": d.InstallationID, "repository_id": d.RepositoryID,
	}
}

// listDeliveries lists newest first with cursor pagination like GitHub:
// per_page (default 30, at most 100) and an opaque cursor from the Link
// header's rel="next".
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage < 1 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	start := int64(-1) // newest
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(c, "v1_"), 10, 64)
		if err != nil {
			writeValidation(w, fieldError{Field: "cursor", Code: "invalid"})
			return
		}
		start = n
	}
	s.mu.Lock()
	var page []map[string]any
	next := int64(0)
	for i := len(s.deliveries) - 1; i >= 0; i-- {
		d := s.deliveries[i]
		if start >= 0 && d.ID > start {
			continue
		}
		if len(page) == perPage {
			next = d.ID
			break
		}
		page = append(page, deliveryJSON(d))
	}
	s.mu.Unlock()
	if next != 0 {
		q.Set("cursor", fmt.Sprintf("v1_%d", next))
		q.Set("per_page", strconv.Itoa(perPage))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, baseURL(r), r.URL.Path, q.Encode()))
	}
	writeJSON(w, http.StatusOK, append([]map[string]any{}, page...))
}

func (s *Server) findDelivery(r *http.Request) (Delivery, bool) {
	id, _ := pathInt(r, "id")
	for _, d := range s.deliveries {
		if d.ID == id {
			return d, true
		}
	}
	return Delivery{}, false
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	d, ok := s.findDelivery(r)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, deliveryJSON(d))
}

// redeliver records a redelivery (same GUID, Redelivery true) and answers
// 202 like GitHub; go-github reports that as *github.AcceptedError.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	d, ok := s.findDelivery(r)
	if ok {
		d.Redelivery, d.DeliveredAt = true, time.Time{}
		s.addDelivery(d)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
}
