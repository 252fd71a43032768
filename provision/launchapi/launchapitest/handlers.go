package launchapitest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func (f *Fake) routes() {
	m := http.NewServeMux()
	p := APIPrefix
	m.HandleFunc("GET "+p+"/sources", f.listSources)
	m.HandleFunc("GET "+p+"/sources/{id}/launch_templates", f.listLaunchTemplates)
	m.HandleFunc("GET "+p+"/sources/{id}/upload_info", f.uploadInfo)
	m.HandleFunc("GET "+p+"/sources/{id}/status", f.sourceStatus)
	m.HandleFunc("GET "+p+"/instance_types/{provider}", f.instanceTypesList)
	m.HandleFunc("GET "+p+"/pubkeys", f.listPubkeys)
	m.HandleFunc("POST "+p+"/pubkeys", f.createPubkey)
	m.HandleFunc("GET "+p+"/pubkeys/{id}", f.getPubkey)
	m.HandleFunc("DELETE "+p+"/pubkeys/{id}", f.deletePubkey)
	m.HandleFunc("GET "+p+"/reservations", f.listReservations)
	m.HandleFunc("GET "+p+"/reservations/{id}", f.getReservation)
	m.HandleFunc("DELETE "+p+"/reservations/{id}", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed", "method DELETE is not allowed for reservations")
	})
	m.HandleFunc("POST "+p+"/reservations/aws", f.createAWSReservation)
	m.HandleFunc("POST "+p+"/reservations/noop", f.createNoopReservation)
	m.HandleFunc("GET "+p+"/reservations/aws/{id}", f.getAWSReservation)
	m.HandleFunc(p+"/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not found: no such route", "")
	})
	f.mux = m
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// page reads limit/offset (limit default 100) and cuts [offset, offset+limit).
func page[T any](w http.ResponseWriter, r *http.Request, items []T) ([]T, map[string]any, bool) {
	limit, offset := 100, 0
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid request: limit must be a non-negative integer", fmt.Sprint(err))
			return nil, nil, false
		}
		limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid request: offset must be a non-negative integer", fmt.Sprint(err))
			return nil, nil, false
		}
		offset = n
	}
	lo, hi := min(offset, len(items)), min(offset+limit, len(items))
	links := map[string]string{"previous": "", "next": ""}
	link := func(off int) string {
		v := url.Values{}
		for k := range q {
			v.Set(k, q.Get(k))
		}
		v.Set("limit", strconv.Itoa(limit))
		v.Set("offset", strconv.Itoa(off))
		return r.URL.Path + "?" + v.Encode()
	}
	if offset > 0 {
		links["previous"] = link(max(offset-limit, 0))
	}
	if hi < len(items) && limit > 0 {
		links["next"] = link(hi)
	}
	meta := map[string]any{"links": links}
	if len(items) > 0 {
		meta["total"] = len(items)
	}
	return items[lo:hi], meta, true
}

func (f *Fake) findSourceLocked(org, id string) *sourceState {
	for _, s := range f.org(org).sources {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func sourceJSON(s Source) map[string]any {
	return map[string]any{"id": s.ID, "name": s.Name, "provider": s.Provider, "source_type_id": "", "status": "available", "uid": ""}
}

func (f *Fake) listSources(w http.ResponseWriter, r *http.Request) {
	provider := r.URL.Query().Get("provider")
	switch provider {
	case "", "aws", "azure", "gcp":
	default:
		writeError(w, http.StatusBadRequest, "invalid request: unknown provider", "unknown provider: "+provider)
		return
	}
	f.mu.Lock()
	var all []map[string]any
	for _, s := range f.org(orgOf(r)).sources {
		if provider == "" || s.Provider == provider {
			all = append(all, sourceJSON(s.Source))
		}
	}
	f.mu.Unlock()
	data, meta, ok := page(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"data": orEmpty(data), "metadata": meta})
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// source finds the {id} source of the caller or answers 404.
func (f *Fake) source(w http.ResponseWriter, r *http.Request) (Source, []LaunchTemplate, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.findSourceLocked(orgOf(r), r.PathValue("id"))
	if s == nil {
		writeError(w, http.StatusNotFound, "not found: source not found", "sources client error: source "+r.PathValue("id")+" not found")
		return Source{}, nil, "", false
	}
	return s.Source, append([]LaunchTemplate(nil), s.templates[r.URL.Query().Get("region")]...), s.statusErr, true
}

func (f *Fake) listLaunchTemplates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("region") == "" {
		writeError(w, http.StatusBadRequest, "invalid request: region parameter is required", "missing region")
		return
	}
	src, lts, _, ok := f.source(w, r)
	if !ok {
		return
	}
	if src.Provider != "aws" {
		writeError(w, http.StatusBadRequest, "invalid request: launch templates are supported for aws sources only", "provider "+src.Provider)
		return
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "invalid request: limit must be a positive integer", fmt.Sprint(err))
			return
		}
		limit = n
	}
	// The token is opaque to clients, like EC2's NextToken.
	start := 0
	if t := q.Get("token"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "lt:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "lt:") || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid request: invalid token", "cannot decode token")
			return
		}
		start = min(n, len(lts))
	}
	end := min(start+limit, len(lts))
	data := []map[string]any{}
	for _, lt := range lts[start:end] {
		data = append(data, map[string]any{"id": lt.ID, "name": lt.Name})
	}
	next := ""
	if end < len(lts) {
		v := url.Values{"region": {q.Get("region")}, "limit": {strconv.Itoa(limit)},
			"token": {base64.RawURLEncoding.EncodeToString([]byte("lt:" + strconv.Itoa(end)))}}
		next = r.URL.Path + "?" + v.Encode()
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "metadata": map[string]any{"links": map[string]string{"previous": "", "next": next}}})
}

func (f *Fake) uploadInfo(w http.ResponseWriter, r *http.Request) {
	src, _, _, ok := f.source(w, r)
	if !ok {
		return
	}
	out := map[string]any{"provider": src.Provider, "aws": nil, "azure": nil, "gcp": nil}
	if src.Provider == "aws" {
		out["aws"] = map[string]string{"account_id": src.AccountID}
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) sourceStatus(w http.ResponseWriter, r *http.Request) {
	_, _, statusErr, ok := f.source(w, r)
	if !ok {
		return
	}
	if statusErr != "" {
		writeError(w, http.StatusInternalServerError, "AWS error: unable to assume role: "+statusErr, statusErr)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (f *Fake) instanceTypesList(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	if provider != "aws" {
		writeError(w, http.StatusBadRequest, "invalid request: unsupported provider", "provider "+provider+" is not supported by the fake")
		return
	}
	region := r.URL.Query().Get("region")
	f.mu.Lock()
	types, ok := f.instanceTypes[region]
	f.mu.Unlock()
	if region == "" || !ok {
		writeError(w, http.StatusBadRequest, "invalid request: unknown region", "unknown region: "+region)
		return
	}
	b, _ := json.Marshal(map[string]any{"data": orEmpty(types)})
	sum := sha1.Sum(b)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// newPubkey fills type and fingerprints from body. The stored SHA256
// fingerprint reproduces the service's TrimLeft bug.
func newPubkey(name, body string) Pubkey {
	pk := Pubkey{Name: name, Body: body}
	fields := strings.Fields(body)
	if len(fields) >= 2 {
		pk.Type = fields[0]
		if blob, err := base64.StdEncoding.DecodeString(fields[1]); err == nil {
			s := sha256.Sum256(blob)
			pk.Fingerprint = strings.TrimLeft("SHA256:"+base64.RawStdEncoding.EncodeToString(s[:]), "SHA256:")
			m := md5.Sum(blob)
			hx := hex.EncodeToString(m[:])
			var parts []string
			for i := 0; i < len(hx); i += 2 {
				parts = append(parts, hx[i:i+2])
			}
			pk.FingerprintLegacy = strings.Join(parts, ":")
		}
	}
	return pk
}

func (f *Fake) listPubkeys(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var all []Pubkey
	for _, p := range f.org(orgOf(r)).pubkeys {
		all = append(all, *p)
	}
	f.mu.Unlock()
	data, meta, ok := page(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"data": orEmpty(data), "metadata": meta})
	}
}

// decodeJSON decodes a JSON body; a wrong type or malformed JSON is an error,
// unknown fields are not.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

func readBody(r *http.Request) []byte {
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(r.Body)
	return buf.Bytes()
}

func (f *Fake) createPubkey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
		Body string `json:"body"`
	}
	if err := decodeJSON(readBody(r), &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request: "+err.Error(), err.Error())
		return
	}
	if in.Name == "" || in.Body == "" {
		writeError(w, http.StatusBadRequest, "invalid request: name and body are required", "missing name or body")
		return
	}
	pk := newPubkey(in.Name, in.Body)
	if pk.Type != "ssh-rsa" && pk.Type != "ssh-ed25519" {
		writeError(w, http.StatusBadRequest, "invalid request: unsupported key type, use ssh-rsa or ssh-ed25519", "unsupported key type: "+pk.Type)
		return
	}
	if pk.Fingerprint == "" {
		writeError(w, http.StatusBadRequest, "invalid request: cannot parse public key", "ssh: no key found")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.org(orgOf(r))
	for _, p := range o.pubkeys {
		constraint := ""
		switch {
		case p.Name == pk.Name:
			constraint = "pubkeys_account_id_name_key"
		case p.Fingerprint == pk.Fingerprint:
			constraint = "pubkeys_account_id_fingerprint_key"
		default:
			continue
		}
		writeError(w, http.StatusUnprocessableEntity, "pubkey with such name or fingerprint already exists for this account",
			`ERROR: duplicate key value violates unique constraint "`+constraint+`" (SQLSTATE 23505)`)
		return
	}
	pk.ID = f.nextID()
	o.pubkeys = append(o.pubkeys, &pk)
	writeJSON(w, http.StatusOK, pk)
}

func (f *Fake) pubkeyIndex(w http.ResponseWriter, r *http.Request) (*orgState, int, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid request: URL parsing error for param 'ID'", err.Error())
		return nil, 0, false
	}
	o := f.org(orgOf(r))
	for i, p := range o.pubkeys {
		if p.ID == id {
			return o, i, true
		}
	}
	writeError(w, http.StatusNotFound, "not found: pubkey not found", "no rows in result set")
	return nil, 0, false
}

func (f *Fake) getPubkey(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, i, ok := f.pubkeyIndex(w, r); ok {
		writeJSON(w, http.StatusOK, o.pubkeys[i])
	}
}

func (f *Fake) deletePubkey(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, i, ok := f.pubkeyIndex(w, r); ok {
		o.pubkeys = append(o.pubkeys[:i:i], o.pubkeys[i+1:]...)
		w.WriteHeader(http.StatusNoContent)
	}
}

// reservationOf finds the {id} reservation of the caller or answers.
func (f *Fake) reservationOf(w http.ResponseWriter, r *http.Request) (*reservation, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid request: URL parsing error for param 'ID'", err.Error())
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, res := range f.org(orgOf(r)).reservations {
		if res.id == id {
			return res, true
		}
	}
	writeError(w, http.StatusNotFound, "not found: reservation not found", "no rows in result set")
	return nil, false
}

func (f *Fake) listReservations(w http.ResponseWriter, r *http.Request) {
	var all []map[string]any
	for _, s := range f.Reservations(orgOf(r)) {
		all = append(all, reservationJSON(s))
	}
	data, meta, ok := page(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"data": orEmpty(data), "metadata": meta})
	}
}

func (f *Fake) getReservation(w http.ResponseWriter, r *http.Request) {
	res, ok := f.reservationOf(w, r)
	if !ok {
		return
	}
	f.ensureLaunched(r.Context(), res)
	f.mu.Lock()
	s := f.snapshotLocked(res, f.clock.Now())
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, reservationJSON(s))
}

func (f *Fake) getAWSReservation(w http.ResponseWriter, r *http.Request) {
	res, ok := f.reservationOf(w, r)
	if !ok {
		return
	}
	if res.provider != ProviderAWS {
		writeError(w, http.StatusBadRequest, "invalid request: reservation is not an aws reservation", "provider mismatch")
		return
	}
	f.ensureLaunched(r.Context(), res)
	f.mu.Lock()
	s := f.snapshotLocked(res, f.clock.Now())
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, awsReservationJSON(s))
}

var (
	amiRe  = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// createAWSReservation validates in the service's order, then stores the
// reservation. Its outcome is decided by the next queued plan.
func (f *Fake) createAWSReservation(w http.ResponseWriter, r *http.Request) {
	var in AWSRequest
	if err := decodeJSON(readBody(r), &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request: "+err.Error(), err.Error())
		return
	}
	org := orgOf(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	types, ok := f.instanceTypes[in.Region]
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid request: unsupported region", "unsupported region: "+in.Region)
		return
	}
	if in.InstanceType == "" && in.LaunchTemplateID == "" {
		writeError(w, http.StatusBadRequest, "invalid request: instance type or launch template must be set", "missing instance type and launch template")
		return
	}
	arch := ""
	if in.InstanceType != "" {
		for _, t := range types {
			if t.Name == in.InstanceType {
				arch = t.Architecture
			}
		}
		if arch == "" {
			writeError(w, http.StatusBadRequest, "invalid request: unknown instance type", "unknown instance type: "+in.InstanceType)
			return
		}
	}
	img, known := f.images[in.ImageID]
	if known && arch != "" && img.Architecture != "" && img.Architecture != arch {
		writeError(w, http.StatusBadRequest, "invalid request: instance type architecture does not match the image",
			fmt.Sprintf("architecture mismatch: image %s, instance type %s", img.Architecture, arch))
		return
	}
	o := f.org(org)
	var pk *Pubkey
	for _, p := range o.pubkeys {
		if p.ID == in.PubkeyID {
			pk = p
		}
	}
	if pk == nil {
		writeError(w, http.StatusNotFound, "not found: pubkey not found", "no rows in result set")
		return
	}
	if f.findSourceLocked(org, in.SourceID) == nil {
		writeError(w, http.StatusNotFound, "not found: source not found", "sources client error: source "+in.SourceID+" not found")
		return
	}
	ami := in.ImageID
	switch {
	case amiRe.MatchString(in.ImageID):
	case uuidRe.MatchString(in.ImageID):
		if !known {
			writeError(w, http.StatusInternalServerError, "image builder error: cannot get compose", "compose "+in.ImageID+" not found")
			return
		}
		if img.Building {
			writeError(w, http.StatusInternalServerError, "image builder error: image still building", "image still building")
			return
		}
		ami = img.AMI
	default:
		writeError(w, http.StatusBadRequest, "invalid request: unknown image id format", "invalid image id: "+in.ImageID)
		return
	}
	now := f.clock.Now()
	recent := 0
	for _, res := range o.reservations {
		if now.Sub(res.createdAt) < time.Second && f.stateLocked(res, now).success == nil {
			recent++
		}
	}
	if recent >= 5 {
		writeError(w, http.StatusTooManyRequests, "too many reservations, wait and retry", "rate limit: more than 5 pending reservations created within 1s")
		return
	}
	if in.Amount == 0 {
		in.Amount = 1
	}
	plan := ReservationPlan{}
	if len(f.plans) > 0 {
		plan, f.plans = f.plans[0], f.plans[1:]
	}
	res := &reservation{id: f.nextID(), org: org, provider: ProviderAWS, createdAt: now, req: in, plan: plan,
		stepDur: f.stepDur, pubkey: *pk, amiID: ami}
	if plan.StepDuration > 0 {
		res.stepDur = plan.StepDuration
	}
	o.reservations = append(o.reservations, res)
	writeJSON(w, http.StatusOK, awsReservationJSON(f.snapshotLocked(res, now)))
}

func (f *Fake) createNoopReservation(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.org(orgOf(r))
	res := &reservation{id: f.nextID(), org: orgOf(r), provider: ProviderNoop, createdAt: f.clock.Now()}
	o.reservations = append(o.reservations, res)
	writeJSON(w, http.StatusOK, map[string]any{"reservation_id": res.id})
}
